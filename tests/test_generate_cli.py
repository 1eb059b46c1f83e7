"""`soundtok generate` as a user runs it, with the shipped model: seeded, streamed as made, written
as stores or audio, continuing a sound without a seam, drawing on an index, and bad input (one
line on stderr, no traceback, exit status 2)."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from soundtok_cli.io.stream import iter_archives, read_batches

from cli_checks import one_line_error

CLI = [sys.executable, "-m", "soundtok_cli.app"]
ENV = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
SR = 48000


def run(*args: str, data: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + list(args), env=ENV, capture_output=True, timeout=300, input=data)


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stderr.decode()
    return result


def store_codes(path) -> np.ndarray:
    batches = list(read_batches(str(path)))
    assert len(batches) == 1 and len(batches[0]) == 1
    return batches[0].item_codes(0)


@pytest.fixture(scope="module")
def sounds(tmp_path_factory):
    d = tmp_path_factory.mktemp("generate")
    rng = np.random.default_rng(0)
    t = np.arange(3 * 44100) / 44100
    hiss = 0.05 * rng.standard_normal(len(t)) * (1 + 0.5 * np.sin(2 * np.pi * 0.7 * t))
    sf.write(d / "hiss.wav", hiss.astype(np.float32), 44100)
    return d


def test_same_seed_same_tokens(tmp_path):
    for name, seed in (("a", "4"), ("b", "4"), ("c", "5")):
        ok(run("generate", "rain on a tin roof", "-d", "2s", "--seed", seed, "-o", str(tmp_path / f"{name}.zarr")))
    a, b, c = (store_codes(tmp_path / f"{n}.zarr") for n in "abc")
    assert a.shape == (150, 4)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_seed_is_printed_when_not_given(tmp_path):
    result = ok(run("generate", "wind", "-d", "1s", "-o", str(tmp_path / "w.zarr")))
    assert "seed " in result.stderr.decode()


def test_stream_arrives_in_parts_before_generation_ends():
    """A ten-minute generation on stdout: its first part can be read while it is still being made."""
    process = subprocess.Popen(CLI + ["generate", "distant thunder", "-d", "10m", "--seed", "1"], env=ENV,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        first = next(iter_archives(process.stdout, "-"))
        assert process.poll() is None   # still generating
    finally:
        process.kill()
        process.wait()
    assert '"continues": true' in first["zarr.json"].decode()   # a part of a longer item


def test_stream_joins_into_one_item_and_decodes(tmp_path):
    generated = ok(run("generate", "birds singing", "-d", "6s", "--seed", "2"))
    parts = list(read_batches("-", parts=True, stdin=io.BytesIO(generated.stdout)))
    assert len(parts) == 2   # 5 s and 1 s, the first marked as continued
    joined = list(read_batches("-", stdin=io.BytesIO(generated.stdout)))
    assert len(joined) == 1 and joined[0].items["length"].tolist() == [450]
    ok(run("decode", "-", "-o", str(tmp_path / "birds.wav"), data=generated.stdout))
    audio, rate = sf.read(tmp_path / "birds.wav")
    assert rate == SR and len(audio) == 6 * SR and np.abs(audio).max() > 1e-3


def test_audio_output_directly_normalised_unless_asked_not_to(tmp_path):
    ok(run("generate", "a crackling fire", "-d", "3s", "--seed", "1", "-o", str(tmp_path / "fire.flac")))
    ok(run("generate", "a crackling fire", "-d", "3s", "--seed", "1", "--no-normalize", "-o", str(tmp_path / "raw.wav")))
    audio, rate = sf.read(tmp_path / "fire.flac")
    raw, _ = sf.read(tmp_path / "raw.wav")
    assert rate == SR and len(audio) == len(raw) == 3 * SR
    assert 20 * np.log10(np.abs(audio).max()) == pytest.approx(-1.0, abs=0.05)   # FLAC is 24-bit
    gain = np.abs(audio).max() / np.abs(raw).max()
    assert abs(20 * np.log10(gain)) > 0.01 and np.allclose(audio, raw * gain, atol=1e-4)   # the same sound, scaled


def test_continue_audio_keeps_the_sound_then_carries_on(sounds, tmp_path):
    out = tmp_path / "more.zarr"
    ok(run("generate", "--continue", str(sounds / "hiss.wav"), "-d", "2s", "--seed", "3", "-o", str(out)))
    ok(run("encode", str(sounds / "hiss.wav"), "--levels", "4", "-o", str(tmp_path / "hiss.zarr")))
    source = store_codes(tmp_path / "hiss.zarr")
    item = list(read_batches(str(out)))[0]
    codes = item.item_codes(0)
    assert len(codes) == len(source) + 150
    assert np.array_equal(codes[: len(source)], source)
    assert int(item.items["sample_rate"][0]) == 44100   # decodes back at the source's rate
    assert str(item.items["source"][0]).endswith("hiss-continued.wav")


def test_continue_refuses_tokens_of_another_codec(sounds, tmp_path):
    import zarr

    store = tmp_path / "other.zarr"
    ok(run("encode", str(sounds / "hiss.wav"), "--levels", "4", "-o", str(store)))
    group = zarr.open_group(str(store), mode="r+")
    attrs = dict(group.attrs["soundtok"])
    attrs["codec"] = dict(attrs["codec"], weights_sha256="0" * 64, version="0")
    group.attrs["soundtok"] = attrs
    one_line_error(run("generate", "--continue", str(store), "-d", "1s", "-o", str(tmp_path / "x.zarr")), 2,
                   "other.zarr", "re-encode")


def test_like_an_example(sounds, tmp_path):
    ok(run("generate", "--like", str(sounds / "hiss.wav"), "-d", "1s", "--seed", "1", "-o", str(tmp_path / "l.zarr")))
    assert store_codes(tmp_path / "l.zarr").shape == (75, 4)


def test_index_draws_on_the_best_match(sounds, tmp_path):
    index = tmp_path / "index"
    ok(subprocess.run(["bash", "-o", "pipefail", "-c",
                       f"{' '.join(CLI)} encode {sounds / 'hiss.wav'} | {' '.join(CLI)} embed | "
                       f"{' '.join(CLI)} index -o {index}"], env=ENV, capture_output=True, timeout=300))
    result = ok(run("generate", "steady noise", "--index", str(index), "-d", "1s", "--seed", "1",
                    "-o", str(tmp_path / "i.zarr")))
    assert "drawing on" in result.stderr.decode() and "hiss.wav" in result.stderr.decode()
    assert store_codes(tmp_path / "i.zarr").shape == (75, 4)


@pytest.mark.parametrize("args, needles", [
    (["   "], ["empty prompt"]),
    (["rain", "-d", "ten minutes"], ["--duration", "not a duration"]),
    ([], ["PROMPT"]),
    (["--index", "x"], ["--index", "PROMPT"]),
    (["rain", "--scene", "x.toml"], ["--scene"]),
    (["rain", "--temperature", "0"], ["--temperature"]),
    (["--continue", "/no/such.wav"], ["/no/such.wav", "no such file"]),
    (["rain", "--takes", "0"], ["--takes", "between 1 and 64"]),
    (["--scene", "x.toml", "--takes", "2"], ["--takes", "scene"]),
    (["a door slams", "--one-shot"], ["--one-shot", "write audio"]),
])
def test_bad_input_one_line(args, needles, tmp_path):
    one_line_error(run("generate", *args, "-o", str(tmp_path / "x.zarr")), 2, *needles)


def test_takes_are_variations_each_its_own_item(sounds, tmp_path):
    for name in ("a", "b"):
        ok(run("generate", "a door slams", "-d", "2s", "--seed", "4", "--takes", "3", "-o", str(tmp_path / f"{name}.zarr")))
    (a,), (b,) = (list(read_batches(str(tmp_path / f"{n}.zarr"))) for n in "ab")
    assert [str(s) for s in a.items["source"]] == [f"generated/a-door-slams-take{k}" for k in (1, 2, 3)]
    takes = [a.item_codes(i) for i in range(3)]
    assert all(t.shape == (150, 4) for t in takes)
    assert not any(np.array_equal(takes[i], takes[j]) for i, j in ((0, 1), (0, 2), (1, 2)))
    assert all(np.array_equal(t, b.item_codes(i)) for i, t in enumerate(takes))      # same seed, same takes
    assert len(set(a.items["content_hash"].tolist())) == 3
    # takes of a continuation each start with the sound carried on from
    ok(run("generate", "--continue", str(sounds / "hiss.wav"), "-d", "1s", "--takes", "2", "--seed", "1",
           "-o", str(tmp_path / "more.zarr")))
    ok(run("encode", str(sounds / "hiss.wav"), "--levels", "4", "-o", str(tmp_path / "hiss.zarr")))
    source = store_codes(tmp_path / "hiss.zarr")
    (more,) = read_batches(str(tmp_path / "more.zarr"))
    assert [str(s).rsplit("/", 1)[-1] for s in more.items["source"]] == ["hiss-continued-take1.wav", "hiss-continued-take2.wav"]
    for i in range(2):
        assert np.array_equal(more.item_codes(i)[: len(source)], source) and len(more.item_codes(i)) == len(source) + 75


def test_takes_as_audio_files_need_a_take_in_the_name(tmp_path):
    result = ok(run("generate", "a door slams", "-d", "1s", "--seed", "2", "--takes", "2", "-o", str(tmp_path / "door-{take}.flac")))
    notes = result.stderr.decode()
    assert "door-1.flac: normalised by" in notes and "door-2.flac: normalised by" in notes, notes
    for k in (1, 2):
        audio, rate = sf.read(tmp_path / f"door-{k}.flac")
        assert rate == SR and len(audio) == SR
        assert 20 * np.log10(np.abs(audio).max()) == pytest.approx(-1.0, abs=0.05)   # each normalised on its own
    one_line_error(run("generate", "a door slams", "--takes", "2", "-o", str(tmp_path / "door.wav")), 2,
                   "-o", "{take}")
    assert not (tmp_path / "door.wav").exists()


def test_missing_index_one_line(tmp_path):
    one_line_error(run("generate", "rain", "--index", str(tmp_path / "none"), "-o", str(tmp_path / "x.zarr")), 2,
                   str(tmp_path / "none"))


def test_unnormalised_audio_that_clips_is_written_with_the_gain_that_fits(tmp_path, capsys):
    """With --no-normalize a generation can pass full scale: it is written clipped, and the warning
    names the decode --gain that brings the peak to -1 dBFS (here tokens of a loud noise stand in
    for a loud generation)."""
    from soundtok_cli.console import Reporter
    from soundtok_cli.generate.output import write_audio

    loud = np.random.default_rng(0).uniform(-4.0, 4.0, 2 * SR).astype(np.float32)   # about +12 dBFS
    sf.write(tmp_path / "loud.wav", loud, SR, subtype="FLOAT")
    ok(run("encode", str(tmp_path / "loud.wav"), "-o", str(tmp_path / "loud.zarr")))
    capsys.readouterr()
    write_audio(read_batches(str(tmp_path / "loud.zarr")), str(tmp_path / "out.wav"), "cpu", False, Reporter("generate"))
    warning = capsys.readouterr().err
    assert "out.wav: " in warning and "clipped at full scale" in warning, warning
    gain = float(warning.split("--gain")[1].split()[0])
    ok(run("decode", str(tmp_path / "loud.zarr"), "--gain", f"{gain:g}", "-o", str(tmp_path / "fits.wav")))
    fits, _ = sf.read(tmp_path / "fits.wav")
    assert -2.0 <= 20 * np.log10(np.abs(fits).max()) <= -1.0


def test_one_shot_takes_start_at_their_event_and_fade_out(tmp_path):
    """Each take is the plain generation, one second longer, cut by generate/oneshot.py."""
    from soundtok_cli.generate.oneshot import one_shot

    ok(run("generate", "a heavy door slams", "-d", "2s", "--seed", "11", "--takes", "2", "--no-normalize",
           "-o", str(tmp_path / "raw-{take}.flac")))
    ok(run("generate", "a heavy door slams", "--one-shot", "-d", "1s", "--seed", "11", "--takes", "2",
           "--no-normalize", "-o", str(tmp_path / "shot-{take}.flac")))
    ok(run("generate", "a heavy door slams", "--one-shot", "-d", "1s", "--seed", "11", "--takes", "2",
           "-o", str(tmp_path / "norm-{take}.flac")))
    for k in (1, 2):
        raw, _ = sf.read(tmp_path / f"raw-{k}.flac")
        shot, rate = sf.read(tmp_path / f"shot-{k}.flac")
        norm, _ = sf.read(tmp_path / f"norm-{k}.flac")
        assert rate == SR and len(shot) == len(norm) == SR
        np.testing.assert_allclose(shot, one_shot(raw, SR, 1.0), atol=1e-4)
        assert abs(shot[0]) < 1e-4 and abs(shot[-1]) < 1e-4
        assert 20 * np.log10(np.abs(norm).max()) == pytest.approx(-1.0, abs=0.05)


@pytest.mark.parametrize("args, needles", [
    (["--continue", "x.wav"], ["--one-shot", "--continue"]),
    (["rain", "-d", "2m"], ["--duration", "at most 60"]),
])
def test_one_shot_refusals(args, needles, tmp_path):
    one_line_error(run("generate", *args, "--one-shot", "-o", str(tmp_path / "x.wav")), 2, *needles)
    assert not (tmp_path / "x.wav").exists()
