"""Streams: concatenated ZIP archives, each a complete Zarr store, parsed sequentially."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

from soundtok_cli.errors import InputError, UsageError
from soundtok_cli.io.store import Batch
from soundtok_cli.io.stream import (
    Source,
    archive_bytes,
    batch_archive,
    batch_entries,
    iter_sources,
    read_batches,
    write_stream,
)

from factories import PipeSink, codec_attrs, stream_bytes, token_batch

CODEC = codec_attrs(levels=4, codebook_size=2048)


def make_batch(n: int = 5, seed: int = 0, codec: dict = CODEC, max_len: int = 300) -> Batch:
    return token_batch(
        n,
        seed,
        codec,
        max_len=max_len,
        source=lambda i: f"s{seed}/{i}.flac",
        channel=lambda i: 0,
        sample_rate=lambda i: 48000,
        content_hash=lambda i: f"h{seed}-{i}",
    )


def assert_same(a: Batch, b: Batch) -> None:
    assert a.attrs["codec"] == b.attrs["codec"]
    for name in b.items:
        assert a.items[name].dtype == b.items[name].dtype, name
        assert np.array_equal(a.items[name], b.items[name]), name
    assert np.array_equal(a.codes, b.codes)


def read_stream(data: bytes, **kwargs) -> list[Batch]:
    return list(read_batches(Source("-", io.BytesIO(data)), **kwargs))


def error_of(data: bytes) -> str:
    with pytest.raises(InputError) as caught:
        read_stream(data)
    message = str(caught.value)
    assert "\n" not in message
    return message


# -- archive layout ---------------------------------------------------------------------------


def test_archive_is_a_plain_stored_zip_with_sizes_in_local_headers():
    data = batch_archive(make_batch(4))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = archive.infolist()
    assert infos[0].filename == "zarr.json"
    metadata = [i for i, info in enumerate(infos) if info.filename.endswith("zarr.json")]
    assert metadata == list(range(len(metadata)))  # all metadata before chunks
    assert any(info.filename.startswith("codes/c/") for info in infos)
    for info in infos:
        assert info.compress_type == zipfile.ZIP_STORED
        assert not info.flag_bits & 0x8, f"{info.filename} uses a data descriptor"
        # The local header itself carries crc and sizes.
        header = data[info.header_offset : info.header_offset + 30]
        assert header[:4] == b"PK\x03\x04"
        flags, method, _t, _d, crc, csize, size = struct.unpack("<HHHHIII", header[6:26])
        assert not flags & 0x8 and method == 0
        assert (crc, csize, size) == (info.CRC, info.compress_size, info.file_size)


def test_single_batch_saved_alone_opens_with_stock_zipstore(tmp_path):
    import zarr

    batch = make_batch(6, 1)
    path = tmp_path / "one.zarr.zip"
    path.write_bytes(stream_bytes(batch))  # `soundtok cat x > one.zarr.zip` with one batch
    store = zarr.storage.ZipStore(path, mode="r")
    group = zarr.open_group(store, mode="r")
    assert group.attrs["soundtok"]["codec"] == CODEC
    assert np.array_equal(group["codes"][:], batch.codes)
    assert list(group["items/content_hash"][:]) == list(batch.items["content_hash"])
    store.close()
    assert_same(Batch.concat(read_batches(str(path))), batch)


# -- round trips ------------------------------------------------------------------------------


def test_stream_round_trip_from_pipe_and_file(tmp_path):
    batches = [make_batch(5, 1), make_batch(0, 2), make_batch(7, 3)]
    data = stream_bytes(*batches)
    back = read_stream(data)
    assert [len(b) for b in back] == [5, 0, 7]
    for got, want in zip(back, batches):
        assert_same(got, want)
    path = tmp_path / "s.zarr.zip"
    path.write_bytes(data)
    back = list(read_batches(str(path)))
    assert [len(b) for b in back] == [5, 0, 7]
    assert_same(Batch.concat(back), Batch.concat(batches))


def test_big_batches_are_split_into_several_archives():
    batch = make_batch(30, 4, max_len=200)
    out = io.BytesIO()
    count = write_stream([batch], out, max_frames=500)
    assert count > 2
    back = read_stream(out.getvalue())
    assert len(back) == count
    assert_same(Batch.concat(back), batch)


def test_reader_gets_first_batch_before_writer_finishes(tmp_path):
    """A subprocess writes batch 1, then waits until the reader has seen it before batch 2."""
    seen = tmp_path / "seen"
    script = textwrap.dedent(
        f"""
        import os, sys, time, numpy as np
        from soundtok_cli.io.store import Batch
        from soundtok_cli.io.sink import open_sink
        codec = {CODEC!r}
        def batch(k):
            return Batch.tokens(codec, "test", source=[f"b{{k}}"], channel=[0], sample_rate=[48000],
                                duration=[1.0], content_hash=["h"], codes=[np.full((75, 4), k)])
        with open_sink("-") as sink:
            sink.write(batch(1))
            deadline = time.time() + 60
            while not os.path.exists({str(seen)!r}):
                if time.time() > deadline:
                    sys.exit(3)
                time.sleep(0.02)
            sink.write(batch(2))
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, env=dict(os.environ, OMP_NUM_THREADS="1")
    )
    try:
        got = []
        for batch in read_batches(Source("-", proc.stdout)):
            got.append(batch)
            if len(got) == 1:
                assert proc.poll() is None, "the writer finished before the reader saw batch 1"
                assert batch.items["source"][0] == "b1"
                seen.touch()
        assert [b.items["source"][0] for b in got] == ["b1", "b2"]
        assert int(got[1].codes[0, 0]) == 2
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()


# -- damaged and hostile input ----------------------------------------------------------------


def test_truncated_stream():
    data = stream_bytes(make_batch(3, 1), make_batch(3, 2))
    first_end = len(batch_archive(make_batch(3, 1)))
    for cut in [10, 40, first_end // 2, first_end - 5, first_end + 2, first_end + 100, len(data) - 1]:
        assert error_of(data[:cut]).startswith("-: truncated stream")
    # The complete batches before the cut still arrive.
    parser = read_batches(Source("-", io.BytesIO(data[: first_end + 100])))
    assert len(next(parser)) == 3
    with pytest.raises(InputError, match="truncated stream"):
        next(parser)


def test_garbage():
    assert error_of(b"") == "-: empty input: not a soundtok store or stream"
    assert error_of(os.urandom(1000).replace(b"PK", b"pk")) == "-: not a soundtok store or stream"
    good = stream_bytes(make_batch(2))
    assert error_of(good + b"this is not zip data").startswith("-: corrupt stream: unexpected bytes after batch 1")
    flipped = bytearray(good)
    flipped[len(flipped) // 2] ^= 0xFF  # inside a chunk: checksum mismatch
    assert "corrupt stream" in error_of(bytes(flipped)) or "unreadable" in error_of(bytes(flipped))


def test_garbage_files(tmp_path):
    junk = tmp_path / "junk.zarr.zip"
    junk.write_bytes(b"\x00\x01garbage" * 100)
    with pytest.raises(InputError, match=r"junk.zarr.zip: not a soundtok store or stream$"):
        list(read_batches(str(junk)))
    empty = tmp_path / "empty.zarr.zip"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty file"):
        list(read_batches(str(empty)))
    other_zip = tmp_path / "other.zip"
    with zipfile.ZipFile(other_zip, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(InputError, match="without zarr.json"):
        list(read_batches(str(other_zip)))


def _with_extra_entry(name: str) -> bytes:
    entries = batch_entries(make_batch(2))
    entries[name] = b"payload"
    return archive_bytes(entries)


@pytest.mark.parametrize("name", ["../evil", "codes/../../evil", "/etc/passwd", "C:/evil", "a\\..\\b"])
def test_unsafe_entry_names_are_refused(tmp_path, name):
    data = _with_extra_entry(name)
    assert error_of(data) == f"-: unsafe entry name in zip: {name!r}"
    path = tmp_path / "bad.zarr.zip"  # the random-access path for a single-archive file
    path.write_bytes(data)
    with pytest.raises(InputError) as caught:
        list(read_batches(str(path)))
    assert str(caught.value) == f"{path}: unsafe entry name in zip: {name!r}"


def test_data_descriptors_are_refused():
    pipe = PipeSink()  # not seekable: zipfile writes data descriptors
    with zipfile.ZipFile(pipe, "w") as archive:
        for key, value in batch_entries(make_batch(2)).items():
            with archive.open(key, "w") as entry:
                entry.write(value)
    assert "uses a data descriptor" in error_of(bytes(pipe.data))


def test_oversized_entries_are_refused(monkeypatch):
    import soundtok_cli.io.stream as stream

    monkeypatch.setattr(stream, "MAX_ENTRY_BYTES", 1000)
    assert "larger than" in error_of(stream_bytes(make_batch(5, max_len=300)))


def test_deflated_archives_from_other_tools_are_read():
    batch = make_batch(4, 9)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key, value in batch_entries(batch).items():
            archive.writestr(key, value)
    assert_same(read_stream(out.getvalue())[0], batch)


def test_wrong_kind_and_mixed_codecs_in_one_stream():
    import json

    entries = batch_entries(make_batch(2))
    root = json.loads(entries["zarr.json"])
    root["attributes"]["soundtok"]["kind"] = "embeddings"
    entries["zarr.json"] = json.dumps(root).encode()
    with pytest.raises(InputError, match=r"^-: is an embeddings store, expected tokens$"):
        read_stream(archive_bytes(entries), expect_kind="tokens")
    mixed = stream_bytes(make_batch(2)) + stream_bytes(make_batch(2, codec=dict(CODEC, version="9")))
    with pytest.raises(InputError, match="test-codec 9"):
        read_stream(mixed)


# -- sources ----------------------------------------------------------------------------------


def test_stdin_holds_a_stream_or_a_list_of_paths(tmp_path):
    a, b = tmp_path / "a.zarr.zip", tmp_path / "b.zarr.zip"
    a.write_bytes(stream_bytes(make_batch(2, 1)))
    b.write_bytes(stream_bytes(make_batch(3, 2)))
    listing = f"{a}\n\n# a comment\n{b}\n".encode()
    sources = list(iter_sources([], stdin=io.BytesIO(listing)))
    assert [s.name for s in sources] == [str(a), str(b)]
    assert [len(x) for x in read_batches("-", stdin=io.BytesIO(listing))] == [2, 3]
    sources = list(iter_sources(["-"], stdin=io.BytesIO(stream_bytes(make_batch(4)))))
    assert [s.name for s in sources] == ["-"]
    assert len(next(read_batches(sources[0]))) == 4
    assert list(iter_sources([], stdin=io.BytesIO(b""))) == []
    with pytest.raises(InputError, match="not a soundtok store or stream"):
        list(iter_sources(["-"], stdin=io.BytesIO(b"\x00\xff\x00 binary junk")))
    errors = []
    listed = list(iter_sources(["-", str(a)], stdin=io.BytesIO(b"\x00junk"), on_error=errors.append))
    assert [s.name for s in listed] == [str(a)] and len(errors) == 1
    with pytest.raises(UsageError):
        list(iter_sources(["-", "-"], stdin=io.BytesIO(b"")))

    class Terminal(io.BytesIO):
        def isatty(self):
            return True

    with pytest.raises(UsageError, match="stdin is a terminal"):
        list(iter_sources([], stdin=Terminal()))


def test_fsspec_urls(tmp_path):
    fsspec = pytest.importorskip("fsspec")
    batch = make_batch(3, 5)
    fs = fsspec.filesystem("memory")
    with fs.open("/soundtok-test/one.zarr.zip", "wb") as f:
        f.write(batch_archive(batch))
    with fs.open("/soundtok-test/two.zarr.zip", "wb") as f:
        f.write(stream_bytes(make_batch(1, 1), make_batch(2, 2)))
    try:
        assert_same(Batch.concat(read_batches("memory://soundtok-test/one.zarr.zip")), batch)
        assert [len(b) for b in read_batches("memory://soundtok-test/two.zarr.zip")] == [1, 2]
        # A directory store on the remote file system.
        for key, value in batch_entries(batch).items():
            fs.pipe(f"/soundtok-test/dir.zarr/{key}", value)
        assert_same(Batch.concat(read_batches("memory://soundtok-test/dir.zarr")), batch)
        with pytest.raises(InputError, match="no such file or directory"):
            list(read_batches("memory://soundtok-test/missing.zarr"))
    finally:
        fs.rm("/soundtok-test", recursive=True)
