"""Streams of stores, and reading stores from wherever they are.

A stream is a sequence of standard ZIP archives, concatenated, each one a complete Zarr v3 store
holding one batch of items: the root ``zarr.json`` first, entries STORED (chunks are already
compressed), sizes in the local headers (no data descriptors) and a central directory and end
record closing each archive. A reader therefore parses a stream sequentially from a pipe, one
batch in memory at a time, and any single batch saved alone opens with zarr's stock ``ZipStore``.

A batch may end with an item that continues in the next batch (``"continues": true`` in its
attributes: a long item written as it is made, see `soundtok_cli.io.parts`); readers get such
items joined unless they ask for the parts.

`read_batches` reads any source: a directory store, a ``.zarr.zip`` file, a file holding a
stream, ``-`` (stdin: a stream, or lines of store paths), or an fsspec URL. Everything that can go
wrong with an input is an `InputError` naming it, never a traceback.
"""

from __future__ import annotations

import io
import os
import re
import struct
import sys
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

from soundtok_cli.errors import InputError, UsageError
from soundtok_cli.io.parts import check_parts, join_parts
from soundtok_cli.io.store import (
    MAX_BATCH_FRAMES,
    Batch,
    GroupWriter,
    check_compatible,
    open_group,
    read_group,
)

LOCAL_HEADER = b"PK\x03\x04"
CENTRAL_HEADER = b"PK\x01\x02"
END_RECORD = b"PK\x05\x06"
ZIP64_END_RECORD = b"PK\x06\x06"
ZIP64_LOCATOR = b"PK\x06\x07"

# Bounds on untrusted input.
MAX_ENTRY_BYTES = 2 << 30  # one zip entry (a chunk or a metadata document)
MAX_ARCHIVE_BYTES = 4 << 30  # one batch of a stream, all entries together
MAX_ARCHIVE_ENTRIES = 100_000  # entries in one batch of a stream
MAX_FILE_ENTRIES = 10_000_000  # entries in one .zarr.zip file (read lazily)

NOT_A_STORE = "not a soundtok store or stream"

_FIXED_DATE = (1980, 1, 1, 0, 0, 0)
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]+://")


def is_url(path: str) -> bool:
    """True for fsspec URLs (``s3://``, ``http://``, ``memory://`` ...), not for plain paths."""
    return bool(_URL.match(path))


# --------------------------------------------------------------------------------------------
# Writing


def _entry_order(key: str) -> tuple:
    # Root metadata first, then the other metadata documents, then chunks.
    return (key != "zarr.json", not key.endswith("zarr.json"), key)


def archive_bytes(entries: Mapping[str, bytes]) -> bytes:
    """A standard ZIP archive of the given entries: STORED, root ``zarr.json`` first, sizes in the
    local headers, a central directory and end record (openable by any zip reader)."""
    out = io.BytesIO()  # seekable, so zipfile writes sizes in the local headers
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for key in sorted(entries, key=_entry_order):
            info = zipfile.ZipInfo(key, date_time=_FIXED_DATE)
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            archive.writestr(info, entries[key])
    return out.getvalue()


def batch_entries(batch: Batch) -> dict[str, bytes]:
    """The keys and values of a complete Zarr store holding one batch (built in memory)."""
    from zarr.storage import MemoryStore

    store_dict: dict[str, Any] = {}
    writer = GroupWriter(MemoryStore(store_dict=store_dict), fit=True)
    writer.append(batch)
    writer.finish()
    return {key: value.to_bytes() for key, value in store_dict.items()}


def batch_archive(batch: Batch) -> bytes:
    """One batch as a single ZIP archive: one element of a stream, or a ``.zarr.zip`` on its own."""
    return archive_bytes(batch_entries(batch))


def write_stream(batches: Iterator[Batch] | Sequence[Batch], out: BinaryIO,
                 max_frames: int = MAX_BATCH_FRAMES) -> int:
    """Write batches to a binary file object as a stream, flushing after each archive; returns
    the number of archives written. Batches over ``max_frames`` frames are split."""
    count = 0
    for batch in batches:
        for part in batch.split(max_frames):
            out.write(batch_archive(part))
            out.flush()
            count += 1
    return count


# --------------------------------------------------------------------------------------------
# Parsing a stream sequentially


def _read_exact(f: BinaryIO, n: int) -> bytes:
    """Up to n bytes, fewer only at end of input (loops over short reads from pipes)."""
    if n <= 0:
        return b""
    data = f.read(n)
    if data is None:
        data = b""
    if len(data) == n or not data:
        return data
    parts = [data]
    got = len(data)
    while got < n:
        more = f.read(n - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def _skip(f: BinaryIO, n: int) -> int:
    skipped = 0
    while skipped < n:
        got = len(_read_exact(f, min(n - skipped, 1 << 20)))
        if not got:
            break
        skipped += got
    return skipped


def check_entry_name(name: str, subject: str | None) -> None:
    """Refuse zip entry names that could escape a directory (absolute, drive, ``..``)."""
    unsafe = (
        not name
        or name.startswith(("/", "\\"))
        or "\\" in name
        or "\x00" in name
        or re.match(r"^[A-Za-z]:", name) is not None
        or any(part == ".." for part in name.split("/"))
    )
    if unsafe:
        raise InputError(f"unsafe entry name in zip: {name!r}", subject)


def _decode_name(raw: bytes, flags: int) -> str:
    return raw.decode("utf-8" if flags & 0x800 else "cp437", errors="replace")


def _zip64_sizes(extra: bytes, size: int, csize: int) -> tuple[int, int]:
    pos = 0
    while pos + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4 : pos + 4 + length]
        if tag == 0x0001:
            values = [struct.unpack_from("<Q", body, i)[0] for i in range(0, len(body) - 7, 8)]
            if size == 0xFFFFFFFF and values:
                size = values.pop(0)
            if csize == 0xFFFFFFFF and values:
                csize = values.pop(0)
            break
        pos += 4 + length
    return size, csize


class _StreamParser:
    """Reads ZIP archives one after the other from a non-seekable binary file object."""

    def __init__(self, f: BinaryIO, subject: str):
        self.f = f
        self.subject = subject
        self.offset = 0
        self.index = 0  # archives read so far

    def read(self, n: int, what: str) -> bytes:
        data = _read_exact(self.f, n)
        self.offset += len(data)
        if len(data) < n:
            raise InputError(
                f"truncated stream: batch {self.index + 1} ends inside {what} at byte {self.offset}",
                self.subject,
            )
        return data

    def skip(self, n: int, what: str) -> None:
        got = _skip(self.f, n)
        self.offset += got
        if got < n:
            raise InputError(
                f"truncated stream: batch {self.index + 1} ends inside {what} at byte {self.offset}",
                self.subject,
            )

    def corrupt(self, what: str) -> InputError:
        return InputError(
            f"corrupt stream: {what} in batch {self.index + 1} at byte {self.offset}", self.subject
        )

    def archives(self) -> Iterator[dict[str, bytes]]:
        while True:
            signature = _read_exact(self.f, 4)
            self.offset += len(signature)
            if not signature:
                if self.index == 0:
                    raise InputError(f"empty input: {NOT_A_STORE}", self.subject)
                return
            if signature != LOCAL_HEADER:
                if self.index == 0 and self.offset <= 4:
                    raise InputError(NOT_A_STORE, self.subject)
                if len(signature) < 4:
                    raise InputError(
                        f"truncated stream: {len(signature)} stray bytes after batch {self.index}",
                        self.subject,
                    )
                raise InputError(
                    f"corrupt stream: unexpected bytes after batch {self.index} "
                    f"at byte {self.offset - 4}",
                    self.subject,
                )
            yield self._archive()
            self.index += 1

    def _archive(self) -> dict[str, bytes]:
        entries: dict[str, bytes] = {}
        names: list[str] = []
        total = 0
        signature = LOCAL_HEADER
        while signature == LOCAL_HEADER:
            name, data = self._entry()
            if name is not None:
                total += len(data)
                if total > MAX_ARCHIVE_BYTES:
                    raise self.corrupt(f"batch larger than {MAX_ARCHIVE_BYTES >> 30} GiB")
                entries[name] = data
            names.append(name)
            if len(names) > MAX_ARCHIVE_ENTRIES:
                raise self.corrupt(f"more than {MAX_ARCHIVE_ENTRIES} zip entries")
            signature = self.read(4, "the zip directory")
        central = 0
        while signature == CENTRAL_HEADER:
            fixed = self.read(42, "the zip directory")
            name_len, extra_len, comment_len = struct.unpack_from("<HHH", fixed, 24)
            self.skip(name_len + extra_len + comment_len, "the zip directory")
            central += 1
            if central > len(names):
                raise self.corrupt("zip directory lists more entries than the archive holds")
            signature = self.read(4, "the zip directory")
        if signature == ZIP64_END_RECORD:
            (size,) = struct.unpack("<Q", self.read(8, "the zip64 end record"))
            if size > 1 << 16:
                raise self.corrupt("oversized zip64 end record")
            self.skip(size, "the zip64 end record")
            signature = self.read(4, "the zip end record")
        if signature == ZIP64_LOCATOR:
            self.skip(16, "the zip64 locator")
            signature = self.read(4, "the zip end record")
        if signature != END_RECORD:
            raise self.corrupt("no zip end record after the directory")
        record = self.read(18, "the zip end record")
        _disk, _cd_disk, _n_disk, n_total, _size, _offset, comment_len = struct.unpack("<HHHHIIH", record)
        self.skip(comment_len, "the zip end record")
        if central != len(names) or (n_total != 0xFFFF and n_total != len(names)):
            raise self.corrupt(
                f"zip directory lists {central} entries, the archive holds {len(names)}"
            )
        return entries

    def _entry(self) -> tuple[str | None, bytes]:
        header = self.read(26, "a zip entry header")
        (_version, flags, method, _time, _date, crc, csize, size, name_len, extra_len) = struct.unpack(
            "<HHHHHIIIHH", header
        )
        raw_name = self.read(name_len, "a zip entry name")
        extra = self.read(extra_len, "a zip entry header")
        name = _decode_name(raw_name, flags)
        check_entry_name(name.rstrip("/") if name.endswith("/") and name != "/" else name, self.subject)
        if flags & 0x1:
            raise self.corrupt(f"encrypted zip entry {name!r}")
        if flags & 0x8:
            raise InputError(
                f"zip entry {name!r} uses a data descriptor; a stream needs sizes in the local "
                "headers (write it with soundtok)",
                self.subject,
            )
        if size == 0xFFFFFFFF or csize == 0xFFFFFFFF:
            size, csize = _zip64_sizes(extra, size, csize)
        if size > MAX_ENTRY_BYTES or csize > MAX_ENTRY_BYTES:
            raise self.corrupt(f"zip entry {name!r} larger than {MAX_ENTRY_BYTES >> 30} GiB")
        if method not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise self.corrupt(f"zip entry {name!r} uses unsupported compression method {method}")
        payload = self.read(csize, f"zip entry {name!r}")
        if method == zipfile.ZIP_DEFLATED:
            inflater = zlib.decompressobj(-15)
            try:
                data = inflater.decompress(payload, size + 1)
            except zlib.error:
                raise self.corrupt(f"bad deflate data in zip entry {name!r}") from None
        else:
            data = payload
        if len(data) != size:
            raise self.corrupt(f"zip entry {name!r} holds {len(data)} bytes, its header says {size}")
        if zlib.crc32(data) != crc:
            raise self.corrupt(f"checksum mismatch in zip entry {name!r}")
        if name.endswith("/"):
            return None, b""  # a directory entry
        return name, data


def iter_archives(f: BinaryIO, subject: str) -> Iterator[dict[str, bytes]]:
    """The entries of each archive of a stream, one archive at a time."""
    return _StreamParser(f, subject).archives()


def _memory_store(entries: MutableMapping[str, Any]) -> Any:
    from zarr.storage import MemoryStore

    return MemoryStore(store_dict=entries, read_only=True)


def _stream_batches(f: BinaryIO, subject: str, expect_kind: str | None, max_frames: int) -> Iterator[Batch]:
    from zarr.core.buffer import default_buffer_prototype

    buffer = default_buffer_prototype().buffer
    for entries in iter_archives(f, subject):
        if "zarr.json" not in entries:
            raise InputError(f"{NOT_A_STORE} (a zip archive without zarr.json)", subject)
        store = _memory_store({key: buffer.from_bytes(value) for key, value in entries.items()})
        del entries
        yield from read_group(open_group(store, subject), subject, expect_kind=expect_kind,
                              max_frames=max_frames)


# --------------------------------------------------------------------------------------------
# Zip files read lazily (random access)


class _ZipEntries(MutableMapping):
    """Read-only mapping of a zip file's entries to zarr Buffers, read on demand."""

    def __init__(self, archive: zipfile.ZipFile):
        from zarr.core.buffer import default_buffer_prototype

        self._archive = archive
        self._infos = {info.filename: info for info in archive.infolist() if not info.is_dir()}
        self._buffer = default_buffer_prototype().buffer

    def __getitem__(self, key: str) -> Any:
        info = self._infos[key]
        return self._buffer.from_bytes(self._archive.read(info))

    def __iter__(self):
        return iter(self._infos)

    def __len__(self) -> int:
        return len(self._infos)

    def __contains__(self, key: object) -> bool:
        return key in self._infos

    def __setitem__(self, key: str, value: Any) -> None:
        raise PermissionError("read-only zip store")

    def __delitem__(self, key: str) -> None:
        raise PermissionError("read-only zip store")


def _single_archive(f: BinaryIO, subject: str) -> zipfile.ZipFile | None:
    """A ZipFile when ``f`` holds exactly one archive starting at byte 0; None for a stream of
    several archives (or one whose end is missing), which is then parsed sequentially."""
    try:
        archive = zipfile.ZipFile(f)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, struct.error):
        return None
    infos = archive.infolist()
    if not infos or min(info.header_offset for info in infos) != 0:
        archive.close()
        return None
    if len(infos) > MAX_FILE_ENTRIES:
        raise InputError(f"more than {MAX_FILE_ENTRIES} zip entries", subject)
    for info in infos:
        check_entry_name(info.filename.rstrip("/") if info.is_dir() else info.filename, subject)
        if info.file_size > MAX_ENTRY_BYTES or info.compress_size > MAX_ENTRY_BYTES:
            raise InputError(
                f"zip entry {info.filename!r} larger than {MAX_ENTRY_BYTES >> 30} GiB", subject
            )
        if info.flag_bits & 0x1:
            raise InputError(f"encrypted zip entry {info.filename!r}", subject)
    return archive


def _file_batches(f: BinaryIO, subject: str, expect_kind: str | None, max_frames: int) -> Iterator[Batch]:
    """A seekable file: one zip archive (read lazily) or a stream of archives (sequentially)."""
    head = _read_exact(f, 4)
    if not head:
        raise InputError(f"empty file: {NOT_A_STORE}", subject)
    if head != LOCAL_HEADER:
        raise InputError(NOT_A_STORE, subject)
    f.seek(0)
    archive = _single_archive(f, subject)
    if archive is None:
        f.seek(0)
        yield from _stream_batches(f, subject, expect_kind, max_frames)
        return
    with archive:
        entries = _ZipEntries(archive)
        if "zarr.json" not in entries:
            raise InputError(f"{NOT_A_STORE} (a zip file without zarr.json)", subject)
        try:
            yield from read_group(open_group(_memory_store(entries), subject), subject,
                                  expect_kind=expect_kind, max_frames=max_frames)
        except zipfile.BadZipFile as error:
            raise InputError(f"corrupt zip file ({error})", subject) from None


# --------------------------------------------------------------------------------------------
# Sources


@dataclass
class Source:
    """One input: ``name`` as given (shown in messages), and an already-open binary stream when it
    is stdin holding a stream (``fileobj``); otherwise ``name`` is opened when read."""

    name: str
    fileobj: BinaryIO | None = None

    def __str__(self) -> str:
        return self.name


class _Prefixed(io.RawIOBase):
    """A binary reader that first returns bytes already read from ``f`` (format sniffing)."""

    def __init__(self, head: bytes, f: BinaryIO):
        self._head = head
        self._f = f

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            data = self._head + (self._f.read() or b"")
            self._head = b""
            return data
        if self._head:
            data, self._head = self._head[:n], self._head[n:]
            if len(data) < n:
                data += self._f.read(n - len(data)) or b""
            return data
        return self._f.read(n) or b""

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _stdin() -> BinaryIO:
    return getattr(sys.stdin, "buffer", sys.stdin)


def _isatty(f: Any) -> bool:
    try:
        return bool(f.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def sniff_stdin(stdin: BinaryIO | None = None) -> Iterator[Source]:
    """Sources on stdin: the stream itself (first bytes are a zip header), or one store per line."""
    f = stdin if stdin is not None else _stdin()
    if _isatty(f):
        raise UsageError(
            "no input: stdin is a terminal; give store paths, or pipe a stream or a list of paths"
        )
    head = _read_exact(f, 4)
    if head == LOCAL_HEADER:
        yield Source("-", _Prefixed(head, f))
        return
    if not head:
        return
    pending = head + (f.readline(1 << 16) if b"\n" not in head else b"")
    while pending:
        if b"\x00" in pending or (b"\n" not in pending and len(pending) >= 1 << 16):
            raise InputError(NOT_A_STORE, "-")
        for raw in pending.splitlines():
            try:
                line = raw.decode("utf-8").strip()
            except UnicodeDecodeError:
                raise InputError(f"{NOT_A_STORE} (neither a stream nor a list of paths)", "-") from None
            if not line or line.startswith("#"):
                continue
            if line == "-":
                raise InputError("'-' cannot appear in a list of store paths on stdin", "-")
            yield Source(line)
        pending = f.readline(1 << 16)


def iter_sources(
    args: Sequence[str] | None,
    stdin: BinaryIO | None = None,
    on_error: Callable[[InputError], None] | None = None,
) -> Iterator[Source]:
    """The inputs named on a command line: paths and URLs as given; ``-`` or nothing means stdin,
    which holds either a stream or lines of store paths (``ls *.zarr.zip | soundtok info``).

    Unreadable stdin (neither a stream nor a list of paths) is an InputError; with ``on_error``
    it is passed there and the remaining arguments still follow. A terminal as stdin is a
    UsageError.
    """
    args = list(args or ["-"])
    if args.count("-") > 1:
        raise UsageError("stdin ('-') can be read only once")
    for arg in args:
        if arg != "-":
            yield Source(arg)
            continue
        try:
            yield from sniff_stdin(stdin)
        except InputError as error:
            if on_error is None:
                raise
            on_error(error)


# --------------------------------------------------------------------------------------------
# Reading


def read_batches(
    source: str | Source,
    *,
    expect_kind: str | None = None,
    max_frames: int = MAX_BATCH_FRAMES,
    stdin: BinaryIO | None = None,
    parts: bool = False,
) -> Iterator[Batch]:
    """Yield the batches of one source, in order, each of at most ``max_frames`` frames (one
    archive of a stream at a time; a large store slice by slice), so memory stays bounded.

    ``source``: a directory store, a ``.zarr.zip`` file, a file holding a stream, an fsspec URL,
    or ``-`` for stdin (a stream, or lines of store paths read in turn). All batches of a source
    share kind and model. Errors are `InputError`s naming the source (a listed path for stdin).

    An item that a stream holds in parts comes whole (one item, in a batch of its own), so a
    reader sees whole items only. With ``parts=True`` the batches come as they arrive instead,
    ``"continues"`` intact, for readers that work on an item while it arrives (decode); either
    way a part that does not carry on its item, or a source that ends inside an item, is an
    InputError.
    """
    if isinstance(source, str) and source == "-":
        for each in sniff_stdin(stdin):
            yield from read_batches(each, expect_kind=expect_kind, max_frames=max_frames, parts=parts)
        return
    src = source if isinstance(source, Source) else Source(source)
    batches = _compatible(_read_source(src, expect_kind, max_frames), src.name)
    yield from check_parts(batches, src.name) if parts else join_parts(batches, src.name)


def _compatible(batches: Iterator[Batch], subject: str) -> Iterator[Batch]:
    """The batches of one source, refusing one of another kind or model than the first."""
    first = None
    for batch in batches:
        if first is None:
            first = batch.attrs
        else:
            check_compatible(first, batch.attrs, subject)
        yield batch


def _read_source(src: Source, expect_kind: str | None, max_frames: int) -> Iterator[Batch]:
    name = src.name
    try:
        if src.fileobj is not None:
            yield from _stream_batches(src.fileobj, name, expect_kind, max_frames)
        elif is_url(name):
            yield from _url_batches(name, expect_kind, max_frames)
        else:
            yield from _path_batches(name, expect_kind, max_frames)
    except (InputError, UsageError):
        raise
    except IsADirectoryError:
        raise InputError(NOT_A_STORE, name) from None
    except FileNotFoundError:
        raise InputError("no such file or directory", name) from None
    except PermissionError:
        raise InputError("permission denied", name) from None
    except OSError as error:
        raise InputError(error.strerror or str(error), name) from None
    except ImportError as error:
        raise InputError(f"cannot read this URL ({error})", name) from None


def _path_batches(path: str, expect_kind: str | None, max_frames: int) -> Iterator[Batch]:
    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, "zarr.json")):
            raise InputError(f"{NOT_A_STORE} (a directory without zarr.json)", path)
        from zarr.storage import LocalStore

        group = open_group(LocalStore(path, read_only=True), path)
        yield from read_group(group, path, expect_kind=expect_kind, max_frames=max_frames)
        return
    if not os.path.exists(path):
        raise InputError("no such file or directory", path)
    with open(path, "rb") as f:
        yield from _file_batches(f, path, expect_kind, max_frames)


def _url_batches(url: str, expect_kind: str | None, max_frames: int) -> Iterator[Batch]:
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as error:
        raise InputError(f"cannot open URL ({error})", url) from None
    try:
        is_dir = fs.isdir(path)
        exists = is_dir or fs.exists(path)
    except Exception as error:  # backend-specific network and auth errors
        raise InputError(f"cannot reach ({type(error).__name__}: {error})", url) from None
    if not exists:
        raise InputError("no such file or directory", url)
    if is_dir:
        from zarr.storage import FsspecStore

        store = FsspecStore.from_url(url.rstrip("/"), read_only=True)
        group = open_group(store, url)
        yield from read_group(group, url, expect_kind=expect_kind, max_frames=max_frames)
        return
    with fs.open(path, "rb") as f:
        if getattr(f, "seekable", lambda: False)():
            yield from _file_batches(f, url, expect_kind, max_frames)
        else:
            yield from _stream_batches(f, url, expect_kind, max_frames)
