"""The metadata of a generation, in sqlite (``meta.sqlite``).

    files     (id, source, channel, content_hash, duration, sample_rate, mtime, size, first, count)
              one row per item (a channel of a source); its segments are the vector rows
              [first, first + count)
    segments  (id, file, start, end): id = the FAISS id = the row of vectors.npy; start and end in
              seconds of the source

A generation is written once and then only read, so readers open it immutable (no locking, no
journal) and fetch rows for their hits alone; a writer copies the rows of the files it keeps from
the previous generation with one INSERT ... SELECT inside sqlite.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import quote

import numpy as np

SCHEMA = """
CREATE TABLE files (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    channel INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    duration REAL NOT NULL,
    sample_rate INTEGER NOT NULL,
    mtime REAL,
    size INTEGER,
    first INTEGER NOT NULL,
    count INTEGER NOT NULL
);
CREATE TABLE segments (
    id INTEGER PRIMARY KEY,
    file INTEGER NOT NULL,
    start REAL NOT NULL,
    end REAL NOT NULL
);
"""
# Rows per IN (...) query: well under every sqlite build's limit on bound variables.
ID_CHUNK = 900


@dataclass
class FileRow:
    """One item of the index: a channel of a source and where its segment vectors are."""

    id: int
    source: str
    channel: int
    content_hash: str
    duration: float
    sample_rate: int
    mtime: float | None
    size: int | None
    first: int
    count: int


@dataclass(frozen=True)
class Hit:
    """One segment with its file's metadata, as a search returns it."""

    id: int
    score: float
    source: str
    channel: int
    start: float
    end: float
    content_hash: str
    duration: float


def _readonly_uri(path: str) -> str:
    return f"file:{quote(os.path.abspath(path))}?mode=ro&immutable=1"


class MetaReader:
    """Read-only access to a generation's metadata."""

    def __init__(self, path: str):
        if not os.path.isfile(path):
            raise FileNotFoundError(path)
        self.path = path
        self.db = sqlite3.connect(_readonly_uri(path), uri=True, check_same_thread=False)

    def close(self) -> None:
        self.db.close()

    def files(self) -> list[FileRow]:
        rows = self.db.execute(
            "SELECT id, source, channel, content_hash, duration, sample_rate, mtime, size, first, count "
            "FROM files ORDER BY first").fetchall()
        return [FileRow(*row) for row in rows]

    def count_segments(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM segments").fetchone()[0])

    def item_rows(self, ids: Sequence[int]) -> dict[int, tuple[int, int]]:
        """For segment ids, the vector rows of the item (a channel of a file) each belongs to:
        {segment id: (first row, row count)}."""
        found: dict[int, tuple[int, int]] = {}
        unique = list(dict.fromkeys(int(i) for i in ids))
        for lo in range(0, len(unique), ID_CHUNK):
            chunk = unique[lo : lo + ID_CHUNK]
            marks = ",".join("?" * len(chunk))
            for segment, first, count in self.db.execute(
                    f"SELECT s.id, f.first, f.count FROM segments s JOIN files f ON f.id = s.file WHERE s.id IN ({marks})",
                    chunk):
                found[segment] = (int(first), int(count))
        return found

    def hits(self, ids: Sequence[int], scores: Sequence[float]) -> list[Hit]:
        """The hits for FAISS ids (in the given order; unknown ids are left out)."""
        found: dict[int, tuple] = {}
        unique = list(dict.fromkeys(int(i) for i in ids))
        for lo in range(0, len(unique), ID_CHUNK):
            chunk = unique[lo : lo + ID_CHUNK]
            marks = ",".join("?" * len(chunk))
            for row in self.db.execute(
                "SELECT s.id, f.source, f.channel, s.start, s.end, f.content_hash, f.duration "
                f"FROM segments s JOIN files f ON f.id = s.file WHERE s.id IN ({marks})", chunk):
                found[row[0]] = row
        return [Hit(i, float(score), *found[i][1:]) for i, score in zip((int(i) for i in ids), scores)
                if i in found]


class MetaWriter:
    """Builds ``meta.sqlite`` of a new generation (a temporary file until the generation is
    published, so no journal and no syncing until `close`)."""

    def __init__(self, path: str):
        self.path = path
        self.db = sqlite3.connect(f"file:{quote(os.path.abspath(path))}", uri=True)
        self.db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;" + SCHEMA)
        self.next_file = 0

    def add_file(self, row: FileRow) -> int:
        """Insert a file row (its id is assigned here); returns the id."""
        file_id = self.next_file
        self.next_file += 1
        self.db.execute(
            "INSERT INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (file_id, row.source, int(row.channel), row.content_hash, float(row.duration),
             int(row.sample_rate), row.mtime, row.size, int(row.first), int(row.count)))
        return file_id

    def add_segments(self, file_id: int, first: int, starts: np.ndarray, ends: np.ndarray) -> None:
        ids = range(first, first + len(starts))
        self.db.executemany(
            "INSERT INTO segments VALUES (?, ?, ?, ?)",
            zip(ids, [file_id] * len(starts), np.asarray(starts, np.float64).tolist(),
                np.asarray(ends, np.float64).tolist()))

    def copy_segments(self, old_path: str, moves: Iterable[tuple[int, int, int]]) -> None:
        """Copy the segment rows of kept files from an older generation's metadata:
        ``moves`` holds (old file id, new file id, id shift) per file."""
        self.db.execute("CREATE TEMP TABLE moves (old INTEGER PRIMARY KEY, new INTEGER, shift INTEGER)")
        self.db.executemany("INSERT INTO moves VALUES (?, ?, ?)", moves)
        self.db.execute("ATTACH DATABASE ? AS old", (_readonly_uri(old_path),))
        try:
            self.db.execute(
                "INSERT INTO segments SELECT s.id + m.shift, m.new, s.start, s.end "
                "FROM old.segments s JOIN moves m ON m.old = s.file")
            self.db.commit()
        finally:
            self.db.execute("DETACH DATABASE old")
        self.db.execute("DROP TABLE moves")

    def close(self) -> None:
        self.db.commit()
        self.db.close()
