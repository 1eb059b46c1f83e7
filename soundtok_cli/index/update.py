"""Building and updating an index: replace its content, --append, --prune.

`IndexWriter` holds the writer lock from start to publish. Input stores are staged into a scratch
file inside the new generation's temporary directory (vectors as float16, per-item metadata in
memory), so memory stays bounded by the item table; then the new generation is written in full
(kept rows of the previous generation are copied from its vectors.npy and meta.sqlite, not read
from stores again), its FAISS index built, and it is published by replacing CURRENT.

Identity of an indexed file is (source, channel); ``source`` is stored absolute for local paths
(a relative source is resolved against the current directory of `soundtok index`), URLs and "-"
as they are. Decisions are made per source file (all its channels together): with --append a
source absent from the index is *added*; one whose channels or content hashes differ is
*replaced*; one identical is *unchanged* (its stored vectors are kept). Without --append the index
holds exactly what was given. --prune drops sources whose local file no longer exists.
"""

from __future__ import annotations

import datetime
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from soundtok_cli.errors import InputError, UsageError
from soundtok_cli.index import ann, layout
from soundtok_cli.index.lock import WriterLock
from soundtok_cli.index.meta import FileRow, MetaReader, MetaWriter
from soundtok_cli.index.embedders import embedder_label, same_embedder
from soundtok_cli.io.store import Batch
from soundtok_cli.io.stream import is_url

COPY_ROWS = 1 << 16
SCRATCH = "staged.f16"


def index_source(source: str, cwd: str | None = None) -> str:
    """The source as the index keeps it: absolute for a local path, URLs and "-" unchanged."""
    if source == "-" or is_url(source):
        return source
    return os.path.normpath(os.path.join(cwd or os.getcwd(), source))


def is_local(source: str) -> bool:
    return source != "-" and not is_url(source)


@dataclass
class Staged:
    """An item read from an input store, its vectors waiting in the scratch file."""

    source: str
    channel: int
    content_hash: str
    duration: float
    sample_rate: int
    mtime: float | None
    size: int | None
    starts: np.ndarray
    ends: np.ndarray
    offset: int  # first row in the scratch file
    count: int


@dataclass
class Report:
    """What an update did, counted in source files (all channels of a source together)."""

    path: str
    added: int = 0
    replaced: int = 0
    unchanged: int = 0
    removed: int = 0  # without --append: sources of the old index not given again
    pruned: int = 0
    sources: int = 0
    items: int = 0
    segments: int = 0
    changed: bool = False
    generation: int | None = None
    index: dict[str, Any] = field(default_factory=dict)
    embedder: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "index": self.path, "added": self.added, "replaced": self.replaced,
            "unchanged": self.unchanged, "removed": self.removed, "pruned": self.pruned,
            "files": self.sources, "items": self.items, "segments": self.segments,
            "changed": self.changed, "generation": self.generation, "index_type": self.index,
        }


class IndexWriter:
    """``with IndexWriter(path, append=..., prune=...) as writer:`` then `add_store` for each input
    and `commit`; leaving the block without commit (an error, Ctrl-C) publishes nothing."""

    def __init__(self, path: str, *, append: bool = False, prune: bool = False, device: str = "auto",
                 wait: float = 600.0, note: Callable[[str], None] = lambda m: None,
                 detail: Callable[[str], None] = lambda m: None, exact_max: int | None = None,
                 target_recall: float | None = None, before_publish: Callable[[], None] | None = None):
        self.path = path
        self.append = append
        self.prune = prune
        self.device = device
        self.wait = wait
        self.note = note
        self.detail = detail
        self.exact_max = ann.EXACT_MAX_SEGMENTS if exact_max is None else exact_max
        self.target_recall = ann.TARGET_RECALL if target_recall is None else target_recall
        self.before_publish = before_publish
        self.cwd = os.getcwd()
        self.old: layout.Current | None = None
        self.old_meta: MetaReader | None = None
        self.embedder: dict[str, Any] | None = None
        self.embedder_from: str | None = None
        self.staged: dict[tuple[str, int], Staged] = {}
        self.stores = 0
        self._tmp: layout.TempDir | None = None
        self._scratch = None
        self._scratch_rows = 0

    # -- lifetime -------------------------------------------------------------------------

    def __enter__(self) -> "IndexWriter":
        """Claim a temporary directory in the index for staging; no lock yet (the lock is taken
        in `commit`, so a slow upstream pipe never blocks other writers)."""
        layout.prepare_directory(self.path)
        if self.append or self.prune:
            current = self._read_old()  # fail early, before reading any input
            if current is None and self.prune and not self.append:
                raise layout.missing_index(self.path)
            if current is not None and current.embedder and current.segments:
                self.embedder, self.embedder_from = dict(current.embedder), "index"
        self._tmp = layout.TempDir(self.path)
        try:
            self._scratch = open(os.path.join(self._tmp.path, SCRATCH), "wb")
        except BaseException:
            self._close()
            raise
        return self

    def __exit__(self, kind, value, traceback) -> None:
        self._close()

    def _close(self) -> None:
        if self._scratch is not None:
            self._scratch.close()
            self._scratch = None
        if self.old_meta is not None:
            self.old_meta.close()
            self.old_meta = None
        if self._tmp is not None:
            self._tmp.close()
            self._tmp = None

    def _read_old(self) -> layout.Current | None:
        """CURRENT, with its metadata opened as ``old_meta``. An unreadable index is refused when
        its content is to be kept (--append, --prune) and replaced otherwise."""
        if self.old_meta is not None:
            self.old_meta.close()
        self.old, self.old_meta = None, None
        try:
            current = layout.read_current(self.path)
            if current is not None:
                meta = MetaReader(current.file(layout.META_FILE))
                try:
                    meta.count_segments()  # reads the file: a corrupt one fails here
                    if current.segments and not os.path.isfile(current.file(layout.VECTORS_FILE)):
                        raise FileNotFoundError(current.file(layout.VECTORS_FILE))
                except BaseException:
                    meta.close()
                    raise
                self.old_meta = meta
            self.old = current
        except (InputError, OSError, _sqlite_error()) as error:
            if self.append or self.prune:
                why = error.message if isinstance(error, InputError) else f"{type(error).__name__}: {error}"
                raise UsageError(f"cannot update this index ({why.split('; rebuild')[0]}); rebuild it "
                                 "without --append/--prune", self.path) from None
            self.note(f"soundtok index: replacing an unreadable index at {self.path}")
        return self.old

    # -- input ----------------------------------------------------------------------------

    def add_store(self, batches: Iterable[Batch], subject: str) -> int:
        """Stage every item of one input store; returns its item count. On an InputError nothing
        of this store is kept (the scratch rows it wrote are simply never used)."""
        staged: dict[tuple[str, int], Staged] = {}
        embedder_before = (self.embedder, self.embedder_from)
        try:
            for batch in batches:
                self._check_embedder(batch.attrs.get("embedder") or {}, subject)
                for item in self._stage_batch(batch, subject):
                    staged[(item.source, item.channel)] = item
        except BaseException:
            self.embedder, self.embedder_from = embedder_before
            raise
        self.staged.update(staged)
        self.stores += 1
        return len(staged)

    def _check_embedder(self, embedder: dict[str, Any], subject: str) -> None:
        if self.embedder is None:
            self.embedder = dict(embedder)
            self.embedder_from = subject
            return
        if same_embedder(self.embedder, embedder):
            return
        if self.embedder_from == "index":
            raise InputError(
                f"made with {embedder_label(embedder)}, but the index holds {embedder_label(self.embedder)}; "
                "rebuild the index without --append to change embedders", subject)
        raise InputError(f"made with {embedder_label(embedder)}, but {self.embedder_from} was made with "
                         f"{embedder_label(self.embedder)}; one index holds one embedder", subject)

    def _stage_batch(self, batch: Batch, subject: str) -> list[Staged]:
        vectors = np.asarray(batch.arrays["embeddings"], dtype=np.float32)
        if vectors.size and not np.isfinite(vectors).all():
            raise InputError("embeddings hold NaN or infinite values", subject)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True) if vectors.size else None
        if norms is not None and (np.abs(norms - 1) > 1e-3).any():
            vectors = vectors / np.maximum(norms, 1e-12)  # FAISS here assumes unit vectors
        base = self._scratch_rows
        self._scratch.write(vectors.astype(np.float16).tobytes())
        self._scratch_rows += len(vectors)
        items = []
        seg_start, seg_end = batch.arrays["segments/start"], batch.arrays["segments/end"]
        for i in range(len(batch)):
            start, length = int(batch.items["start"][i]), int(batch.items["length"][i])
            source = index_source(str(batch.items["source"][i]), self.cwd)
            mtime = size = None
            if is_local(source):
                try:
                    stat = os.stat(source)
                    mtime, size = stat.st_mtime, stat.st_size
                except OSError:
                    pass
            items.append(Staged(
                source=source, channel=int(batch.items["channel"][i]),
                content_hash=str(batch.items["content_hash"][i]),
                duration=float(batch.items["duration"][i]), sample_rate=int(batch.items["sample_rate"][i]),
                mtime=mtime, size=size,
                starts=np.asarray(seg_start[start : start + length], np.float64),
                ends=np.asarray(seg_end[start : start + length], np.float64),
                offset=base + start, count=length))
        return items

    # -- output ---------------------------------------------------------------------------

    def commit(self) -> Report:
        """Take the writer lock, decide what the new index holds from the index as it is now,
        write and publish it (unless nothing changed)."""
        with WriterLock(self.path, self.wait, on_wait=self.note):
            self._read_old()
            if (self.old is not None and self.append and self.old.embedder and self.old.segments
                    and self.embedder is not None and not same_embedder(self.old.embedder, self.embedder)):
                raise UsageError(f"the index now holds {embedder_label(self.old.embedder)} (another writer "
                                 f"changed it); nothing from {embedder_label(self.embedder)} was added",
                                 self.path)
            layout.remove_stale(self.path, keep=self.old.data["directory"] if self.old else None)
            return self._commit_locked()

    def _commit_locked(self) -> Report:
        report = Report(self.path)
        old_files = self.old_meta.files() if self.old_meta is not None else []
        old_by_source: dict[str, list[FileRow]] = {}
        for row in old_files:
            old_by_source.setdefault(row.source, []).append(row)
        new_by_source: dict[str, list[Staged]] = {}
        for item in self.staged.values():
            new_by_source.setdefault(item.source, []).append(item)

        keep_old: set[str] = set(old_by_source) if (self.append or (self.prune and not self.stores)) else set()
        take_new: set[str] = set()
        for source, items in new_by_source.items():
            old = old_by_source.get(source)
            if old is None:
                report.added += 1
                take_new.add(source)
            elif {(r.channel, r.content_hash) for r in old} == {(i.channel, i.content_hash) for i in items}:
                report.unchanged += 1
                if self.append:
                    continue  # keep the stored vectors
                take_new.add(source)
            else:
                report.replaced += 1
                keep_old.discard(source)
                take_new.add(source)
        if not (self.append or (self.prune and not self.stores)):
            report.removed = sum(1 for source in old_by_source if source not in new_by_source)
        if self.prune:
            for source in sorted(keep_old | take_new):
                if is_local(source) and not os.path.exists(source):
                    report.pruned += 1
                    keep_old.discard(source)
                    take_new.discard(source)
                    self.detail(f"pruned {source}")

        kept = [row for row in old_files if row.source in keep_old]
        new = [item for item in self.staged.values() if item.source in take_new]
        # Without --append the given stores are the new content: always a new generation.
        report.changed = bool(report.added or report.replaced or report.pruned or self.old is None
                              or (self.stores and not self.append))
        report.sources = len({row.source for row in kept} | {item.source for item in new})
        report.items = len(kept) + len(new)
        report.segments = sum(row.count for row in kept) + sum(item.count for item in new)
        report.embedder = self.embedder
        if not report.changed:
            report.generation = self.old.generation if self.old else None
            report.index = self.old.index if self.old else {}
            return report
        self._scratch.close()
        self._scratch = None
        current = self._write_generation(kept, new, report)
        report.generation = current.generation
        report.index = current.index
        layout.remove_stale(self.path, keep=current.data["directory"])
        return report

    def _write_generation(self, kept: list[FileRow], new: list[Staged], report: Report) -> layout.Current:
        tmp = self._tmp.path
        started = time.perf_counter()
        embedder = self.embedder or (self.old.embedder if self.old else None) or {}
        dim = int(embedder.get("dim", 0))
        total = report.segments
        vectors_path = os.path.join(tmp, layout.VECTORS_FILE)
        vectors = _open_rows(vectors_path, np.float16, (total, dim))
        meta = MetaWriter(os.path.join(tmp, layout.META_FILE))
        row = 0
        moves = []
        old_vectors = (np.load(self.old.file(layout.VECTORS_FILE), mmap_mode="r")
                       if kept else None)
        for run in _runs(kept):
            lo, hi = run[0].first, run[-1].first + run[-1].count
            for start in range(lo, hi, COPY_ROWS):
                stop = min(hi, start + COPY_ROWS)
                vectors[row + start - lo : row + stop - lo] = old_vectors[start:stop]
            for file in run:
                new_first = row + file.first - lo
                file_id = meta.add_file(FileRow(**{**file.__dict__, "first": new_first}))
                moves.append((file.id, file_id, new_first - file.first))
            row += hi - lo
        if moves:
            meta.copy_segments(self.old.file(layout.META_FILE), moves)
        del old_vectors
        scratch_path = os.path.join(tmp, SCRATCH)
        scratch = (np.memmap(scratch_path, dtype=np.float16, mode="r", shape=(self._scratch_rows, dim))
                   if self._scratch_rows else None)
        for item in new:
            for start in range(0, item.count, COPY_ROWS):
                stop = min(item.count, start + COPY_ROWS)
                vectors[row + start : row + stop] = scratch[item.offset + start : item.offset + stop]
            file_id = meta.add_file(FileRow(
                id=-1, source=item.source, channel=item.channel, content_hash=item.content_hash,
                duration=item.duration, sample_rate=item.sample_rate, mtime=item.mtime, size=item.size,
                first=row, count=item.count))
            meta.add_segments(file_id, row, item.starts, item.ends)
            row += item.count
        del scratch
        os.remove(scratch_path)
        _write_source_numbers(os.path.join(tmp, layout.SOURCES_FILE), total,
                              [(row.source, row.count) for row in kept] + [(item.source, item.count) for item in new])
        meta.close()
        if isinstance(vectors, np.memmap):
            vectors.flush()
        del vectors

        self.detail(f"wrote {total} vectors and their metadata in {time.perf_counter() - started:.1f} s")
        index_params: dict[str, Any] = {"type": "empty"}
        if total:
            faiss = ann.load_faiss()
            gpu = ann.use_gpu(faiss, self.device)
            self.detail(f"building the FAISS index of {total} segments on the {'GPU' if gpu else 'CPU'}")
            built = ann.build(np.load(vectors_path, mmap_mode="r"), gpu=gpu, exact_max=self.exact_max,
                              target=self.target_recall, note=self.detail)
            ann.write(faiss, built.index, os.path.join(tmp, layout.INDEX_FILE))
            index_params = built.params
        data = {
            "generation": (self.old.generation + 1) if self.old else 1,
            "embedder": embedder or None,
            "index": index_params,
            "counts": {"sources": report.sources, "items": report.items, "segments": total},
            "producer": {"command": "index", "version": _version()},
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
        return layout.publish(self.path, tmp, data, before_current=self.before_publish,
                              on_renamed=self._tmp.published)


def _open_rows(path: str, dtype: Any, shape: tuple[int, ...]) -> np.ndarray:
    """A new .npy file to fill in place (memory-mapped; an empty one, which mmap cannot map, is
    written at once and returned as an in-memory array)."""
    if shape[0] == 0:
        empty = np.zeros(shape, dtype)
        np.save(path, empty)
        return empty
    return np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)


def _write_source_numbers(path: str, total: int, entries: list[tuple[str, int]]) -> None:
    """sources.npy: for each segment row (in order), the number of its source file, so a per-file
    search groups candidates without reading metadata."""
    numbers: dict[str, int] = {}
    out = _open_rows(path, np.int32, (total,))
    row = 0
    for source, count in entries:
        out[row : row + count] = numbers.setdefault(source, len(numbers))
        row += count
    if isinstance(out, np.memmap):
        out.flush()
    del out


def _runs(rows: list[FileRow]) -> list[list[FileRow]]:
    """Kept rows grouped into runs that are contiguous in the old vectors (one copy per run)."""
    runs: list[list[FileRow]] = []
    for row in sorted(rows, key=lambda r: r.first):
        if runs and runs[-1][-1].first + runs[-1][-1].count == row.first:
            runs[-1].append(row)
        else:
            runs.append([row])
    return runs


def _sqlite_error():
    import sqlite3

    return sqlite3.Error


def _version() -> str:
    from soundtok_cli import __version__

    return __version__
