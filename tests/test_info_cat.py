"""`soundtok info` and `soundtok cat`: output, error lines and exit codes, through pipes too."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from soundtok_cli.io.sink import open_sink
from soundtok_cli.io.store import Batch
from soundtok_cli.io.stream import Source, read_batches

from factories import codec_attrs, stream_bytes, token_batch

CODEC = codec_attrs()

# The full app registers every command; until all of them exist, test ours on their own.
_MINI_APP = (
    "import typer\n"
    "from soundtok_cli.commands import cat, info\n"
    "app = typer.Typer(pretty_exceptions_enable=False)\n"
    "info.register(app)\n"
    "cat.register(app)\n"
    "app(prog_name='soundtok')\n"
)


def _full_app_available() -> bool:
    try:
        import soundtok_cli.app  # noqa: F401
    except ImportError:
        return False
    return True


def cli_app() -> typer.Typer:
    if _full_app_available():
        from soundtok_cli.app import app

        return app
    from soundtok_cli.commands import cat, info

    app = typer.Typer(pretty_exceptions_enable=False)
    info.register(app)
    cat.register(app)
    return app


def cli_command() -> list[str]:
    if _full_app_available():
        return [sys.executable, "-m", "soundtok_cli.app"]
    return [sys.executable, "-c", _MINI_APP]


ENV = dict(os.environ, OMP_NUM_THREADS="1")


def make_batch(n: int = 4, seed: int = 0, codec: dict = CODEC) -> Batch:
    return token_batch(
        n,
        seed,
        codec,
        min_len=1,
        max_len=200,
        source=lambda i: f"src{seed}-{i // 2}.wav",  # two channels per source
        channel=lambda i: i % 2,
        sample_rate=lambda i: [48000, 44100][seed % 2],
        content_hash=lambda i: f"{seed}-{i}",
    )


def save(path, *batches: Batch) -> str:
    with open_sink(str(path)) as sink:
        for batch in batches:
            sink.write(batch)
    return str(path)


def run(args, input=None):
    return CliRunner().invoke(cli_app(), args, input=input)


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("stores")
    a = save(tmp_path / "a.zarr", make_batch(4, 1), make_batch(2, 2))
    b = save(tmp_path / "b.zarr.zip", make_batch(3, 3))
    s = tmp_path / "s.stream"
    s.write_bytes(stream_bytes(make_batch(2, 4), make_batch(2, 5)))
    return a, b, str(s)


# -- info -------------------------------------------------------------------------------------


def test_info_json(stores):
    a, b, s = stores
    result = run(["info", "--format", "json", a, b, s])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    docs = [json.loads(line) for line in lines]
    assert [d["source"] for d in docs] == [a, b, s]
    first = docs[0]
    assert first["kind"] == "tokens"
    assert first["codec"] == CODEC
    assert first["items"] == 6 and first["sources"] == 3
    expected = Batch.concat([make_batch(4, 1), make_batch(2, 2)])
    # each source counts once, however many channels (items) it has
    per_source = expected.items["duration"][expected.items["channel"] == 0]
    assert first["duration_s"] == pytest.approx(float(per_source.sum()))
    assert first["duration_s"] < float(expected.items["duration"].sum())
    assert first["frames"] == expected.frames
    assert first["sample_rates"] == [44100, 48000]
    assert first["levels"] == 8 and first["frame_rate"] == 75
    assert first["bitrate_kbps"] == pytest.approx(75 * 8 * 10 / 1000)
    assert docs[2]["items"] == 4
    assert result.stderr == ""


def test_info_text(stores):
    a, b, _ = stores
    result = run(["info", a, b])
    assert result.exit_code == 0
    text = result.stdout
    assert f"store        {a}" in text and f"store        {b}" in text
    assert "test-codec 1.0" in text
    assert "6 from 3 sources" in text
    assert "6.00 kbps" in text
    assert "44100, 48000 Hz" in text


def test_info_reads_stdin_stream_and_path_lists(stores):
    a, b, s = stores
    result = run(["info", "--format", "json"], input=stream_bytes(make_batch(3, 7)))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["source"] == "-"
    assert json.loads(result.stdout)["items"] == 3
    result = run(["info", "--format", "json", "-"], input=f"{a}\n{b}\n")
    assert [json.loads(line)["source"] for line in result.stdout.splitlines()] == [a, b]
    assert result.exit_code == 0


def test_info_bad_inputs(tmp_path, stores):
    a, b, _ = stores
    missing = str(tmp_path / "missing.zarr")
    junk = tmp_path / "junk.zarr.zip"
    junk.write_bytes(b"not a store at all")
    result = run(["info", "-q", missing, a, str(junk), b])
    assert result.exit_code == 1
    assert error_lines(result) == [
        f"soundtok info: {missing}: no such file or directory",
        f"soundtok info: {junk}: not a soundtok store or stream",
    ]
    assert result.stdout.count("store ") == 2
    result = run(["info", missing, str(junk)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    result = run(["info", "--format", "json", missing], input=None)
    assert result.exit_code == 2 and result.stdout == ""


def test_info_truncated_stream_on_stdin(stores):
    data = stream_bytes(make_batch(3, 1), make_batch(3, 2))
    result = run(["info"], input=data[:-30])
    assert result.exit_code == 2
    assert error_lines(result)[0].startswith("soundtok info: -: truncated stream")


def test_info_no_input():
    result = run(["info"], input=b"")
    assert result.exit_code == 2
    assert "no input" in result.stderr


# -- cat --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["out.zarr", "out.zarr.zip"])
def test_cat_merges_into_a_store(tmp_path, stores, name):
    a, b, s = stores
    out = str(tmp_path / name)
    result = run(["cat", a, b, s, "-o", out])
    assert result.exit_code == 0, result.output
    merged = Batch.concat(read_batches(out))
    expected = Batch.concat([make_batch(4, 1), make_batch(2, 2), make_batch(3, 3), make_batch(2, 4), make_batch(2, 5)])
    for key in expected.items:
        assert np.array_equal(merged.items[key], expected.items[key]), key
    assert np.array_equal(merged.codes, expected.codes)
    assert merged.attrs["producer"]["command"] == "cat"
    assert merged.attrs["codec"] == CODEC


def test_cat_writes_a_stream_to_stdout(stores):
    a, b, _ = stores
    result = run(["cat", a, b])
    assert result.exit_code == 0
    back = list(read_batches(Source("-", io.BytesIO(result.stdout_bytes))))
    merged = Batch.concat(back)
    assert len(merged) == 9
    assert np.array_equal(merged.codes, Batch.concat([make_batch(4, 1), make_batch(2, 2), make_batch(3, 3)]).codes)


def test_cat_refuses_mixing_codecs(tmp_path, stores):
    a, _, _ = stores
    other = save(tmp_path / "v2.zarr.zip", make_batch(2, 9, codec=dict(CODEC, version="2.0")))
    out = str(tmp_path / "out.zarr.zip")
    result = run(["cat", a, other, "-o", out])
    assert result.exit_code == 1
    (line,) = error_lines(result)[:1]
    assert line.startswith(f"soundtok cat: {other}: cannot mix")
    assert "test-codec 2.0" in line and "test-codec 1.0" in line
    assert len(Batch.concat(read_batches(out))) == 6  # the good input was written


def test_cat_all_inputs_bad_writes_nothing(tmp_path):
    out = tmp_path / "out.zarr"
    result = run(["cat", str(tmp_path / "nope.zarr"), "-o", str(out)])
    assert result.exit_code == 2
    assert error_lines(result)[0] == f"soundtok cat: {tmp_path / 'nope.zarr'}: no such file or directory"
    assert not out.exists()
    assert os.listdir(tmp_path) == []


def test_cat_bad_output_name(stores, tmp_path):
    result = run(["cat", stores[0], "-o", str(tmp_path / "out.txt")])
    assert result.exit_code == 2
    assert "must be a .zarr directory" in result.stderr


# -- real processes and pipes -----------------------------------------------------------------


def test_pipeline_cat_to_info(stores):
    a, b, s = stores
    cat = subprocess.Popen(cli_command() + ["cat", a, b, s], stdout=subprocess.PIPE, env=ENV)
    info = subprocess.run(
        cli_command() + ["info", "--format", "json"], stdin=cat.stdout, capture_output=True, env=ENV, timeout=120
    )
    cat.stdout.close()
    assert cat.wait(60) == 0
    assert info.returncode == 0, info.stderr
    doc = json.loads(info.stdout)
    assert doc["items"] == 13 and doc["source"] == "-"
    assert doc["bitrate_kbps"] == pytest.approx(6.0)


def test_cat_refuses_a_terminal(stores):
    pty = pytest.importorskip("pty")
    primary, secondary = pty.openpty()
    try:
        proc = subprocess.run(
            cli_command() + ["cat", stores[0]], stdout=secondary, stderr=subprocess.PIPE, env=ENV, timeout=120
        )
    finally:
        os.close(secondary)
        os.close(primary)
    assert proc.returncode == 2
    assert proc.stderr.decode().strip() == (
        "soundtok cat: refusing to write a binary token stream to a terminal; use -o FILE or pipe it"
    )


def test_ls_into_info(stores, tmp_path):
    """`ls *.zarr.zip | soundtok info`: stdin holds paths; a missing one fails alone."""
    a, b, _ = stores
    gone = tmp_path / "gone.zarr.zip"
    result = run(["info", "--format", "json"], input=f"{a}\n{gone}\n{b}\n")
    assert result.exit_code == 1
    assert [json.loads(line)["source"] for line in result.stdout.splitlines()] == [a, b]
    assert error_lines(result)[0] == f"soundtok info: {gone}: no such file or directory"
