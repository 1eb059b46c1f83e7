"""`soundtok separate` as a user runs it: files, templates, residuals, pipes, multichannel and
44.1 kHz input, silence, and bad input (one line on stderr, no traceback, exit status 0/1/2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from audio_checks import si_sdr, voice
from cli_checks import one_line_error

CLI = [sys.executable, "-m", "soundtok_cli.app", "separate"]
ENV = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")


def run(*args, stdin=None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + [str(a) for a in args], env=ENV, capture_output=True, timeout=300, stdin=stdin, cwd=cwd)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("separate")
    rate = 48000
    n = 3 * rate
    t = np.arange(n) / rate
    clean = np.stack([voice(n, rate, 0), voice(n, rate, 1), voice(n, rate, 2)], axis=1)
    hum = 0.05 * np.sin(2 * np.pi * 60.3 * t) + 0.03 * np.sin(2 * np.pi * 180.9 * t + 1)
    sf.write(d / "hum3.wav", clean + hum[:, None], rate, subtype="FLOAT")
    sf.write(d / "clean3.wav", clean, rate, subtype="FLOAT")
    t44 = np.arange(2 * 44100) / 44100
    sf.write(d / "hum44.flac", np.stack([voice(len(t44), 44100, 3)] * 2, 1) + 0.05 * np.sin(2 * np.pi * 50.0 * t44)[:, None], 44100)
    sf.write(d / "silent.wav", np.zeros((rate, 2)), rate)
    (d / "notes.wav").write_text("not audio\n")
    return d


def test_hum_removed_with_residual(files, tmp_path):
    result = run(files / "hum3.wav", "--remove", "hum", "-o", tmp_path / "out.wav", "--residual", tmp_path / "res.wav")
    assert result.returncode == 0, result.stderr.decode()
    import re

    found = re.search(r"hum at (\d+\.\d+) Hz removed", result.stderr.decode())
    assert found and abs(float(found.group(1)) - 60.3) <= 0.02, result.stderr.decode()
    x, rate = sf.read(files / "hum3.wav")
    y, rate_out = sf.read(tmp_path / "out.wav")
    r, _ = sf.read(tmp_path / "res.wav")
    clean, _ = sf.read(files / "clean3.wav")
    assert rate_out == rate and y.shape == x.shape == r.shape
    assert np.max(np.abs(y + r - x)) < 1e-5  # residual = input - output (24-bit files)
    for c in range(3):
        assert np.sqrt(np.mean((y[:, c] - clean[:, c]) ** 2)) < 0.15 * np.sqrt(np.mean((x[:, c] - clean[:, c]) ** 2))


def test_no_hum_leaves_audio_untouched(files, tmp_path):
    result = run(files / "clean3.wav", "--remove", "hum", "-o", tmp_path / "same.wav", "--format", "json")
    assert result.returncode == 0, result.stderr.decode()
    report = json.loads(result.stdout)
    assert report["hum_found"] is False and report["hum"] is None
    assert "no hum found" in result.stderr.decode()
    x, _ = sf.read(files / "clean3.wav")
    y, _ = sf.read(tmp_path / "same.wav")
    assert np.max(np.abs(y - x)) < 2**-22  # only the 24-bit rounding of the output file


def test_template_several_inputs_44k_and_silence(files, tmp_path):
    result = run(files / "hum44.flac", files / "silent.wav", "--remove", "hum,clicks", "--remove", "hiss",
                 "-o", tmp_path / "out/{stem}.flac", "--format", "json")
    assert result.returncode == 0, result.stderr.decode()
    reports = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert [r["removed"] for r in reports] == [["hum", "clicks", "hiss"]] * 2
    assert abs(reports[0]["hum"]["frequency"] - 50.0) < 0.1 and reports[0]["sample_rate"] == 44100
    assert reports[1]["silent"] is True and "silent; passed through unchanged" in result.stderr.decode()
    info = sf.info(tmp_path / "out/hum44.flac")
    assert (info.samplerate, info.channels, info.frames) == (44100, 2, 2 * 44100)
    silent, _ = sf.read(tmp_path / "out/silent.flac")
    assert silent.shape == (48000, 2) and not silent.any()


def test_pipe_in_and_out(files):
    with open(files / "hum3.wav", "rb") as f:
        result = run("-", "--remove", "hum", stdin=f)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout[:4] == b"RIFF"
    import io

    y, rate = sf.read(io.BytesIO(result.stdout))
    assert rate == 48000 and y.shape == (3 * 48000, 3)


def test_keep_by_description_writes_what_is_kept_and_the_rest(files, tmp_path):
    result = run(files / "hum3.wav", "--keep", "speech", "-o", tmp_path / "voice.flac", "--residual", tmp_path / "rest.wav",
                 "--format", "json")
    assert result.returncode == 0, result.stderr.decode()
    report = json.loads(result.stdout)
    assert report["separated"]["mode"] == "keep" and report["separated"]["descriptions"] == ["speech"]
    assert report["separated"]["voice"] == [True]      # kept with the noise suppressor too
    x, _ = sf.read(files / "hum3.wav")
    kept, rate = sf.read(tmp_path / "voice.flac")
    rest, _ = sf.read(tmp_path / "rest.wav")
    assert rate == 48000 and kept.shape == rest.shape == x.shape
    assert np.abs(kept + rest - x).max() < 1e-4       # kept + removed = input (FLAC rounds to 16 bits)
    assert 0 < np.sqrt(np.mean(kept ** 2)) < np.sqrt(np.mean(x ** 2)) * 1.05


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")
def test_cuda_asked_for_without_a_gpu_is_one_clear_line(files, tmp_path):
    one_line_error(run(files / "hum3.wav", "--keep", "speech", "--device", "cuda", "-o", tmp_path / "a.wav"), 2,
                   "--device", "no CUDA device")


def test_keep_on_the_cpu_when_asked(files, tmp_path):
    result = run(files / "hum3.wav", "--keep", "speech", "--device", "cpu", "-o", tmp_path / "voice.wav")
    assert result.returncode == 0, result.stderr.decode()
    assert sf.info(tmp_path / "voice.wav").frames == sf.info(files / "hum3.wav").frames


def test_remove_by_description_after_hum(files, tmp_path):
    result = run(files / "hum44.flac", "--remove", "hum,crowd chatter", "-o", tmp_path / "out.wav")
    assert result.returncode == 0, result.stderr.decode()
    err = result.stderr.decode()
    assert "removed 'crowd chatter'" in err and "hum at 50" in err, err
    y, rate = sf.read(tmp_path / "out.wav")
    assert rate == 44100 and y.shape == (2 * 44100, 2)


def test_stems_one_file_per_description(files, tmp_path):
    result = run(files / "clean3.wav", "--stems", "speech, music,rain", "-o", tmp_path / "{stem}-{part}.wav",
                 "--residual", tmp_path / "{stem}-rest.wav")
    assert result.returncode == 0, result.stderr.decode()
    x, _ = sf.read(files / "clean3.wav")
    stems = [sf.read(tmp_path / f"clean3-{part}.wav")[0] for part in ("speech", "music", "rain")]
    rest, _ = sf.read(tmp_path / "clean3-rest.wav")
    assert np.abs(sum(stems) + rest - x).max() < 1e-4
    for stem in stems:
        assert np.sum(stem ** 2) <= np.sum(x ** 2) * 1.05


def test_descriptions_refused_in_one_line(files, tmp_path):
    line = one_line_error(run(files / "hum3.wav", "--keep", "quarterly tax report", "-o", tmp_path / "x.wav"), 2,
                          "cannot ground 'quarterly tax report'", "nearest concepts: '")
    assert "not implemented" not in line
    one_line_error(run(files / "hum3.wav", "--keep", " ", "-o", tmp_path / "x.wav"), 2, "--keep", "empty description")
    one_line_error(run(files / "hum3.wav", "--keep", "speech", "--stems", "music,rain", "-o", tmp_path / "x.wav"), 2,
                   "one of --keep, --stems")
    one_line_error(run(files / "hum3.wav", "--stems", "speech,music", "-o", tmp_path / "x.wav"), 2, "{part}")
    one_line_error(run(files / "hum3.wav", files / "clean3.wav", "--keep", "speech", "-o", tmp_path / "x.wav"), 2, "template")
    assert not (tmp_path / "x.wav").exists()


def test_loosely_grounded_description_is_named(files, tmp_path):
    result = run(files / "hum3.wav", "--keep", "traffic", "-o", tmp_path / "x.wav")
    assert result.returncode == 0, result.stderr.decode()
    assert "'traffic' is only loosely like what the model knows; it is taken as '" in result.stderr.decode()


def test_bad_inputs(files, tmp_path):
    one_line_error(run(tmp_path / "missing.wav", "--remove", "hum", "-o", tmp_path / "a.wav"), 2, "missing.wav", "no such file")
    one_line_error(run(files / "notes.wav", "--remove", "hum", "-o", tmp_path / "a.wav"), 2, "notes.wav", "not an audio file")
    one_line_error(run(files / "hum3.wav", files / "clean3.wav", "--remove", "hum", "-o", tmp_path / "one.wav"), 2, "template")
    one_line_error(run(files / "hum3.wav", "--remove", "hum", "-o", tmp_path / "a.mp4"), 2, ".wav, .flac or .ogg")
    one_line_error(run(files / "hum3.wav", "--remove", "hiss", "--strength", "5", "-o", tmp_path / "a.wav"), 2, "--strength")
    one_line_error(run(files / "hum3.wav", "--remove", "hum", "--device", "tpu", "-o", tmp_path / "a.wav"), 2,
                   "--device", "unknown device 'tpu'")
    # one bad input among good ones: the rest are written, exit status 1
    result = run(files / "hum3.wav", files / "notes.wav", "--remove", "hum", "-q", "-o", tmp_path / "b/{stem}.wav")
    assert result.returncode == 1
    assert result.stderr.decode().strip().splitlines() == [f"soundtok separate: {files / 'notes.wav'}: not an audio file or unsupported format"]
    assert (tmp_path / "b/hum3.wav").exists() and not (tmp_path / "b/notes.wav").exists()


@pytest.fixture(scope="module")
def hissy(tmp_path_factory):
    """A take whose first second is the noise alone (white, -37 dBFS), then 24 s of an ambience
    that never pauses over it (a rumble below 1.5 kHz, 20 dB above the hiss: ambience.npy holds it
    clean), so that less than a twentieth of the take is the noise alone; and a print of that
    noise recorded on its own, stereo at 44.1 kHz."""
    from scipy import signal

    d = tmp_path_factory.mktemp("hissy")
    rng = np.random.default_rng(5)
    rumble = signal.lfilter(*signal.butter(2, 1500 / 24000), rng.standard_normal(24 * 48000))
    ambience = np.concatenate([np.zeros(48000), 0.1 * rumble / np.sqrt(np.mean(rumble ** 2))])
    np.save(d / "ambience.npy", ambience)
    sf.write(d / "take.wav", ambience + 0.01 * rng.standard_normal(len(ambience)), 48000, subtype="FLOAT")
    sf.write(d / "short.wav", 0.01 * rng.standard_normal(24000), 48000, subtype="FLOAT")
    sf.write(d / "room.wav", 0.01 * rng.standard_normal((2 * 44100, 2)), 44100, subtype="FLOAT")
    sf.write(d / "silence.wav", np.zeros(48000), 48000)
    return d


def test_hiss_learnt_from_a_noise_print(hissy, tmp_path):
    true_level = 20 * np.log10(0.01) + 3.01  # white noise of RMS 0.01 against a full-scale sine
    reports = {}
    for name, args in (("range", ["--noise-from", "0-1"]), ("file", ["--noise-from", hissy / "room.wav"]), ("auto", [])):
        result = run(hissy / "take.wav", "--remove", "hiss", *args, "-o", tmp_path / f"{name}.wav", "--format", "json")
        assert result.returncode == 0, result.stderr.decode()
        reports[name] = json.loads(result.stdout)
    assert reports["range"]["noise_print"] == "0-1 s of the input"
    assert reports["file"]["noise_print"] == str(hissy / "room.wav")
    assert reports["auto"]["noise_print"] is None
    for name in ("range", "file"):  # a 44.1 kHz stereo print serves a 48 kHz mono take
        assert abs(reports[name]["hiss_floor_dbfs"] - true_level) < 1.0, reports[name]
    # the ambience never pauses: the quietest twentieth of the take is the ambience, which the
    # floor from it then takes for noise and removes; against a print it stays
    ambience = np.load(hissy / "ambience.npy")[48000:]
    before = si_sdr(ambience, sf.read(hissy / "take.wav")[0][48000:])
    gains = {name: si_sdr(ambience, sf.read(tmp_path / f"{name}.wav")[0][48000:]) - before for name in reports}
    assert gains["range"] > 2 and gains["file"] > 2 and gains["auto"] < -5, gains
    result = run(hissy / "take.wav", "--remove", "hiss", "--noise-from", "0:00-0:01.0", "-o", tmp_path / "mss.wav")
    assert result.returncode == 0 and "from 0-1 s of the input" in result.stderr.decode()


def test_bad_noise_prints(hissy, tmp_path):
    take, out = hissy / "take.wav", tmp_path / "out.wav"
    one_line_error(run(take, "--remove", "hiss", "--noise-from", "3-99", "-o", out), 2, "take.wav",
                   "the noise print 3-99 runs past the end of the input (25.00 s)")
    one_line_error(run(take, "--remove", "hiss", "--noise-from", "1-0.5", "-o", out), 2, "--noise-from", "ends before")
    one_line_error(run(take, "--remove", "hiss", "--noise-from", "room", "-o", out), 2, "--noise-from",
                   "neither an audio file nor a time range")
    one_line_error(run(take, "--remove", "hiss", "--noise-from", hissy / "silence.wav", "-o", out), 2, "--noise-from",
                   "silence.wav", "no noise to learn")
    one_line_error(run(take, "--remove", "hum", "--noise-from", "0-1", "-o", out), 2, "--noise-from", "--remove hiss")
    assert not out.exists()
    # a batch goes on past an input too short for the range: exit status 1, the other written
    result = run(take, hissy / "short.wav", "--remove", "hiss", "--noise-from", "0-1", "-q", "-o", tmp_path / "b/{stem}.wav")
    assert result.returncode == 1
    assert result.stderr.decode().strip().splitlines() == [
        f"soundtok separate: {hissy / 'short.wav'}: the noise print 0-1 runs past the end of the input (0.50 s)"]
    assert (tmp_path / "b/take.wav").exists() and not (tmp_path / "b/short.wav").exists()


def test_reduction_turns_down_what_is_removed(files, tmp_path):
    x, rate = sf.read(files / "hum3.wav")
    full = run(files / "hum3.wav", "--remove", "hum", "-o", tmp_path / "full.wav", "--residual", tmp_path / "full-res.wav")
    assert full.returncode == 0, full.stderr.decode()
    result = run(files / "hum3.wav", "--remove", "hum", "--reduction", "12", "-o", tmp_path / "down.wav",
                 "--residual", tmp_path / "down-res.wav", "--format", "json")
    assert result.returncode == 0, result.stderr.decode()
    assert json.loads(result.stdout)["reduction_db"] == 12
    clean, taken = sf.read(tmp_path / "full.wav")[0], sf.read(tmp_path / "full-res.wav")[0]
    down, rest = sf.read(tmp_path / "down.wav")[0], sf.read(tmp_path / "down-res.wav")[0]
    k = 10 ** (-12 / 20)
    np.testing.assert_allclose(down, clean + k * taken, atol=1e-5)  # the hum 12 dB down, not gone
    np.testing.assert_allclose(down + rest, x, atol=1e-5)  # output and residual still add up to the input
    # keeping a voice: everything else turned down
    result = run(files / "clean3.wav", "--keep", "speech", "--reduction", "20", "-o", tmp_path / "voice.wav",
                 "--residual", tmp_path / "room.wav")
    assert result.returncode == 0 and "turned down 20 dB" in result.stderr.decode(), result.stderr.decode()
    kept = run(files / "clean3.wav", "--keep", "speech", "-o", tmp_path / "voice0.wav", "--residual", tmp_path / "room0.wav")
    assert kept.returncode == 0, kept.stderr.decode()
    np.testing.assert_allclose(sf.read(tmp_path / "voice.wav")[0],
                               sf.read(tmp_path / "voice0.wav")[0] + 0.1 * sf.read(tmp_path / "room0.wav")[0], atol=1e-5)
    one_line_error(run(files / "hum3.wav", "--stems", "speech,music", "--reduction", "6", "-o", tmp_path / "{part}.wav"),
                   2, "--reduction", "--stems")
    one_line_error(run(files / "hum3.wav", "--remove", "hum", "--reduction", "-3", "-o", tmp_path / "n.wav"), 2,
                   "--reduction", "positive number of decibels")


def test_reverb_removed_with_residual(tmp_path):
    rate = 44100
    rng = np.random.default_rng(7)
    t = np.arange(int(0.9 * rate)) / rate
    ir = rng.standard_normal(len(t)) * np.exp(-6.91 * t / 0.8) * (t > 0.01) * 0.02
    ir[0] = 1.0
    dry = voice(3 * rate, rate, 4)
    wet = np.convolve(dry, ir)[: len(dry)]
    sf.write(tmp_path / "room.wav", np.stack([wet, 0.7 * wet], axis=1), rate, subtype="FLOAT")
    result = run(tmp_path / "room.wav", "--remove", "reverberation,hum", "-o", tmp_path / "dry.wav",
                 "--residual", tmp_path / "tail.wav", "--format", "json")
    assert result.returncode == 0, result.stderr.decode()
    report = json.loads(result.stdout)
    assert report["removed"] == ["hum", "reverb"] and report["reverb_removed_db"] < -1.0, report
    x, got_rate = sf.read(tmp_path / "room.wav")
    out, tail = sf.read(tmp_path / "dry.wav")[0], sf.read(tmp_path / "tail.wav")[0]
    assert got_rate == rate and out.shape == x.shape
    np.testing.assert_allclose(out + tail, x, atol=1e-5)
    assert si_sdr(dry, out[:, 0]) > si_sdr(dry, x[:, 0])  # drier (measured +0.74 dB; quality: test_separate_dereverb.py)
    text = run(tmp_path / "room.wav", "--remove", "reverb", "-o", tmp_path / "dry2.wav")
    assert text.returncode == 0 and "reverberation removed" in text.stderr.decode(), text.stderr.decode()
