"""Where stores go: a directory store, a single-file zip store, or a stream on stdout.

``open_sink(out)`` picks by name: ``x.zarr`` (directory), ``x.zarr.zip`` (one zip file, good for
Make), ``-`` or None (a stream on stdout; refused when stdout is a terminal). Files are written
under a temporary sibling name and renamed into place on `close`, so an interrupted or failed run
leaves nothing under the final name; `abort` (or an exception inside ``with``) removes the
temporary. Batches are appended as they come: memory holds one batch.

Items written in parts (batches marked with `soundtok_cli.io.parts.mark_continued`) go into a
stream as they are, part by part; a file store gets them joined, so a store on disk holds whole
items only (memory then holds the parts of one item).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import zipfile
from typing import Any, BinaryIO

from soundtok_cli.errors import UsageError
from soundtok_cli.io.parts import PartJoiner, is_continued
from soundtok_cli.io.store import MAX_BATCH_FRAMES, Batch, GroupWriter, check_compatible
from soundtok_cli.io.stream import batch_archive, is_url

_FIXED_DATE = (1980, 1, 1, 0, 0, 0)


class Sink:
    """Receives batches of one kind and model; `close` publishes the result, `abort` drops it."""

    name: str = "-"

    def __init__(self) -> None:
        self.attrs: dict[str, Any] | None = None
        self.batches = 0
        self.items = 0  # whole items: the parts of one count once
        self.frames = 0
        self.closed = False
        self._open_item = False  # the last batch's last item continues

    def write(self, batch: Batch, subject: str | None = None) -> None:
        """Append a batch; refuses (InputError naming both) one of another kind or model."""
        if self.closed:
            raise ValueError("write to a closed sink")
        if self.attrs is None:
            batch.validate(subject)
            self.attrs = batch.attrs
        else:
            check_compatible(self.attrs, batch.attrs, subject)
            batch.validate(subject)
        self._write(batch)
        self.batches += 1
        self.items += len(batch) - (1 if self._open_item and len(batch) else 0)
        self.frames += batch.frames
        self._open_item = is_continued(batch)

    def _write(self, batch: Batch) -> None:
        raise NotImplementedError

    def close(self) -> bool:
        """Publish what was written; True when something was (a file sink that got no batch
        creates nothing)."""
        if self.closed:
            return self.batches > 0
        self.closed = True
        return self._close()

    def _close(self) -> bool:
        return self.batches > 0

    def abort(self) -> None:
        """Drop everything written (for files: nothing appears under the final name)."""
        if not self.closed:
            self.closed = True
            self._abort()

    def _abort(self) -> None:
        pass

    def __enter__(self) -> "Sink":
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()


class StreamSink(Sink):
    """Each batch becomes one complete ZIP archive on a binary file object, flushed at once.
    Parts of an item pass through as they are (a batch split by ``max_frames`` says it continues
    on its last piece only)."""

    def __init__(self, out: BinaryIO, name: str = "-", max_frames: int = MAX_BATCH_FRAMES):
        super().__init__()
        self.out = out
        self.name = name
        self.max_frames = max_frames

    def _write(self, batch: Batch) -> None:
        for part in batch.split(self.max_frames):
            self.out.write(batch_archive(part))
            self.out.flush()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _temp_sibling(path: str, suffix: str, directory: bool) -> str:
    """A new temporary directory or file next to ``path`` (same file system, so rename is atomic),
    with the permissions a plain mkdir/open would give."""
    parent = os.path.dirname(os.path.abspath(path))
    prefix = f".{os.path.basename(path)}.tmp-"
    if directory:
        name = tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=parent)
        os.chmod(name, 0o777 & ~_umask())
        return name
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=parent)
    os.close(fd)
    os.chmod(name, 0o666 & ~_umask())
    return name


class DirectorySink(Sink):
    """A Zarr directory store, grown batch by batch under a temporary name, renamed on close.
    Parts of an item are joined before they are written; a stream cut off inside an item is an
    InputError on close (and nothing is published)."""

    def __init__(self, path: str):
        super().__init__()
        self.name = path
        self.path = path.rstrip("/") or path
        self.tmp: str | None = None  # made on the first batch: a run that fails early leaves nothing
        self._writer: GroupWriter | None = None
        self._joiner = PartJoiner(path)

    def _write(self, batch: Batch) -> None:
        if self._writer is None:
            from zarr.storage import LocalStore

            self.tmp = _temp_sibling(self.path, "", directory=True)
            self._writer = GroupWriter(LocalStore(self.tmp))
        for whole in self._joiner.push(batch):
            self._writer.append(whole)

    def _finish(self) -> bool:
        """Complete the temporary store; False (and nothing left behind) when it got no batch."""
        if not self.batches:
            self._abort()
            return False
        try:
            self._joiner.finish()
            self._writer.finish()
        except BaseException:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise
        return True

    def _close(self) -> bool:
        if not self._finish():
            return False
        try:
            _replace_dir(self.tmp, self.path)
        except BaseException:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise
        return True

    def _abort(self) -> None:
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)


def _replace_dir(tmp: str, path: str) -> None:
    """Move a finished directory into place, replacing what was there."""
    if os.path.lexists(path):
        if os.path.isdir(path) and not os.path.islink(path):
            old = _temp_sibling(path, ".old", directory=True)
            os.rmdir(old)
            os.rename(path, old)
            os.rename(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
            return
        os.remove(path)
    os.rename(tmp, path)


class ZipSink(DirectorySink):
    """A directory store in a temporary directory, packed on close into one zip file (STORED,
    root zarr.json first) at a temporary name, then renamed into place."""

    def _close(self) -> bool:
        if not self._finish():
            return False
        tmp_zip = _temp_sibling(self.path, ".zip", directory=False)
        try:
            pack_zip(self.tmp, tmp_zip)
            os.replace(tmp_zip, self.path)
        except BaseException:
            if os.path.exists(tmp_zip):
                os.remove(tmp_zip)
            raise
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)
        return True


def pack_zip(directory: str, zip_path: str) -> None:
    """Pack a directory store into a zip file: STORED entries, root zarr.json first, then the
    other metadata, then chunks; files are copied in pieces (bounded memory)."""
    keys = []
    for root, _dirs, files in os.walk(directory):
        for file in files:
            full = os.path.join(root, file)
            keys.append(os.path.relpath(full, directory).replace(os.sep, "/"))
    keys.sort(key=lambda key: (key != "zarr.json", not key.endswith("zarr.json"), key))
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for key in keys:
            full = os.path.join(directory, *key.split("/"))
            info = zipfile.ZipInfo(key, date_time=_FIXED_DATE)
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            info.file_size = os.path.getsize(full)
            with open(full, "rb") as src, archive.open(info, "w") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)


def _stdout() -> BinaryIO:
    return getattr(sys.stdout, "buffer", sys.stdout)


def open_sink(out: str | None, what: str = "token store", *, stdout: BinaryIO | None = None) -> Sink:
    """The sink for ``-o OUT``: ``x.zarr`` directory, ``x.zarr.zip`` file, ``-``/None a stream on
    stdout. Raises UsageError for a terminal as stdout, a missing directory or another suffix."""
    if out is None or out == "-":
        f = stdout if stdout is not None else _stdout()
        try:
            tty = f.isatty()
        except (AttributeError, ValueError, OSError):
            tty = False
        if tty:
            stream = what[: -len(" store")] if what.endswith(" store") else what
            raise UsageError(
                f"refusing to write a binary {stream} stream to a terminal; use -o FILE or pipe it"
            )
        return StreamSink(f)
    if is_url(out):
        raise UsageError(f"{out}: writing to URLs is not supported; write a local file and copy it")
    stripped = out.rstrip("/") or out
    parent = os.path.dirname(os.path.abspath(stripped))
    if not os.path.isdir(parent):
        raise UsageError(f"{out}: no such directory: {os.path.dirname(stripped) or '.'}")
    if stripped.endswith(".zarr.zip"):
        if os.path.isdir(stripped):
            raise UsageError(f"{out}: is a directory")
        return ZipSink(stripped)
    if stripped.endswith(".zarr"):
        if os.path.exists(stripped) and not os.path.isdir(stripped):
            raise UsageError(f"{out}: exists and is not a directory")
        return DirectorySink(stripped)
    raise UsageError(
        f"{out}: the output must be a .zarr directory, a .zarr.zip file, or - for a stream"
    )
