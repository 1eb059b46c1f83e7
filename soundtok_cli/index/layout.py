"""An index directory on disk: the CURRENT pointer, immutable generations, atomic publishing.

A writer (holding the lock) builds a whole generation in a temporary directory, fsyncs it,
renames it to ``gen-NNNNNN`` and then replaces CURRENT (temporary file, fsync, os.replace, fsync
of the directory). Until that replace, readers keep using the old generation; a writer killed at
any point leaves the old index fully usable, and the next writer removes what it left behind.
Old generations are deleted after publishing; a reader that raced with the deletion re-reads
CURRENT once (`open_generation`).

Imports only the standard library: `soundtok search` reads CURRENT before anything heavy.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from soundtok_cli.errors import InputError, UsageError

FORMAT = "soundtok-index"
FORMAT_VERSION = 1
CURRENT = "CURRENT"
LOCK = "LOCK"
INDEX_FILE = "index.faiss"
VECTORS_FILE = "vectors.npy"
META_FILE = "meta.sqlite"
SOURCES_FILE = "sources.npy"
TEMP_PREFIX = ".tmp-"
CLAIM_GRACE_SECONDS = 60
_GENERATION = re.compile(r"^gen-(\d{6,})$")

T = TypeVar("T")


@dataclass(frozen=True)
class Current:
    """What CURRENT says: the live generation and everything a reader needs before opening it."""

    path: str  # the index directory
    data: dict[str, Any]

    @property
    def generation(self) -> int:
        return int(self.data["generation"])

    @property
    def directory(self) -> str:
        return os.path.join(self.path, self.data["directory"])

    @property
    def embedder(self) -> dict[str, Any] | None:
        return self.data.get("embedder")

    @property
    def index(self) -> dict[str, Any]:
        return self.data.get("index") or {}

    @property
    def counts(self) -> dict[str, int]:
        return self.data.get("counts") or {}

    @property
    def segments(self) -> int:
        return int(self.counts.get("segments", 0))

    def file(self, name: str) -> str:
        return os.path.join(self.directory, name)


def generation_name(number: int) -> str:
    return f"gen-{number:06d}"


def corrupt(path: str, why: str) -> InputError:
    return InputError(f"corrupt index ({why}); rebuild it with `soundtok index STORES -o {path}`", path)


def read_current(path: str) -> Current | None:
    """The index's CURRENT, or None when ``path`` holds no index yet (missing or empty directory,
    or one that only a first, interrupted writer has touched). InputError when it is corrupt or
    not an index at all."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise InputError("not a soundtok index (a file, not a directory)", path)
    current = os.path.join(path, CURRENT)
    try:
        with open(current, "rb") as f:
            raw = f.read(1 << 20)
    except FileNotFoundError:
        if os.path.isdir(path) and not is_index_like(path):
            raise InputError("not a soundtok index (a directory without a CURRENT file)", path) from None
        return None
    except IsADirectoryError:
        raise corrupt(path, "CURRENT is a directory") from None
    except PermissionError:
        raise InputError("permission denied", path) from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise corrupt(path, "CURRENT is not valid JSON") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise corrupt(path, "CURRENT does not describe a soundtok index")
    version = data.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise corrupt(path, f"bad format_version {version!r}")
    if version > FORMAT_VERSION:
        raise InputError(
            f"index format_version {version} is newer than this soundtok reads ({FORMAT_VERSION}); "
            "upgrade soundtok", path)
    directory = data.get("directory")
    generation = data.get("generation")
    counts = data.get("counts")
    if (not isinstance(directory, str) or not _GENERATION.match(directory)
            or not isinstance(generation, int) or not isinstance(counts, dict)
            or not isinstance(counts.get("segments"), int) or counts["segments"] < 0
            or not isinstance(data.get("index"), dict)
            or not (data.get("embedder") is None or isinstance(data.get("embedder"), dict))):
        raise corrupt(path, "CURRENT lacks its generation, counts or index description")
    return Current(path, data)


def is_index_like(path: str) -> bool:
    """True for a directory that holds only what soundtok index writes (possibly only leftovers of
    an interrupted first build), so writing an index there destroys nothing else."""
    try:
        names = os.listdir(path)
    except OSError:
        return False
    return all(name in (CURRENT, LOCK) or name.startswith(TEMP_PREFIX) or _GENERATION.match(name)
               for name in names)


def open_generation(path: str, opener: Callable[[Current], T]) -> T:
    """Run ``opener(current)``; when the generation it names vanished under us (a writer published
    a newer one and deleted it), re-read CURRENT and try once more."""
    current = read_current(path)
    if current is None:
        raise missing_index(path)
    try:
        return opener(current)
    except FileNotFoundError:
        again = read_current(path)
        if again is None:
            raise missing_index(path) from None
        if again.generation == current.generation:
            raise corrupt(path, f"{current.data['directory']} is missing files") from None
        try:
            return opener(again)
        except FileNotFoundError:
            raise corrupt(path, f"{again.data['directory']} is missing files") from None


def missing_index(path: str) -> InputError:
    return InputError(f"no index here; build one with `soundtok index STORES -o {path}`", path)


def prepare_directory(path: str) -> None:
    """Create the index directory for a writer, refusing a path that holds something else."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError("not a soundtok index (a file, not a directory)", path)
    if os.path.isdir(path):
        if not is_index_like(path):
            raise UsageError("exists and is not a soundtok index; give a new or empty directory", path)
        return
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot create the index directory ({error.strerror or error})", path) from None


class TempDir:
    """A temporary directory inside the index for a generation under construction, claimed with
    an flock on the directory itself for as long as it is open: other writers' cleanup
    (`remove_stale`) leaves claimed directories alone and removes those of dead writers."""

    def __init__(self, index_path: str):
        self.path = tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=index_path)
        self.fd: int | None = os.open(self.path, os.O_RDONLY)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        os.chmod(self.path, 0o777 & ~_umask())  # readable like a plain mkdir, not mkdtemp's 0700

    def published(self) -> None:
        """The directory was renamed into place: nothing to remove any more."""
        self.path = None

    def close(self) -> None:
        if self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)
            self.path = None
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def fsync_tree(directory: str) -> None:
    """fsync every file in ``directory`` and the directory itself."""
    for name in os.listdir(directory):
        full = os.path.join(directory, name)
        if os.path.isfile(full):
            fd = os.open(full, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    fsync_dir(directory)


def fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(path: str, temp_dir: str, data: dict[str, Any],
            before_current: Callable[[], None] | None = None,
            on_renamed: Callable[[], None] | None = None) -> Current:
    """Make a finished temporary generation live: rename it to its final name, then replace
    CURRENT atomically. ``data`` is CURRENT's content; its generation and directory are set here.
    ``before_current`` runs between the two steps (tests use it to simulate a crash there)."""
    number = int(data["generation"])
    name = generation_name(number)
    final = os.path.join(path, name)
    if os.path.lexists(final):  # a leftover of a writer killed after this rename, before CURRENT
        shutil.rmtree(final, ignore_errors=True)
    fsync_tree(temp_dir)
    os.rename(temp_dir, final)
    if on_renamed is not None:
        on_renamed()
    fsync_dir(path)
    if before_current is not None:
        before_current()
    document = dict(data, format=FORMAT, format_version=FORMAT_VERSION, directory=name)
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX + "CURRENT-", dir=path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(document, f, indent=1, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, os.path.join(path, CURRENT))
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    fsync_dir(path)
    return Current(path, document)


def stale_entries(path: str, keep: str | None) -> Iterator[str]:
    """Generations other than ``keep`` and temporaries: what a writer holding the lock removes."""
    for name in os.listdir(path):
        if name == keep:
            continue
        if name.startswith(TEMP_PREFIX) or _GENERATION.match(name):
            yield os.path.join(path, name)


def remove_stale(path: str, keep: str | None) -> None:
    """Delete old generations and leftovers of interrupted writers (call with the writer lock
    held). A temporary directory is left alone while a live writer claims it (`TempDir`), and
    for a minute after it was made (the instant between mkdtemp and its claim)."""
    for entry in stale_entries(path, keep):
        if os.path.isdir(entry) and not os.path.islink(entry):
            if os.path.basename(entry).startswith(TEMP_PREFIX) and _claimed(entry):
                continue
            shutil.rmtree(entry, ignore_errors=True)
        else:
            try:
                os.remove(entry)
            except FileNotFoundError:
                pass


def _claimed(directory: str) -> bool:
    try:
        if time.time() - os.stat(directory).st_mtime < CLAIM_GRACE_SECONDS:
            return True
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return True  # gone or unreadable: not ours to remove
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)
