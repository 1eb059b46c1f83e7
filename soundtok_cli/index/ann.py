"""FAISS indexes over a generation's vectors: exact below a size, IVF above it with a measured
nprobe; on the GPU when FAISS sees one.

Vectors are L2-normalised, so inner product is cosine similarity. The choice, measured on the
project's 2-core machine (bench/search_speed.py; a fresh process loads the index from the page
cache, then runs one query):

- up to `EXACT_MAX_SEGMENTS` segments: exact search, a flat index of the stored float16 vectors
  (`SQfp16`: the same inner products as IndexFlatIP over those vectors, at half the bytes to load;
  loading dominates a one-query process: about 1.1 us per segment against 2.7 us for a float32
  IndexFlatIP, plus about 0.15 us per segment for the scan);
- above it, IVF with nlist = sqrt(N) lists, spherical k-means on a sample of 40 points per list,
  8-bit scalar-quantised codes (a quarter of float32), and nprobe raised until recall@10 against
  exact search on sampled queries reaches `TARGET_RECALL`, then doubled for margin (falling back
  to float16 codes if 8-bit codes cannot reach it). nlist = 4 sqrt(N) would need 16x the k-means work (about two minutes at
  a million vectors on two cores) for a search that is already a millisecond.

The measured recall and nprobe are returned with the index parameters and recorded in CURRENT.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from soundtok_cli.devices import check_device
from soundtok_cli.errors import UsageError

EXACT_MAX_SEGMENTS = 50_000
TARGET_RECALL = 0.95
RECALL_K = 10
RECALL_QUERIES = 200  # of each kind: indexed vectors (leave-one-out) and in-between points
TRAIN_POINTS_PER_LIST = 40
KMEANS_ITERATIONS = 10
ADD_CHUNK = 1 << 16
SEED = 1234


def load_faiss(threads: int | None = None) -> Any:
    """Import faiss with deliberate threads: OpenMP threads that outnumber free cores spin (on two
    cores that makes everything several times slower), so wait passively; ``threads`` (default:
    OMP_NUM_THREADS if set, else all cores) caps FAISS's OpenMP pool."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import faiss

    if threads is not None:
        faiss.omp_set_num_threads(max(1, threads))
    elif "OMP_NUM_THREADS" not in os.environ:
        faiss.omp_set_num_threads(os.cpu_count() or 1)
    return faiss


def use_gpu(faiss: Any, device: str) -> bool:
    """Whether to put FAISS work on the GPU: ``auto`` when FAISS sees one (the faiss GPU build,
    `pip install soundtok[gpu]`, and a CUDA device), ``cuda`` insists, ``cpu`` never."""
    check_device(device)
    if device == "cpu":
        return False
    gpus = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
    if device == "cuda" and gpus == 0:
        raise UsageError("FAISS sees no GPU (this needs faiss with GPU support, "
                         "`pip install soundtok[gpu]`, and a CUDA device)", "--device")
    return gpus > 0


def to_gpu(faiss: Any, index: Any) -> Any:
    """A GPU copy of a CPU index on all visible GPUs. A flat float16 index (which FAISS's GPU
    cloner does not take) becomes a GPU IndexFlatIP storing float16."""
    options = faiss.GpuMultipleClonerOptions()
    options.useFloat16 = True
    if not isinstance(index, faiss.IndexIVF) and not isinstance(index, faiss.IndexFlat):
        flat = faiss.IndexFlatIP(index.d)
        for lo in range(0, index.ntotal, ADD_CHUNK):
            flat.add(index.reconstruct_n(lo, min(ADD_CHUNK, index.ntotal - lo)))
        index = flat
    return faiss.index_cpu_to_all_gpus(index, options)


def set_nprobe(faiss: Any, index: Any, nprobe: int) -> None:
    """Set nprobe on a CPU or GPU IVF index (no-op for flat indexes)."""
    if hasattr(faiss, "GpuParameterSpace") and not hasattr(index, "nprobe"):
        faiss.GpuParameterSpace().set_index_parameter(index, "nprobe", int(nprobe))
    elif hasattr(index, "nprobe"):
        index.nprobe = int(nprobe)


@dataclass
class Built:
    index: Any  # a CPU faiss index, ready to write
    params: dict[str, Any]


def _chunks(vectors: np.ndarray):
    for lo in range(0, len(vectors), ADD_CHUNK):
        yield np.ascontiguousarray(vectors[lo : lo + ADD_CHUNK], dtype=np.float32)


def build(vectors: np.ndarray, *, gpu: bool = False, exact_max: int = EXACT_MAX_SEGMENTS,
          target: float = TARGET_RECALL, note: Callable[[str], None] = lambda message: None) -> Built:
    """A CPU FAISS index over ``vectors`` ((S, D) float16 or float32, L2-normalised; ids = rows)."""
    faiss = load_faiss()
    n, dim = vectors.shape
    if n <= exact_max:
        index = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
        for chunk in _chunks(vectors):
            index.add(chunk)
        return Built(index, {"type": "exact", "factory": "SQfp16", "metric": "inner_product",
                             "exact_max_segments": exact_max})
    nlist = int(min(65536, max(16, round(math.sqrt(n)))))
    rng = np.random.default_rng(SEED)
    train_rows = np.sort(rng.choice(n, min(n, TRAIN_POINTS_PER_LIST * nlist), replace=False))
    sample = np.ascontiguousarray(vectors[train_rows], dtype=np.float32)
    queries = _recall_queries(vectors, rng)
    truth = _exact_truth(vectors, queries)
    recall = nprobe = 0.0
    for codes in ("SQ8", "SQfp16"):
        factory = f"IVF{nlist},{codes}"
        started = time.perf_counter()
        index = _train_and_add(faiss, factory, dim, sample, vectors, gpu, note)
        trained = time.perf_counter()
        nprobe, recall = _tune_nprobe(faiss, index, vectors, queries, truth, target)
        note(f"{factory}: trained on {len(sample)} points and filled in {trained - started:.1f} s; "
             f"recall@{RECALL_K} {recall:.3f} at nprobe {nprobe} (tuned in {time.perf_counter() - trained:.1f} s)")
        if recall >= target:
            break
    return Built(index, {
        "type": "ivf", "factory": factory, "metric": "inner_product", "nlist": nlist,
        "nprobe": int(nprobe), "recall_at_10": round(float(recall), 4),
        "recall_queries": int(len(queries.vectors)), "train_points": int(len(sample)),
        "exact_max_segments": exact_max, "built_on": "gpu" if gpu else "cpu",
    })


def _train_and_add(faiss: Any, factory: str, dim: int, sample: np.ndarray, vectors: np.ndarray,
                   gpu: bool, note: Callable[[str], None]) -> Any:
    index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    ivf = faiss.extract_index_ivf(index)
    ivf.cp.niter = KMEANS_ITERATIONS
    ivf.cp.seed = SEED
    ivf.cp.spherical = True
    ivf.cp.min_points_per_centroid = 1  # the sample is sized here; no warnings on stderr
    if gpu:
        try:
            device_index = to_gpu(faiss, index)
            device_index.train(sample)
            for chunk in _chunks(vectors):
                device_index.add(chunk)
            return faiss.index_gpu_to_cpu(device_index)
        except RuntimeError as error:  # e.g. out of GPU memory: the CPU still builds it
            note(f"building on the GPU failed ({str(error).strip().splitlines()[0]}); using the CPU")
            index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
            ivf = faiss.extract_index_ivf(index)
            ivf.cp.niter, ivf.cp.seed, ivf.cp.spherical, ivf.cp.min_points_per_centroid = (
                KMEANS_ITERATIONS, SEED, True, 1)
    index.train(sample)
    for chunk in _chunks(vectors):
        index.add(chunk)
    return index


@dataclass
class _Queries:
    vectors: np.ndarray  # (Q, D) float32
    self_ids: np.ndarray  # (Q,) the indexed row a query was taken from, or -1


def _recall_queries(vectors: np.ndarray, rng: np.random.Generator) -> _Queries:
    """Indexed vectors (their own row is left out of both result lists: a held-out query from the
    data's distribution) and normalised midpoints of two random vectors (queries between clusters,
    like text queries that match several kinds of sound); both kinds count."""
    n = len(vectors)
    own = np.sort(rng.choice(n, min(n, RECALL_QUERIES), replace=False))
    pairs = rng.integers(0, n, (RECALL_QUERIES, 2))
    a = np.asarray(vectors[np.sort(pairs[:, 0])], np.float32)
    b = np.asarray(vectors[np.sort(pairs[:, 1])], np.float32)
    between = a + rng.permutation(b)
    between /= np.maximum(np.linalg.norm(between, axis=1, keepdims=True), 1e-12)
    q = np.concatenate([np.asarray(vectors[own], np.float32), between]).astype(np.float32)
    return _Queries(np.ascontiguousarray(q), np.concatenate([own, np.full(len(between), -1)]))


def exact_scores_topk(vectors: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k (scores, ids) by inner product, computed blockwise with numpy (BLAS), in
    bounded memory. Used as ground truth."""
    nq = len(queries)
    best_s = np.full((nq, k), -np.inf, np.float32)
    best_i = np.full((nq, k), -1, np.int64)
    qt = np.ascontiguousarray(queries.T, dtype=np.float32)
    for lo in range(0, len(vectors), ADD_CHUNK):
        block = np.asarray(vectors[lo : lo + ADD_CHUNK], np.float32) @ qt  # (B, Q)
        take = min(k, len(block))
        part = np.argpartition(-block, take - 1, axis=0)[:take] if take < len(block) else \
            np.broadcast_to(np.arange(len(block))[:, None], block.shape)
        s = np.take_along_axis(block, part, axis=0).T
        i = part.T.astype(np.int64) + lo
        all_s = np.concatenate([best_s, s], axis=1)
        all_i = np.concatenate([best_i, i], axis=1)
        order = np.argsort(-all_s, axis=1, kind="stable")[:, :k]
        best_s = np.take_along_axis(all_s, order, axis=1)
        best_i = np.take_along_axis(all_i, order, axis=1)
    return best_s, best_i


def _exact_truth(vectors: np.ndarray, queries: _Queries) -> np.ndarray:
    """The score of each query's k-th exact neighbour (its own row excluded): the bar a result
    must reach to count as a true top-k neighbour. Ties at the bar (duplicate segments, e.g.
    silence) are thus counted fairly, whichever of the equal vectors a search returns."""
    scores, ids = exact_scores_topk(vectors, queries.vectors, RECALL_K + 1)
    bars = np.empty(len(ids), np.float32)
    for q, (row_s, row_i) in enumerate(zip(scores, ids)):
        keep = row_s[row_i != queries.self_ids[q]][:RECALL_K]
        bars[q] = keep[-1]
    return bars


def recall_at_k(faiss: Any, index: Any, vectors: np.ndarray, queries: _Queries, bars: np.ndarray) -> float:
    """Mean over queries of the share of the top-k results (own row excluded) whose exact score
    reaches the exact k-th score."""
    _, ids = index.search(queries.vectors, RECALL_K + 1)
    hits = 0
    for q, row in enumerate(ids):
        row = [int(i) for i in row if i >= 0 and i != queries.self_ids[q]][:RECALL_K]
        if not row:
            continue
        exact = np.asarray(vectors[np.sort(row)], np.float32) @ queries.vectors[q]
        hits += int(np.count_nonzero(exact >= bars[q] - 1e-4))
    return hits / (RECALL_K * len(ids))


def _tune_nprobe(faiss: Any, index: Any, vectors: np.ndarray, queries: _Queries, bars: np.ndarray,
                 target: float) -> tuple[int, float]:
    """nprobe, doubling from 1 until recall@10 reaches ``target``, then doubled once more: the
    margin covers queries unlike the sample (text queries) for well under a millisecond more per
    search. Returns (nprobe, recall at it); the best seen when ``target`` is out of reach."""
    nlist = faiss.extract_index_ivf(index).nlist
    nprobe, best, reached = 1, (1, -1.0), False
    while True:
        set_nprobe(faiss, index, nprobe)
        recall = recall_at_k(faiss, index, vectors, queries, bars)
        if recall > best[1] or (reached and recall >= best[1]):
            best = (nprobe, recall)
        if reached or nprobe >= nlist:
            break
        reached = recall >= target
        nprobe = min(nlist, nprobe * 2)
    set_nprobe(faiss, index, best[0])
    return best


def write(faiss: Any, index: Any, path: str) -> None:
    faiss.write_index(index, path)


def read(faiss: Any, path: str) -> Any:
    """Read an index file; IVF lists are memory-mapped, so a search reads the lists it probes."""
    if not os.path.isfile(path):
        raise FileNotFoundError(path)
    return faiss.read_index(path, faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
