"""`soundtok separate` on token stores as a user runs it: a token stream through a pipe, a store
to a store (and its residual), a store to audio files, the separation model on a store, and bad
stores (one line on stderr naming the input, no traceback, nothing half-written)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from cli_checks import one_line_error

CLI = [sys.executable, "-m", "soundtok_cli.app"]
SOUNDTOK = " ".join(shlex.quote(part) for part in CLI)
ENV = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")


def run(*args, cwd=None, stdin=None) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + [str(a) for a in args], cwd=cwd, env=ENV, capture_output=True, timeout=300, stdin=stdin)


def separate(*args, cwd=None, stdin=None) -> subprocess.CompletedProcess:
    return run("separate", *args, cwd=cwd, stdin=stdin)


def shell(command: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=cwd, env=ENV, capture_output=True, timeout=300)


def batches(path):
    from soundtok_cli.io.stream import read_batches

    return list(read_batches(str(path)))


def items(path) -> list[dict]:
    return [dict(b.item(i), codes=b.item_codes(i), attrs=b.attrs) for b in batches(path) for i in range(len(b))]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """hum.wav (stereo, 48 kHz, 60 Hz hum), tone44.flac (mono, 44.1 kHz, 50 Hz hum), both encoded
    into lib.zarr.zip; one.zarr.zip holds hum.wav's items alone; dec/ has lib decoded."""
    from soundtok_cli.io.sink import open_sink

    d = tmp_path_factory.mktemp("separate-tokens")
    rate = 48000
    t = np.arange(int(1.5 * rate)) / rate
    tone = 0.2 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 2 * t) > 0)
    hum = 0.05 * np.sin(2 * np.pi * 60 * t)
    sf.write(d / "hum.wav", np.stack([tone + hum, 0.5 * tone + hum], axis=1), rate, subtype="FLOAT")
    t44 = np.arange(44100) / 44100
    sf.write(d / "tone44.flac", 0.2 * np.sin(2 * np.pi * 330 * t44) + 0.05 * np.sin(2 * np.pi * 50 * t44), 44100)
    made = run("encode", "-q", "hum.wav", "tone44.flac", "-o", "lib.zarr.zip", cwd=d)
    assert made.returncode == 0, made.stderr.decode()
    (lib,) = batches(d / "lib.zarr.zip")
    with open_sink(str(d / "one.zarr.zip")) as sink:
        sink.write(lib.select([i for i in range(len(lib)) if lib.item(i)["source"] == "hum.wav"]))
    decoded = run("decode", "-q", "lib.zarr.zip", "-o", "dec/{stem}.wav", cwd=d)
    assert decoded.returncode == 0, decoded.stderr.decode()
    (d / "cut.zarr.zip").write_bytes((d / "lib.zarr.zip").read_bytes()[:3000])
    return d


def test_token_stream_through_a_pipe(files, tmp_path):
    result = shell(f"{SOUNDTOK} encode -q hum.wav | {SOUNDTOK} separate --remove hum | "
                   f"{SOUNDTOK} decode -q -o {shlex.quote(str(tmp_path / 'y.wav'))}", files)
    assert result.returncode == 0, result.stderr.decode()
    assert "-: hum.wav: hum at" in result.stderr.decode()
    y, rate = sf.read(tmp_path / "y.wav")
    assert rate == 48000 and y.shape == (72000, 2)


def test_store_to_stores_with_residual_past_a_bad_store(files, tmp_path):
    cut = files / "cut.zarr.zip"
    result = separate(files / "lib.zarr.zip", cut, "--remove", "hum", "-o", tmp_path / "clean.zarr.zip",
                      "--residual", tmp_path / "removed.zarr", "--format", "json", "-q")
    # the bad store is named once; the good one is written; exit status 1
    lines = result.stderr.decode().strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1 and lines[0].startswith(f"soundtok separate: {cut}: truncated"), lines
    reports = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert [r["source"] for r in reports] == ["hum.wav", "tone44.flac"]
    assert all(r["store"] == str(files / "lib.zarr.zip") and r["hum_found"] for r in reports)
    assert [(r["output"], r["residual"]) for r in reports] == [(str(tmp_path / "clean.zarr.zip"), str(tmp_path / "removed.zarr"))] * 2
    source, clean, removed = items(files / "lib.zarr.zip"), items(tmp_path / "clean.zarr.zip"), items(tmp_path / "removed.zarr")
    assert len(source) == len(clean) == len(removed) == 3  # hum.wav: 2 channels, tone44.flac: 1
    for before, after, rest in zip(source, clean, removed):
        for key in ("source", "channel", "sample_rate"):
            assert before[key] == after[key] == rest[key]
        assert abs(before["duration"] - after["duration"]) < 1e-9 and abs(after["duration"] - rest["duration"]) < 1e-9
        assert after["codes"].shape == rest["codes"].shape == before["codes"].shape  # same levels, same frames
        assert len({before["content_hash"], after["content_hash"], rest["content_hash"]}) == 3  # new content, new hash
        assert after["attrs"]["producer"]["command"] == "separate"
        assert after["attrs"]["codec"] == before["attrs"]["codec"]  # the same codec at the same levels
    assert sorted(os.listdir(tmp_path)) == ["clean.zarr.zip", "removed.zarr"]  # no temporaries left


def test_store_to_audio_files(files, tmp_path):
    result = separate(files / "lib.zarr.zip", "--remove", "hum", "-o", tmp_path / "out/{stem}.flac",
                      "--residual", tmp_path / "out/{stem}-rest.wav")
    assert result.returncode == 0, result.stderr.decode()
    for stem, rate, shape in (("hum", 48000, (72000, 2)), ("tone44", 44100, (44100,))):
        out, out_rate = sf.read(tmp_path / f"out/{stem}.flac")
        rest, _ = sf.read(tmp_path / f"out/{stem}-rest.wav")
        decoded, _ = sf.read(files / f"dec/{stem}.wav")
        assert out_rate == rate and out.shape == rest.shape == decoded.shape == shape
        assert np.abs(out + rest - decoded).max() < 1e-5  # what is kept and what is removed add up to the decoded input
    # one OUT file for a store of two sources: refused before anything is written
    one_line_error(separate(files / "lib.zarr.zip", "--remove", "hum", "-o", tmp_path / "one.wav"), 2,
                   "one.wav is one file", "lib.zarr.zip holds several sources")
    assert not (tmp_path / "one.wav").exists()


def test_keep_speech_from_a_store(files, tmp_path):
    result = separate(files / "one.zarr.zip", "--keep", "speech", "-o", tmp_path / "kept.wav",
                      "--residual", tmp_path / "rest.wav")
    assert result.returncode == 0, result.stderr.decode()
    assert "hum.wav: kept 'speech'" in result.stderr.decode()
    kept, rate = sf.read(tmp_path / "kept.wav")
    rest, _ = sf.read(tmp_path / "rest.wav")
    decoded, _ = sf.read(files / "dec/hum.wav")
    assert rate == 48000 and kept.shape == rest.shape == decoded.shape == (72000, 2)
    assert np.abs(kept + rest - decoded).max() < 1e-5


def test_stems_into_one_store_each(files, tmp_path):
    result = separate(files / "one.zarr.zip", "--stems", "speech,music", "-o", tmp_path / "stem-{part}.zarr.zip",
                      "--residual", tmp_path / "rest.zarr.zip")
    assert result.returncode == 0, result.stderr.decode()
    assert "hum.wav: split into 'speech', 'music'" in result.stderr.decode()
    assert sorted(os.listdir(tmp_path)) == ["rest.zarr.zip", "stem-music.zarr.zip", "stem-speech.zarr.zip"]
    source = items(files / "one.zarr.zip")
    for name in ("stem-speech.zarr.zip", "stem-music.zarr.zip", "rest.zarr.zip"):
        made = items(tmp_path / name)
        assert [(i["source"], i["channel"]) for i in made] == [(i["source"], i["channel"]) for i in source]
        assert all(a["codes"].shape == b["codes"].shape for a, b in zip(made, source))
    one_line_error(separate(files / "one.zarr.zip", "--stems", "speech,music", "-o", tmp_path / "stems.zarr.zip"), 2,
                   "{part}")


def test_bad_stores_one_line_nothing_written(files, tmp_path):
    from embed_factories import files_batch, random_files, save_store
    from factories import codec_attrs, token_batch
    from soundtok_cli.spatial.kind import spatial_batch

    (tmp_path / "in").mkdir()
    embeddings = save_store(tmp_path / "in/emb.zarr.zip", files_batch(random_files(1, 2, seed=0)))
    lib = batches(files / "lib.zarr.zip")[0]
    spatial = save_store(tmp_path / "in/placed.zarr", spatial_batch(lib.codec, "test", rows=[
        dict(lib.item(0), codes=lib.item_codes(0), positions=np.zeros((len(lib.item_codes(0)), 3)))]))
    other = save_store(tmp_path / "in/other.zarr.zip", token_batch(
        1, 0, codec_attrs(), source=lambda i: "x.wav", channel=lambda i: 0, sample_rate=lambda i: 48000,
        content_hash=lambda i: "h", min_len=10, max_len=20))
    corrupt = files / "cut.zarr.zip"
    out = tmp_path / "out"
    out.mkdir()
    for store, needle in ((embeddings, "is an embeddings store"), (spatial, "is a spatial store"),
                          (other, "test-codec"), (corrupt, "truncated")):
        line = one_line_error(separate(store, "--remove", "hum", "-o", out / "x.zarr.zip"), 2, str(store), needle)
        assert "decode it first" not in line
    stream = shell(f"{SOUNDTOK} cat -q {shlex.quote(spatial)} | {SOUNDTOK} separate --remove hum -o x.zarr", out)  # stdin
    one_line_error(stream, 2, "-: is a spatial store")
    assert os.listdir(out) == []  # nothing published, no temporaries


def test_token_output_usage_errors(files, tmp_path):
    lib = files / "lib.zarr.zip"
    one_line_error(separate(files / "hum.wav", "--remove", "hum", "-o", tmp_path / "x.zarr.zip"), 2, "-o", "token store")
    one_line_error(separate(lib, files / "hum.wav", "--remove", "hum", "-o", tmp_path / "x.zarr"), 2, "-o", "token store")
    one_line_error(separate(lib, "--remove", "hum", "-o", tmp_path / "x.zarr.zip", "--residual", tmp_path / "r.wav"), 2,
                   "--residual", "store")
    one_line_error(separate(lib, "--remove", "hum", "-o", tmp_path / "{stem}.zarr.zip"), 2, "-o", "template")
    one_line_error(separate(lib, "--stems", "speech,music", "-o", tmp_path / "x.zarr.zip"), 2, "-o", "{part}")
    one_line_error(separate(lib, "--remove", "hum", "-o", tmp_path / "x.zarr.zip", "--audio-format", "wav"), 2, "--audio-format")
    assert os.listdir(tmp_path) == []
