"""FAISS on the GPU finds what FAISS on the CPU finds (`soundtok index` and `search --device cuda`).

Skipped unless FAISS sees a GPU: that needs the faiss GPU build (`pip install soundtok[gpu]`) and a
CUDA device, which neither CI nor the development machine has. On such a machine:
`pytest tests/test_faiss_gpu.py`. Recall is measured as `soundtok index` measures it
(`ann.recall_at_k`: a result counts when its exact score reaches the exact 10th, so ties count fairly).
"""

import numpy as np
import pytest

from embed_factories import DIM, clustered_unit_vectors
from soundtok_cli.index import ann

faiss = ann.load_faiss()
pytestmark = pytest.mark.skipif(not (hasattr(faiss, "get_num_gpus") and faiss.get_num_gpus() > 0),
                                reason="needs faiss with GPU support and a CUDA device")


def recall_on_the_gpu(index, vectors: np.ndarray, nprobe: int | None = None) -> float:
    """recall@10 of a GPU copy of `index` against exact search, on fresh queries."""
    queries = ann._recall_queries(vectors, np.random.default_rng(2))
    on_gpu = ann.to_gpu(faiss, index)
    if nprobe is not None:
        ann.set_nprobe(faiss, on_gpu, nprobe)
    return ann.recall_at_k(faiss, on_gpu, vectors, queries, ann._exact_truth(vectors, queries))


def test_exact_search_on_the_gpu_returns_the_exact_hits():
    vectors = clustered_unit_vectors(20_000, DIM, clusters=300, seed=0)
    built = ann.build(vectors)
    assert built.params["type"] == "exact"
    assert recall_on_the_gpu(built.index, vectors) >= 0.99  # float16 vectors, other arithmetic


def test_an_ivf_index_trained_on_the_gpu_keeps_the_recall_goal():
    vectors = clustered_unit_vectors(60_000, DIM, clusters=300, seed=1)
    notes = []
    built = ann.build(vectors, gpu=True, exact_max=10_000, note=notes.append)
    assert built.params["type"] == "ivf" and built.params["built_on"] == "gpu"
    assert not any("failed" in n for n in notes), notes
    assert built.params["recall_at_10"] >= ann.TARGET_RECALL
    # searched there too, as `search --device cuda` does
    assert recall_on_the_gpu(built.index, vectors, built.params["nprobe"]) >= ann.TARGET_RECALL
