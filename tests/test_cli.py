"""End-to-end behaviour of the `soundtok` command line, run as a user would: subprocesses, pipes,
a terminal (pty) as stdout, and a matrix of bad inputs.

Each CLI start costs seconds (torch import), so the commands run once per module, two at a time,
in two waves (the second reads what the first wrote); the tests below check their results.
"""

from __future__ import annotations

import json
import os
import pty
import shlex
import shutil
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pytest
import soundfile as sf

CLI = [sys.executable, "-m", "soundtok_cli.app"]
SOUNDTOK = " ".join(shlex.quote(part) for part in CLI)  # for shell pipelines
ENV = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE", PYTHONUNBUFFERED="1")
TIMEOUT = 300

# name: (sample rate, channels, seconds); written as 16-bit WAV, except where noted
GOOD = {
    "mono44.wav": (44100, 1, 1.3),
    "stereo48.wav": (48000, 2, 0.9),
    "six96.wav": (96000, 6, 0.5),
    "mono8k.wav": (8000, 1, 1.1),
}
SILENCE = ("silence.wav", 48000, 1, 0.6)
BAD_AUDIO = {  # name: what is wrong with it
    "empty.wav": "empty file",
    "text.wav": "a text file named .wav",
    "truncated.wav": "a WAV header cut short",
    "nan.wav": "float WAV with NaN samples",
    "zero.wav": "a WAV with no samples",
    "sound.xyz": "unknown format",
    "missing.wav": "does not exist",
}
BAD_STORES = {
    "truncated.stream": "a stream cut in the middle",
    "corrupt.zarr.zip": "a zip store with damaged bytes",
    "dotdot.zarr.zip": "a zip store with a '..' entry",
    "wrong.zarr": "a store of another kind",
    "text.zarr.zip": "a text file named .zarr.zip",
    "empty.wav": "an empty file",
    "missing.zarr.zip": "does not exist",
}


@dataclass
class Result:
    args: object
    rc: int
    stdout: bytes
    stderr: str
    terminal: bytes = b""  # what reached the pty, for runs with a terminal as stdout

    def lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]

    def __str__(self) -> str:
        return f"{self.args!r} exited {self.rc}; stderr:\n{self.stderr}"


def run(args, cwd, shell: bool = False, stdin: bytes | None = None) -> Result:
    p = subprocess.run(args, cwd=cwd, env=ENV, shell=shell, capture_output=True,
                       input=stdin if stdin is not None else b"", timeout=TIMEOUT)
    return Result(args, p.returncode, p.stdout, p.stderr.decode("utf-8", "replace"))


def run_on_terminal(args, cwd) -> Result:
    """Run with a pseudo-terminal as stdout (what a user at a shell prompt has)."""
    master, slave = pty.openpty()
    try:
        p = subprocess.run(args, cwd=cwd, env=ENV, stdout=slave, stderr=subprocess.PIPE,
                           stdin=subprocess.DEVNULL, timeout=TIMEOUT)
    finally:
        os.close(slave)
    seen = b""
    try:
        os.set_blocking(master, False)
        while chunk := os.read(master, 65536):
            seen += chunk
    except OSError:  # nothing (more) to read, or EIO once the slave side is closed
        pass
    finally:
        os.close(master)
    return Result(args, p.returncode, b"", p.stderr.decode("utf-8", "replace"), seen)


def run_wave(jobs: dict, cwd) -> dict[str, Result]:
    """Run {name: (kind, args)} two at a time; kind is "cli", "shell" or "tty"."""

    def one(item):
        name, (kind, args) = item
        if kind == "cli":
            return name, run(CLI + args, cwd)
        if kind == "shell":
            return name, run(args, cwd, shell=True)
        return name, run_on_terminal(CLI + args, cwd)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(one, jobs.items()))


# --------------------------------------------------------------------------------------------
# Inputs


def _signal(rate: int, channels: int, seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(rate * seconds))) / rate
    columns = [0.3 * np.sin(2 * np.pi * (220 + 110 * c) * t) * np.exp(-2 * t) + 0.02 * rng.standard_normal(len(t))
               for c in range(channels)]
    return np.stack(columns, axis=1).astype(np.float32)


def make_inputs(d: str) -> None:
    for seed, (name, (rate, channels, seconds)) in enumerate(GOOD.items()):
        sf.write(os.path.join(d, name), _signal(rate, channels, seconds, seed), rate, subtype="PCM_16")
    name, rate, channels, seconds = SILENCE
    sf.write(os.path.join(d, name), np.zeros((int(rate * seconds), channels), np.float32), rate, subtype="PCM_16")

    open(os.path.join(d, "empty.wav"), "wb").close()
    with open(os.path.join(d, "text.wav"), "w") as f:
        f.write("this is a text file, not a sound\n" * 20)
    with open(os.path.join(d, "mono44.wav"), "rb") as f:
        head = f.read(30)
    with open(os.path.join(d, "truncated.wav"), "wb") as f:
        f.write(head)
    nan = _signal(48000, 1, 0.3, 9)
    nan[1000] = np.nan
    sf.write(os.path.join(d, "nan.wav"), nan, 48000, subtype="FLOAT")
    sf.write(os.path.join(d, "zero.wav"), np.zeros((0, 1), np.float32), 48000, subtype="PCM_16")
    with open(os.path.join(d, "sound.xyz"), "wb") as f:
        f.write(bytes(range(256)) * 8)
    with open(os.path.join(d, "text.zarr.zip"), "w") as f:
        f.write("not a store\n")

    import zarr  # a store of a kind decode cannot use

    group = zarr.open_group(os.path.join(d, "wrong.zarr"), mode="w", zarr_format=3)
    group.attrs["soundtok"] = {"kind": "embeddings", "format_version": 1,
                               "producer": {"command": "embed", "version": "0.1.0"}}
    group.create_array("embeddings", shape=(2, 4), dtype="float32")


def make_bad_stores(d: str) -> None:
    """From good outputs of the first wave: a truncated stream, a damaged zip, a '..' entry."""
    with open(os.path.join(d, "st.stream"), "rb") as f:
        stream = f.read()
    with open(os.path.join(d, "truncated.stream"), "wb") as f:
        f.write(stream[: len(stream) // 2])
    with open(os.path.join(d, "batch.zarr.zip"), "rb") as f:
        data = bytearray(f.read())
    with zipfile.ZipFile(os.path.join(d, "batch.zarr.zip")) as z:
        info = z.getinfo("codes/c/0/0")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for i in range(start, start + min(64, info.compress_size)):
        data[i] ^= 0x5A
    with open(os.path.join(d, "corrupt.zarr.zip"), "wb") as f:
        f.write(bytes(data))
    with zipfile.ZipFile(os.path.join(d, "batch.zarr.zip")) as src, \
            zipfile.ZipFile(os.path.join(d, "dotdot.zarr.zip"), "w") as dst:
        for entry in src.infolist():
            dst.writestr(entry, src.read(entry))
        dst.writestr("../escaped.txt", b"outside the store")


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("cli"))
    make_inputs(d)
    goods = list(GOOD) + [SILENCE[0]]
    wave1 = {
        # the bad-input matrix in one batch, good files (silence too) among them
        "batch": ("cli", ["encode", *goods[:2], *BAD_AUDIO, *goods[2:], "-o", "batch.zarr.zip"]),
        "all_bad": ("cli", ["encode", "empty.wav", "text.wav", "-o", "none.zarr.zip"]),
        "levels_99": ("cli", ["encode", "mono44.wav", "--levels", "99", "-o", "lv99.zarr.zip"]),
        "bitrate": ("cli", ["encode", "--bitrate", "1.5", "mono44.wav", "-o", "br.zarr"]),
        # audio on stdin, a stream through tee, decode with fewer levels than stored
        "pipe_levels": ("shell", f"cat mono8k.wav | {SOUNDTOK} encode --levels 3 - | tee lv3.stream"
                                 f" | {SOUNDTOK} decode --levels 2 -o lv2.wav"),
        # encode | decode with WAV on stdout
        "pipe_wav": ("shell", f"{SOUNDTOK} encode stereo48.wav | tee st.stream | {SOUNDTOK} decode -o - > piped.wav"),
        "tty_encode": ("tty", ["encode", "mono44.wav"]),
    }
    if shutil.which("sox"):
        wave1["pipe_sox"] = ("shell", f"sox -n -r 22050 -c 1 -b 16 -t wav - synth 0.7 sine 440 gain -6"
                                      f" | {SOUNDTOK} encode - | {SOUNDTOK} decode -o sox.wav")
    results = run_wave(wave1, d)
    for name in ("batch", "pipe_wav"):
        assert results[name].rc in (0, 1), results[name]
    make_bad_stores(d)
    wave2 = {
        "decode_all": ("cli", ["decode", "batch.zarr.zip", "-o", "out/{stem}.wav"]),
        "decode_range": ("cli", ["decode", "batch.zarr.zip", "--start", "0.25", "--end", "0.75",
                                 "-o", "range/{stem}.flac"]),
        "info": ("cli", ["info", "--format", "json", "batch.zarr.zip", "lv3.stream", "st.stream", "br.zarr"]),
        "too_many_levels": ("cli", ["decode", "lv3.stream", "--levels", "5", "-o", "too_many.wav"]),
        "cat": ("cli", ["cat", "batch.zarr.zip", "st.stream", "-o", "merged.zarr.zip"]),
        "cat_bad": ("cli", ["cat", "st.stream", "truncated.stream", "dotdot.zarr.zip", "-o", "cat_some.zarr.zip"]),
        "cat_none": ("cli", ["cat", "truncated.stream", "-o", "cat_none.zarr.zip"]),
        "info_bad": ("cli", ["info", "--format", "json", "st.stream", *BAD_STORES]),
        "decode_truncated": ("cli", ["decode", "truncated.stream", "-o", "from_truncated.wav"]),
        "decode_wrong_kind": ("cli", ["decode", "wrong.zarr", "-o", "wrong/{stem}.wav"]),
        "decode_corrupt": ("cli", ["decode", "corrupt.zarr.zip", "-o", "corrupt/{stem}.wav"]),
        "decode_one_file": ("cli", ["decode", "batch.zarr.zip", "-o", "single.wav"]),
        "decode_quieter": ("cli", ["decode", "st.stream", "--gain", "-12", "-o", "quieter.wav"]),
        "decode_clipping": ("cli", ["decode", "st.stream", "--gain", "30", "-o", "clipping.wav"]),
        "decode_normalized": ("cli", ["decode", "st.stream", "--normalize", "-v", "-o", "normalized.wav"]),
        "decode_normalize_and_gain": ("cli", ["decode", "st.stream", "--normalize", "--gain", "3", "-o", "ng.wav"]),
        "tty_decode": ("tty", ["decode", "st.stream", "-o", "-"]),
        "tty_cat": ("tty", ["cat", "st.stream"]),
    }
    results.update(run_wave(wave2, d))
    results["dir"] = d
    return results


def path(cli, *parts) -> str:
    return os.path.join(cli["dir"], *parts)


def one_line_about(result: Result, name: str) -> str:
    """The single stderr line naming `name`; no traceback anywhere."""
    assert "Traceback" not in result.stderr, result
    about = [line for line in result.lines() if name in line]
    assert len(about) == 1, f"expected one line naming {name}:\n{result}"
    return about[0]


def only_line(result: Result) -> str:
    assert "Traceback" not in result.stderr, result
    assert len(result.lines()) == 1, f"expected exactly one line on stderr:\n{result}"
    return result.lines()[0]


def store_items(store: str) -> dict[str, np.ndarray]:
    """The per-item table of a store, read with stock zarr: a directory, a zip, or a one-batch
    stream (each batch of a stream is a complete zip store)."""
    import zarr
    from zarr.storage import ZipStore

    handle = ZipStore(store, mode="r") if store.endswith((".zip", ".stream")) else store
    group = zarr.open_group(handle, mode="r")
    items = {name: group[f"items/{name}"][:] for name in ("source", "channel", "length", "sample_rate")}
    items["codes_rows"] = np.array(group["codes"].shape[0])
    items["source"] = np.array([str(s) for s in items["source"]])
    return items


def leftovers(directory: str) -> list[str]:
    """Temporary files or directories (dot names) left behind by failed or finished runs."""
    found = []
    for root, dirs, files in os.walk(directory):
        found += [os.path.join(root, n) for n in dirs + files if n.startswith(".")]
    return found


# --------------------------------------------------------------------------------------------
# Round trips


@pytest.mark.parametrize("name", [*GOOD, SILENCE[0]])
def test_round_trip_keeps_rate_channels_and_length(cli, name):
    assert cli["decode_all"].rc == 0, cli["decode_all"]
    original = sf.info(path(cli, name))
    decoded = sf.info(path(cli, "out", name))
    assert (decoded.samplerate, decoded.channels, decoded.frames) == \
        (original.samplerate, original.channels, original.frames)


def test_decoded_audio_is_finite(cli):
    for name in [*GOOD, SILENCE[0]]:  # how close it sounds is the codec's business (bench/)
        x, _ = sf.read(path(cli, "out", name), dtype="float32")
        assert np.isfinite(x).all() and np.abs(x).max() <= 1.0


def test_gain_scales_the_decoded_audio(cli):
    assert cli["decode_quieter"].rc == 0, cli["decode_quieter"]
    assert "warning" not in cli["decode_quieter"].stderr
    plain, _ = sf.read(path(cli, "piped.wav"), dtype="float64")
    quieter, _ = sf.read(path(cli, "quieter.wav"), dtype="float64")
    np.testing.assert_allclose(quieter, plain * 10 ** (-12 / 20), atol=2 ** -22)


def test_normalize_scales_each_file_to_a_peak_of_minus_1_dbfs(cli):
    result = cli["decode_normalized"]
    assert result.rc == 0, result
    assert "normalized.wav: normalised by" in result.stderr, result
    plain, _ = sf.read(path(cli, "piped.wav"), dtype="float64")
    loud, _ = sf.read(path(cli, "normalized.wav"), dtype="float64")
    assert loud.shape == plain.shape
    assert 20 * np.log10(np.abs(loud).max()) == pytest.approx(-1.0, abs=0.01)
    gain = np.abs(loud).max() / np.abs(plain).max()
    np.testing.assert_allclose(loud, plain * gain, atol=2 ** -14)   # the same sound, one gain
    one_line_about(cli["decode_normalize_and_gain"], "--gain")
    assert cli["decode_normalize_and_gain"].rc == 2 and not os.path.exists(path(cli, "ng.wav"))


def test_clipping_is_written_at_full_scale_with_a_warning(cli):
    result = cli["decode_clipping"]
    assert result.rc == 0, result
    line = one_line_about(result, "clipping.wav")
    assert "warning" in line and "clipped at full scale" in line, line
    suggested = float(line.rsplit("--gain", 1)[1])
    loud, _ = sf.read(path(cli, "clipping.wav"), dtype="float64")
    plain, _ = sf.read(path(cli, "piped.wav"), dtype="float64")
    assert np.abs(loud).max() <= 1.0 and np.isclose(np.abs(loud).max(), 1.0, atol=1e-6)
    # the suggested gain (from the stored level) brings the peak to -1 dBFS or just under
    peak_db = 20 * np.log10(np.abs(plain).max()) + suggested
    assert -2.0 <= peak_db <= -1.0 + 1e-6, (suggested, peak_db)


def test_template_writes_one_file_per_source(cli):
    assert sorted(os.listdir(path(cli, "out"))) == sorted([*GOOD, SILENCE[0]])
    assert "Traceback" not in cli["decode_all"].stderr


def test_time_range_gives_the_right_length(cli):
    result = cli["decode_range"]
    assert result.rc == 0, result
    for name, (rate, channels, seconds) in [*GOOD.items(), (SILENCE[0], SILENCE[1:])]:
        out = sf.info(path(cli, "range", name.rsplit(".", 1)[0] + ".flac"))
        end = min(0.75, sf.info(path(cli, name)).frames / rate)
        assert (out.samplerate, out.channels) == (rate, channels)
        assert out.frames == round((end - 0.25) * rate), name


def test_pipe_from_stdin_with_fewer_levels(cli):
    result = cli["pipe_levels"]
    assert result.rc == 0, result
    original, decoded = sf.info(path(cli, "mono8k.wav")), sf.info(path(cli, "lv2.wav"))
    assert (decoded.samplerate, decoded.channels, decoded.frames) == (8000, 1, original.frames)


def test_wav_on_stdout_through_a_pipe(cli):
    result = cli["pipe_wav"]
    assert result.rc == 0, result
    original, piped = sf.info(path(cli, "stereo48.wav")), sf.info(path(cli, "piped.wav"))
    assert piped.format == "WAV"
    assert (piped.samplerate, piped.channels, piped.frames) == (48000, 2, original.frames)


def test_sox_pipe_into_encode(cli):
    if "pipe_sox" not in cli:
        pytest.skip("sox is not installed")
    result = cli["pipe_sox"]
    assert result.rc == 0, result
    out = sf.info(path(cli, "sox.wav"))
    assert (out.samplerate, out.channels, out.frames) == (22050, 1, round(0.7 * 22050))


# --------------------------------------------------------------------------------------------
# Levels, bitrate, info, cat


def test_info_records_levels_and_bitrate(cli):
    result = cli["info"]
    assert result.rc == 0, result
    summaries = {s["source"]: s for s in map(json.loads, result.stdout.decode().splitlines())}
    assert set(summaries) == {"batch.zarr.zip", "lv3.stream", "st.stream", "br.zarr"}
    batch = summaries["batch.zarr.zip"]
    assert (batch["levels"], batch["bitrate_kbps"]) == (8, 6.0)
    assert batch["sources"] == len(GOOD) + 1
    assert batch["items"] == sum(ch for _, ch, _ in GOOD.values()) + 1
    assert sorted(batch["sample_rates"]) == sorted({r for r, _, _ in GOOD.values()} | {SILENCE[1]})
    assert (summaries["lv3.stream"]["levels"], summaries["lv3.stream"]["bitrate_kbps"]) == (3, 2.25)
    assert (summaries["br.zarr"]["levels"], summaries["br.zarr"]["bitrate_kbps"]) == (2, 1.5)
    for s in summaries.values():  # bits per frame = levels x log2(codebook size)
        assert s["bitrate_kbps"] == pytest.approx(s["frame_rate"] * s["levels"] * np.log2(s["codebook_size"]) / 1000)


def test_decode_with_more_levels_than_stored_fails(cli):
    result = cli["too_many_levels"]
    assert result.rc == 2, result
    line = only_line(result)
    assert "--levels" in line and "3" in line
    assert not os.path.exists(path(cli, "too_many.wav"))


def test_encode_rejects_impossible_levels_and_leaves_nothing(cli):
    result = cli["levels_99"]
    assert result.rc == 2, result
    assert "--levels" in only_line(result)
    assert not os.path.exists(path(cli, "lv99.zarr.zip"))


def test_cat_merges_stores_and_streams(cli):
    result = cli["cat"]
    assert result.rc == 0, result
    merged, batch, single = (store_items(path(cli, n)) for n in ("merged.zarr.zip", "batch.zarr.zip", "st.stream"))
    assert list(merged["source"]) == list(batch["source"]) + list(single["source"])
    assert int(merged["codes_rows"]) == int(batch["codes_rows"]) + int(single["codes_rows"])


# --------------------------------------------------------------------------------------------
# Bad inputs: one line each naming the input, documented exit codes, good files kept


def test_bad_audio_in_a_batch(cli):
    result = cli["batch"]
    assert result.rc == 1, result
    for name in BAD_AUDIO:
        one_line_about(result, name)
    for name in [*GOOD, SILENCE[0]]:
        assert not any(name in line for line in result.lines()), f"{name} reported:\n{result}"
    items = store_items(path(cli, "batch.zarr.zip"))
    sources = list(dict.fromkeys(items["source"]))
    assert sources == [*GOOD, SILENCE[0]]
    six = items["source"] == "six96.wav"
    assert list(items["channel"][six]) == list(range(6))


def test_nothing_written_when_no_input_is_good(cli):
    result = cli["all_bad"]
    assert result.rc == 2, result
    one_line_about(result, "empty.wav")
    one_line_about(result, "text.wav")
    assert not os.path.exists(path(cli, "none.zarr.zip"))


def test_bad_stores_for_info(cli):
    result = cli["info_bad"]
    assert result.rc == 1, result
    for name in BAD_STORES:
        one_line_about(result, name)
    good = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert [s["source"] for s in good] == ["st.stream"]


def test_cat_keeps_the_good_input(cli):
    result = cli["cat_bad"]
    assert result.rc == 1, result
    one_line_about(result, "truncated.stream")
    one_line_about(result, "dotdot.zarr.zip")
    assert list(dict.fromkeys(store_items(path(cli, "cat_some.zarr.zip"))["source"])) == ["stereo48.wav"]


def test_cat_with_nothing_readable_writes_nothing(cli):
    result = cli["cat_none"]
    assert result.rc == 2, result
    one_line_about(result, "truncated.stream")
    assert not os.path.exists(path(cli, "cat_none.zarr.zip"))


@pytest.mark.parametrize("run_name, store, output", [
    ("decode_truncated", "truncated.stream", "from_truncated.wav"),
    ("decode_wrong_kind", "wrong.zarr", "wrong"),
    ("decode_corrupt", "corrupt.zarr.zip", "corrupt"),
])
def test_decode_refuses_bad_stores(cli, run_name, store, output):
    result = cli[run_name]
    assert result.rc == 2, result
    assert only_line(result).startswith(f"soundtok decode: {store}: ")
    assert not os.path.exists(path(cli, output))


def test_decode_several_sources_into_one_file_is_refused(cli):
    result = cli["decode_one_file"]
    assert result.rc == 2, result
    assert "template" in only_line(result)
    assert not os.path.exists(path(cli, "single.wav"))


def test_no_temporaries_left_behind(cli):
    assert leftovers(cli["dir"]) == []


# --------------------------------------------------------------------------------------------
# A terminal as stdout: binary data is refused


@pytest.mark.parametrize("name", ["tty_encode", "tty_decode", "tty_cat"])
def test_binary_output_to_a_terminal_is_refused(cli, name):
    result = cli[name]
    assert result.rc == 2, result
    assert "terminal" in only_line(result)
    assert result.terminal == b""


# --------------------------------------------------------------------------------------------
# Shell completion (typer's, enabled in the app)


def test_shell_completion_scripts_and_answers():
    env = dict(ENV, _SOUNDTOK_COMPLETE="source_bash")
    script = subprocess.run(CLI, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert "complete -o default -F _soundtok_completion soundtok" in script.stdout, script.stderr
    # "; exit $?" keeps bash from exec'ing python, so python's parent is bash, as from a terminal
    shown = subprocess.run(["bash", "-c", f"{SOUNDTOK} --show-completion; exit $?"], env=ENV,
                           capture_output=True, text=True, timeout=TIMEOUT)
    assert shown.returncode == 0 and "_soundtok_completion" in shown.stdout, shown.stderr
    env = dict(ENV, _SOUNDTOK_COMPLETE="complete_bash", COMP_WORDS="soundtok enc", COMP_CWORD="1")
    answer = subprocess.run(CLI, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert answer.stdout.split() == ["encode"], answer
    env = dict(ENV, _SOUNDTOK_COMPLETE="complete_bash", COMP_WORDS="soundtok decode --lev", COMP_CWORD="2")
    answer = subprocess.run(CLI, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert answer.stdout.split() == ["--levels"], answer


def test_help_prose_fills_the_terminal_and_examples_keep_their_lines():
    from typer.testing import CliRunner

    from soundtok_cli.app import app

    blank = "\n" + " " * 80 + "\n"
    for command in ("separate", "search", "encode"):
        text = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "80"}).output
        paragraphs = [[line.strip() for line in p.splitlines()] for p in text.split(blank)
                      if p.startswith(" ") and not p.startswith("  ") and not p.lstrip().startswith(("Usage", "╭"))]
        assert len(paragraphs) >= 2, command
        for lines in paragraphs:  # filled: only a paragraph's last line may be short
            assert all(len(line) > 55 for line in lines[:-1]), (command, lines)
        examples = [line.strip() for line in text.splitlines() if line.startswith("   soundtok ")]
        assert len(examples) >= 3, command  # each example on its own line, as written
        if command == "separate":
            assert "soundtok separate old-take.wav --remove hum -o clean.wav" in examples
