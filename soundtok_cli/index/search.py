"""Searching a generation: nearest segments to a query vector, or the best files (each with its
best segment, ranked by `ranking.file_score`: the best moment and the file as a whole).

`IndexReader(path)` reads CURRENT only (so an empty or missing index is reported before any
model or FAISS is loaded); `load()` opens the generation it names (retrying once if a writer
replaced it meanwhile): the FAISS index (IVF lists memory-mapped), ``sources.npy`` (the source
number of each segment, memory-mapped) and the sqlite metadata, of which only the final hits'
rows are read. Candidates are re-scored exactly against the stored float16 vectors, so scores
are exact inner products whatever the index type.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from soundtok_cli.errors import InputError, UsageError
from soundtok_cli.index import layout
from soundtok_cli.index.meta import Hit, MetaReader
from soundtok_cli.index.ranking import file_score, whole_file_vector

# Per-file search asks FAISS for this many candidates first (then 4x more while fewer than k
# distinct files are among them).
FIRST_CANDIDATES = 64


class EmptyIndexError(InputError):
    """The index exists and holds no segments."""


@dataclass
class Loaded:
    current: layout.Current
    index: Any
    meta: MetaReader
    vectors: np.ndarray  # (S, D) float16, memory-mapped
    sources: np.ndarray  # (S,) int32, memory-mapped


class IndexReader:
    def __init__(self, path: str):
        self.path = path
        current = layout.read_current(path)
        if current is None:
            raise layout.missing_index(path)
        self.current = current
        self.loaded: Loaded | None = None

    @property
    def embedder(self) -> dict[str, Any] | None:
        return self.current.embedder

    def check_not_empty(self) -> None:
        if self.current.segments == 0:
            raise EmptyIndexError(
                f"the index is empty: nothing to search; add stores with `soundtok index --append STORES"
                f"{'' if self.path is None else ' -o ' + self.path}`", self.path)

    def load(self, device: str = "cpu") -> Loaded:
        """Open the generation CURRENT names; ``device`` cuda puts the FAISS index on the GPU."""
        loaded = layout.open_generation(self.path, lambda current: _open(current, device))
        if loaded.current.generation != self.current.generation:
            from soundtok_cli.index.embedders import same_embedder

            if not same_embedder(loaded.current.embedder or {}, self.current.embedder or {}):
                raise InputError("the index was rebuilt with another embedder during this search; "
                                 "search again", self.path)
            self.current = loaded.current
        self.loaded = loaded
        return loaded

    def close(self) -> None:
        if self.loaded is not None:
            self.loaded.meta.close()
            self.loaded = None

    def search(self, query: np.ndarray, k: int, per_file: bool = True) -> list[Hit]:
        """The k best segments, or with ``per_file`` the k best source files (all channels of a
        file together), each as its best segment scored by `ranking.file_score`, best first."""
        if k < 1:
            raise UsageError("must be at least 1", "-k")
        loaded = self.loaded or self.load()
        q = np.asarray(query, np.float32).reshape(1, -1)
        norm = float(np.linalg.norm(q))
        if not np.isfinite(norm) or norm == 0:
            raise InputError("the query vector is zero or not finite", "query")
        q = np.ascontiguousarray(q / norm)
        total = loaded.index.ntotal
        if total == 0:
            self.check_not_empty()
        ivf = _ivf(loaded.index)
        nprobe = max(1, int(getattr(loaded.index, "nprobe", 1)))
        wanted = min(total, k if not per_file else max(4 * k, FIRST_CANDIDATES))
        while True:
            ids, scores = self._candidates(loaded, q, wanted)
            if not per_file:
                chosen = list(range(min(k, len(ids))))
                break
            sources = np.asarray(loaded.sources[ids])
            _, first = np.unique(sources, return_index=True)
            chosen = sorted(first.tolist())
            if len(chosen) >= k:
                break
            if len(ids) < wanted and ivf is not None and nprobe < ivf.nlist:
                nprobe = min(ivf.nlist, nprobe * 4)  # the probed lists ran out of candidates
                _set_nprobe(loaded.index, nprobe)
                continue
            if len(ids) < wanted or wanted >= total:
                break
            wanted = min(total, wanted * 4)
        if not per_file:
            return loaded.meta.hits(ids[chosen], scores[chosen])
        # each candidate file's best segment, ranked with the file as a whole (ranking.py)
        best_ids, best = ids[chosen], scores[chosen]
        ranked = self._file_scores(loaded, q, best_ids, best)
        order = np.lexsort((best_ids, -ranked))[:k]
        return loaded.meta.hits(best_ids[order], ranked[order])

    def _file_scores(self, loaded: Loaded, q: np.ndarray, best_ids: np.ndarray, best: np.ndarray) -> np.ndarray:
        """The ranking scores of the files whose best segments are ``best_ids`` (cosines ``best``)."""
        rows = loaded.meta.item_rows(best_ids)
        whole = np.array([whole_file_vector(loaded.vectors[rows[i][0] : rows[i][0] + rows[i][1]]) @ q[0]
                          if i in rows else b for i, b in zip(best_ids.tolist(), best)], np.float32)
        return file_score(best, whole).astype(np.float32)

    def _candidates(self, loaded: Loaded, q: np.ndarray, wanted: int) -> tuple[np.ndarray, np.ndarray]:
        """FAISS's best ``wanted`` ids, re-scored exactly and sorted (best first, then by id)."""
        _, found = loaded.index.search(q, wanted)
        ids = found[0][found[0] >= 0].astype(np.int64)
        if not len(ids):
            return ids, np.zeros(0, np.float32)
        order = np.argsort(ids)
        exact = np.empty(len(ids), np.float32)
        exact[order] = np.asarray(loaded.vectors[ids[order]], np.float32) @ q[0]
        rank = np.lexsort((ids, -exact))
        return ids[rank], exact[rank]


def _ivf(index: Any) -> Any:
    import faiss

    try:
        return faiss.extract_index_ivf(index)
    except (RuntimeError, AttributeError):
        return None


def _set_nprobe(index: Any, nprobe: int) -> None:
    from soundtok_cli.index.ann import load_faiss, set_nprobe

    set_nprobe(load_faiss(), index, nprobe)


def _open(current: layout.Current, device: str) -> Loaded:
    """Open one generation; FileNotFoundError when it has gone (open_generation retries)."""
    path = current.path
    if current.segments == 0:
        raise EmptyIndexError("the index is empty: nothing to search", path)
    for name in (layout.INDEX_FILE, layout.VECTORS_FILE, layout.META_FILE, layout.SOURCES_FILE):
        if not os.path.isfile(current.file(name)):
            if not os.path.isdir(current.directory):
                raise FileNotFoundError(current.directory)
            raise layout.corrupt(path, f"{current.data['directory']}/{name} is missing")
    from soundtok_cli.index.ann import load_faiss, read, set_nprobe, to_gpu, use_gpu

    faiss = load_faiss(threads=1)  # one query: no thread pool to start
    try:
        index = read(faiss, current.file(layout.INDEX_FILE))
    except RuntimeError:
        raise layout.corrupt(path, f"{current.data['directory']}/{layout.INDEX_FILE} is unreadable") from None
    dim = int((current.embedder or {}).get("dim", index.d))
    if index.ntotal != current.segments or index.d != dim:
        raise layout.corrupt(path, f"{layout.INDEX_FILE} holds {index.ntotal} vectors of {index.d} "
                                   f"dimensions, CURRENT says {current.segments} of {dim}")
    try:
        vectors = np.load(current.file(layout.VECTORS_FILE), mmap_mode="r")
        sources = np.load(current.file(layout.SOURCES_FILE), mmap_mode="r")
    except (ValueError, OSError) as error:
        if isinstance(error, FileNotFoundError):
            raise
        raise layout.corrupt(path, f"unreadable vectors ({error})") from None
    if vectors.shape != (current.segments, dim) or sources.shape != (current.segments,):
        raise layout.corrupt(path, "vectors.npy or sources.npy disagree with CURRENT")
    nprobe = current.index.get("nprobe")
    # One query costs about a millisecond on the CPU, and starting CUDA about a second: the GPU is
    # used only when asked for (--device cuda), "auto" stays on the CPU.
    if device == "cuda" and use_gpu(faiss, device):
        index = to_gpu(faiss, index)
    if nprobe:
        set_nprobe(faiss, index, int(nprobe))
    import sqlite3

    try:
        meta = MetaReader(current.file(layout.META_FILE))
        meta.db.execute("SELECT id FROM files LIMIT 1").fetchall()
    except sqlite3.DatabaseError as error:
        raise layout.corrupt(path, f"{layout.META_FILE}: {error}") from None
    return Loaded(current, index, meta, vectors, sources)
