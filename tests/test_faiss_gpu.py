"""FAISS on the GPU finds what FAISS on the CPU finds (`soundtok index` and `search --device cuda`).

Skipped unless FAISS sees a GPU: that needs the faiss GPU build (`pip install soundtok[gpu]`) and a
CUDA device, which neither CI nor the development machine has. On such a machine:
`pytest tests/test_faiss_gpu.py`.
"""

import numpy as np
import pytest

from soundtok_cli.index import ann

faiss = ann.load_faiss()
pytestmark = pytest.mark.skipif(not (hasattr(faiss, "get_num_gpus") and faiss.get_num_gpus() > 0),
                                reason="needs faiss with GPU support and a CUDA device")


def unit_vectors(n: int, dim: int = 384, seed: int = 0) -> np.ndarray:
    """Clustered unit vectors, like embeddings of a library with many takes of a few kinds."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((64, dim))
    x = centres[rng.integers(0, 64, n)] + 0.5 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def top10(index, queries: np.ndarray) -> np.ndarray:
    return index.search(queries, 10)[1]


def test_exact_search_on_the_gpu_returns_the_cpu_hits():
    vectors, queries = unit_vectors(20_000), unit_vectors(100, seed=1)
    built = ann.build(vectors)
    assert built.params["type"] == "exact"
    cpu, gpu = top10(built.index, queries), top10(ann.to_gpu(faiss, built.index), queries)
    same = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(cpu, gpu)])
    assert same >= 0.99  # float16 vectors: a tie at the 10th place may break either way


def test_an_ivf_index_trained_on_the_gpu_keeps_the_recall_goal():
    vectors = unit_vectors(60_000)
    notes = []
    built = ann.build(vectors, gpu=True, exact_max=10_000, note=notes.append)
    assert built.params["type"] == "ivf" and built.params["built_on"] == "gpu"
    assert not any("failed" in n for n in notes), notes
    assert built.params["recall_at_10"] >= ann.TARGET_RECALL
    queries = unit_vectors(200, seed=2)
    exact = ann.exact_scores_topk(vectors, queries, 10)[1]
    on_gpu = ann.to_gpu(faiss, built.index)  # searched there too, as `search --device cuda` does
    ann.set_nprobe(faiss, on_gpu, built.params["nprobe"])
    found = top10(on_gpu, queries)
    assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact, found)]) >= ann.TARGET_RECALL
