"""The store format: Batch helpers, directory and zip stores, atomic sinks, read-back in slices."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import time
import zipfile

import numpy as np
import pytest

from soundtok_cli.errors import InputError, UsageError
from soundtok_cli.io.sink import open_sink
from soundtok_cli.io.store import (
    STR,
    Batch,
    bitrate_kbps,
    frame_groups,
    payload_chunk_rows,
    write_group,
)
from soundtok_cli.io.stream import read_batches

from factories import codec_attrs, token_batch

CODEC = codec_attrs()


def make_batch(n: int = 6, seed: int = 0, codec: dict = CODEC, max_len: int = 400, prefix: str = "clip") -> Batch:
    return token_batch(
        n,
        seed,
        codec,
        max_len=max_len,
        source=lambda i: f"{prefix}{seed}-{i // 2}.wav",
        channel=lambda i: i % 2,
        sample_rate=lambda i: [44100, 48000][i % 2],
        content_hash=lambda i: f"{seed:02d}{i:062x}",
    )


def assert_same(a: Batch, b: Batch) -> None:
    assert a.attrs["codec"] == b.attrs["codec"]
    assert a.kind == b.kind
    assert sorted(a.items) == sorted(b.items)
    for name in a.items:
        assert a.items[name].dtype == b.items[name].dtype, name
        assert np.array_equal(a.items[name], b.items[name]), name
    assert a.codes.dtype == b.codes.dtype == np.uint16
    assert np.array_equal(a.codes, b.codes)


# -- Batch ------------------------------------------------------------------------------------


def test_batch_tokens_layout():
    batch = make_batch(5)
    assert len(batch) == 5
    assert batch.items["source"].dtype == STR
    assert batch.items["start"].dtype == np.int64 and batch.items["channel"].dtype == np.int32
    assert batch.is_compact()
    assert batch.frames == batch.codes.shape[0]
    assert batch.codes.shape[1] == CODEC["levels"]
    assert batch.attrs["kind"] == "tokens" and batch.attrs["format_version"] == 1
    assert batch.attrs["producer"]["command"] == "test"
    offset = 0
    for i in range(len(batch)):
        assert int(batch.items["start"][i]) == offset
        assert batch.item_codes(i).shape == (int(batch.items["length"][i]), CODEC["levels"])
        offset += int(batch.items["length"][i])
    assert batch.item(0)["source"] == "clip0-0.wav"


def test_concat_recomputes_offsets():
    a, b, c = make_batch(3, 1), make_batch(4, 2), make_batch(0, 3)
    merged = Batch.concat([a, b, c])
    assert len(merged) == 7
    assert merged.is_compact()
    for i in range(3):
        assert np.array_equal(merged.item_codes(i), a.item_codes(i))
    for i in range(4):
        assert np.array_equal(merged.item_codes(3 + i), b.item_codes(i))
    assert list(merged.items["source"]) == list(a.items["source"]) + list(b.items["source"])


def test_concat_refuses_other_codec_naming_both():
    other = dict(CODEC, version="2.0")
    with pytest.raises(InputError) as caught:
        Batch.concat([make_batch(2), make_batch(2, codec=other)], subject="b.zarr")
    message = str(caught.value)
    assert message.startswith("b.zarr: ")
    assert "test-codec 1.0" in message and "test-codec 2.0" in message
    with pytest.raises(InputError, match="weights"):
        Batch.concat([make_batch(2), make_batch(2, codec=dict(CODEC, weights_sha256="cd" * 32))])


def test_select_split_and_noncompact():
    batch = make_batch(10, 4)
    picked = batch.select([7, 2])
    assert np.array_equal(picked.item_codes(0), batch.item_codes(7))
    assert np.array_equal(picked.item_codes(1), batch.item_codes(2))
    assert picked.is_compact()
    parts = list(batch.split(500))
    assert sum(len(p) for p in parts) == 10
    for part in parts:
        assert part.frames <= 500 or len(part) == 1
    assert_same(Batch.concat(parts), batch)
    # Items out of order and with a gap in the payload: compacted() puts them in order.
    shuffled = Batch(batch.attrs, dict(batch.items), dict(batch.arrays))
    order = np.arange(10)[::-1]
    shuffled.items = {k: v[order] for k, v in batch.items.items()}
    assert not shuffled.is_compact()
    compact = shuffled.compacted()
    assert compact.is_compact()
    for i in range(10):
        assert np.array_equal(compact.item_codes(i), batch.item_codes(9 - i))


def test_frame_groups():
    lengths = np.array([5, 5, 20, 1, 1, 1, 0, 9])
    assert list(frame_groups(lengths, 10)) == [(0, 2), (2, 3), (3, 7), (7, 8)]
    assert list(frame_groups(np.array([], dtype=np.int64), 10)) == []


def test_validate_rejects_bad_batches():
    batch = make_batch(3)
    bad = Batch(batch.attrs, dict(batch.items), {"codes": batch.codes.astype(np.int32)})
    with pytest.raises(InputError, match="codes must be uint16"):
        bad.validate("x")
    too_big = batch.codes.copy()
    too_big[0, 0] = 1024
    with pytest.raises(InputError, match="values >= 1024"):
        Batch(batch.attrs, dict(batch.items), {"codes": too_big}).validate("x")
    items = dict(batch.items)
    items["length"] = items["length"] + 10_000
    with pytest.raises(InputError, match="outside the"):
        Batch(batch.attrs, items, dict(batch.arrays)).validate("x")
    with pytest.raises(ValueError):
        Batch.tokens(CODEC, "t", source=["a"], channel=[0], sample_rate=[1], duration=[0.0],
                     content_hash=["h"], codes=[np.zeros((3, 4))])


def test_bitrate_and_chunks():
    assert bitrate_kbps(CODEC) == pytest.approx(6.0)
    rows = payload_chunk_rows((8,), 2)
    assert rows * 8 * 2 == 1 << 20


# -- directory and zip stores -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["x.zarr", "x.zarr.zip"])
def test_file_round_trip(tmp_path, name):
    path = str(tmp_path / name)
    a, b = make_batch(7, 1), make_batch(5, 2)
    with open_sink(path) as sink:
        sink.write(a)
        sink.write(b)
    assert os.path.exists(path)
    assert sorted(os.listdir(tmp_path)) == [name]  # no temporaries left
    back = list(read_batches(path))
    assert_same(Batch.concat(back), Batch.concat([a, b]))
    assert back[0].attrs["codec"] == CODEC


def test_zip_store_opens_with_stock_zipstore(tmp_path):
    import zarr

    path = tmp_path / "x.zarr.zip"
    batch = make_batch(6, 3)
    with open_sink(str(path)) as sink:
        sink.write(batch)
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        assert infos[0].filename == "zarr.json"
        assert all(info.compress_type == zipfile.ZIP_STORED for info in infos)
        assert all(not info.flag_bits & 0x8 for info in infos)
    store = zarr.storage.ZipStore(path, mode="r")
    group = zarr.open_group(store, mode="r")
    assert group.attrs["soundtok"]["kind"] == "tokens"
    assert np.array_equal(group["codes"][:], batch.codes)
    assert list(group["items/source"][:]) == list(batch.items["source"])
    assert np.array_equal(group["items/start"][:], batch.items["start"])
    store.close()


def test_directory_store_reads_the_same_in_tensorstore(tmp_path):
    ts = pytest.importorskip("tensorstore")
    import zarr

    path = tmp_path / "x.zarr"
    with open_sink(str(path)) as sink:
        sink.write(make_batch(9, 5))
        sink.write(make_batch(4, 6))
    group = zarr.open_group(str(path), mode="r")
    for name in ["codes", "items/start", "items/length", "items/channel", "items/sample_rate", "items/duration"]:
        spec = {"driver": "zarr3", "kvstore": {"driver": "file", "path": str(path / name)}}
        array = ts.open(spec, read=True).result()
        expected = group[name][:]
        got = array.read().result()
        assert got.dtype == expected.dtype, name
        assert np.array_equal(got, expected), name
    assert group["codes"].metadata.chunk_grid.chunk_shape == (1 << 16, 8)


def test_large_store_is_read_in_slices(tmp_path):
    path = str(tmp_path / "big.zarr")
    batches = [make_batch(40, seed, max_len=300) for seed in range(3)]
    with open_sink(path) as sink:
        for batch in batches:
            sink.write(batch)
    back = list(read_batches(path, max_frames=1000))
    assert len(back) > 5
    for part in back:
        assert part.frames <= 1000 or len(part) == 1
        assert part.is_compact()
    assert_same(Batch.concat(back), Batch.concat(batches))


def test_reads_items_that_do_not_tile_the_codes(tmp_path):
    """A store written by another tool: items out of order, a gap, one item reused."""
    import zarr

    batch = make_batch(4, 8, max_len=50)
    path = str(tmp_path / "odd.zarr")
    write_group(zarr.storage.LocalStore(path), batch)
    group = zarr.open_group(path, mode="r+")
    start = batch.items["start"].copy()
    length = batch.items["length"].copy()
    order = [3, 1, 1, 0]
    group["items/start"][:] = start[order]
    group["items/length"][:] = length[order]
    back = Batch.concat(read_batches(path, max_frames=60))
    for i, j in enumerate(order):
        assert np.array_equal(back.item_codes(i), batch.item_codes(j))


def test_empty_store_round_trips(tmp_path):
    path = str(tmp_path / "empty.zarr.zip")
    with open_sink(path) as sink:
        sink.write(make_batch(0))
    back = list(read_batches(path))
    assert len(back) == 1 and len(back[0]) == 0 and back[0].codes.shape == (0, 8)


def test_overwrites_existing_store(tmp_path):
    path = str(tmp_path / "x.zarr")
    with open_sink(path) as sink:
        sink.write(make_batch(5, 1))
    with open_sink(path) as sink:
        sink.write(make_batch(2, 2))
    assert_same(Batch.concat(read_batches(path)), make_batch(2, 2))
    assert sorted(os.listdir(tmp_path)) == ["x.zarr"]


# -- atomicity --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["x.zarr", "x.zarr.zip"])
def test_aborted_sink_leaves_nothing(tmp_path, name):
    path = tmp_path / name
    with pytest.raises(RuntimeError):
        with open_sink(str(path)) as sink:
            sink.write(make_batch(4))
            raise RuntimeError("interrupted")
    assert os.listdir(tmp_path) == []
    sink = open_sink(str(path))
    sink.write(make_batch(3))
    sink.abort()
    assert os.listdir(tmp_path) == []
    # A sink that got no batch publishes nothing.
    assert open_sink(str(path)).close() is False
    assert os.listdir(tmp_path) == []


def test_aborted_sink_keeps_previous_store(tmp_path):
    path = str(tmp_path / "x.zarr.zip")
    with open_sink(path) as sink:
        sink.write(make_batch(3, 1))
    with pytest.raises(KeyboardInterrupt):
        with open_sink(path) as sink:
            sink.write(make_batch(5, 2))
            raise KeyboardInterrupt
    assert_same(Batch.concat(read_batches(path)), make_batch(3, 1))


def test_killed_writer_leaves_no_final_name(tmp_path):
    """A process killed mid-write leaves nothing under the final name."""
    path = tmp_path / "x.zarr"
    ready = tmp_path / "ready"
    script = textwrap.dedent(
        f"""
        import time, numpy as np
        from soundtok_cli.io.store import Batch
        from soundtok_cli.io.sink import open_sink
        codec = {CODEC!r}
        batch = Batch.tokens(codec, "test", source=["a"], channel=[0], sample_rate=[48000],
                             duration=[1.0], content_hash=["h"], codes=[np.ones((75, 8))])
        with open_sink({str(path)!r}) as sink:
            sink.write(batch)
            open({str(ready)!r}, "w").close()
            time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], env=dict(os.environ, OMP_NUM_THREADS="1"))
    try:
        deadline = time.time() + 60
        while not ready.exists():
            assert proc.poll() is None, "writer died"
            assert time.time() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not path.exists()


# -- open_sink --------------------------------------------------------------------------------


class _Terminal(io.BytesIO):
    def isatty(self) -> bool:
        return True


def test_open_sink_refuses_terminal_and_bad_names(tmp_path):
    with pytest.raises(UsageError, match="refusing to write a binary token stream to a terminal"):
        open_sink(None, stdout=_Terminal())
    with pytest.raises(UsageError, match="refusing"):
        open_sink("-", stdout=_Terminal())
    with pytest.raises(UsageError, match="binary embedding stream"):
        open_sink("-", what="embedding store", stdout=_Terminal())
    with pytest.raises(UsageError, match=r"\.zarr directory, a \.zarr\.zip file"):
        open_sink(str(tmp_path / "out.tok"))
    with pytest.raises(UsageError, match="no such directory"):
        open_sink(str(tmp_path / "missing" / "x.zarr"))
    out = io.BytesIO()
    with open_sink("-", stdout=out) as sink:
        sink.write(make_batch(2))
    assert out.getvalue().startswith(b"PK\x03\x04")


def test_sink_refuses_mixing_codecs(tmp_path):
    sink = open_sink(str(tmp_path / "x.zarr"))
    sink.write(make_batch(2))
    with pytest.raises(InputError) as caught:
        sink.write(make_batch(2, codec=dict(CODEC, version="2.0")), subject="b.zarr")
    assert "test-codec 2.0" in str(caught.value) and "test-codec 1.0" in str(caught.value)
    sink.close()
    assert len(Batch.concat(read_batches(str(tmp_path / "x.zarr")))) == 2


# -- errors reading stores --------------------------------------------------------------------


def _group(path, attrs):
    import zarr

    group = zarr.open_group(str(path), mode="w", attributes=attrs)
    group.create_array("codes", shape=(0, 8), dtype="uint16")
    return path


def _error(source, **kwargs) -> str:
    with pytest.raises(InputError) as caught:
        list(read_batches(str(source), **kwargs))
    return str(caught.value)


def test_store_errors_are_one_line(tmp_path):
    missing = tmp_path / "missing.zarr"
    assert _error(missing) == f"{missing}: no such file or directory"
    plain = _group(tmp_path / "plain.zarr", {"title": "not ours"})
    assert _error(plain) == f"{plain}: not a soundtok store (a Zarr group without soundtok attributes)"
    attrs = make_batch(1).attrs
    embeddings = _group(tmp_path / "emb.zarr", {"soundtok": dict(attrs, kind="embeddings")})
    assert _error(embeddings, expect_kind="tokens") == f"{embeddings}: is an embeddings store, expected tokens"
    future = _group(tmp_path / "future.zarr", {"soundtok": dict(attrs, format_version=99)})
    assert "unsupported format_version 99" in _error(future)
    empty_dir = tmp_path / "nothing.zarr"
    empty_dir.mkdir()
    assert _error(empty_dir).startswith(f"{empty_dir}: not a soundtok store or stream")
    no_codes = tmp_path / "nocodes.zarr"
    import zarr

    zarr.open_group(str(no_codes), mode="w", attributes={"soundtok": attrs})
    assert _error(no_codes) == f"{no_codes}: missing array items/source"
    wrong_levels = _group(tmp_path / "lv.zarr", {"soundtok": dict(attrs, codec=dict(CODEC, levels=4))})
    assert "missing array" in _error(wrong_levels)
    text = tmp_path / "notes.zarr.zip"
    text.write_text("hello\n")
    assert _error(text) == f"{text}: not a soundtok store or stream"


def test_corrupt_chunk_is_an_input_error(tmp_path):
    path = tmp_path / "x.zarr"
    with open_sink(str(path)) as sink:
        sink.write(make_batch(4, 1))
    (path / "codes" / "c" / "0" / "0").write_bytes(b"garbage")
    message = _error(path)
    assert message.startswith(f"{path}: unreadable store")
    assert "\n" not in message
