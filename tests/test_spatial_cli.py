"""`soundtok spatialize` and `soundtok decode --render` as a user runs them: rendering files,
spatial stores through a pipe, scene files with the examples Makefile, and bad input (one line on
stderr, no traceback, exit status 2 when nothing could be done, 1 when some inputs failed)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import soundfile as sf
from scipy import signal

from cli_checks import one_line_error

CLI = [sys.executable, "-m", "soundtok_cli.app"]
SOUNDTOK = " ".join(shlex.quote(part) for part in CLI)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
SR = 48000


def run(*args: str, cwd=None, stdin=None) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + list(args), cwd=cwd, env=ENV, capture_output=True, timeout=300, stdin=stdin)


def shell(command: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=cwd, env=ENV, capture_output=True, timeout=300)


@pytest.fixture(scope="module")
def sounds(tmp_path_factory):
    d = tmp_path_factory.mktemp("spatial")
    rng = np.random.default_rng(0)
    sf.write(d / "noise.wav", (0.1 * rng.standard_normal(SR)).astype(np.float32), SR)
    t = np.arange(int(1.2 * 44100)) / 44100
    stereo = np.stack([0.2 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 550 * t)], axis=1)
    sf.write(d / "tone44.wav", stereo.astype(np.float32), 44100)
    (d / "bad.csv").write_text("t,az,el,dist\n0,0,0,1\n1,banana,0,1\n")
    (d / "notes.sofa").write_text("these are not HRIRs\n")
    (d / "path.csv").write_text("0,-90,0,2\n0.5,0,0,1\n1,90,0,2\n")
    return d


def ild_db(stereo: np.ndarray, rate: int) -> float:
    sos = signal.butter(4, [3000, 10000], "band", fs=rate, output="sos")
    left, right = signal.sosfilt(sos, stereo[:, 0]), signal.sosfilt(sos, stereo[:, 1])
    return 10 * np.log10(np.sum(left ** 2) / np.sum(right ** 2))


def test_render_files_directly(sounds):
    jobs = {
        "words": ("noise.wav", "--at", "behind your left ear", "--render", "binaural", "-o", "ear.wav"),
        "quieter": ("noise.wav", "--at", "behind your left ear", "--gain", "-12", "--render", "binaural", "-o", "ear-12.wav"),
        "flac": ("tone44.wav", "--path", "from right to left overhead over 1s", "--render", "5.1", "-o", "jet.flac"),
        "hoa": ("noise.wav", "--trajectory", "path.csv", "--render", "hoa3", "-o", "bee.wav", "--room", "hall"),
        "template": ("noise.wav", "tone44.wav", "--at", "az=-60 el=0 dist=2", "--render", "7.1.4", "-o", "out/{stem}.wav"),
    }
    with ThreadPoolExecutor(2) as pool:
        results = dict(zip(jobs, pool.map(lambda a: run("spatialize", *a, cwd=sounds), jobs.values())))
    for name, result in results.items():
        assert result.returncode == 0, (name, result.stderr.decode())
    ear, rate = sf.read(sounds / "ear.wav")
    assert rate == SR and ear.shape[1] == 2 and ild_db(ear, rate) > 6  # the left ear, close
    # so close to the ear the noise passes full scale: written clipped, with a warning
    warning = results["words"].stderr.decode()
    assert "ear.wav: " in warning and "clipped at full scale" in warning and "--gain" in warning, warning
    assert np.abs(ear).max() <= 1.0
    quieter, _ = sf.read(sounds / "ear-12.wav")
    assert "warning" not in results["quieter"].stderr.decode()
    # the suggested --gain brings the peak to -1 dBFS or just under (checked on the unclipped -12 dB render)
    suggested = float(warning.rsplit("--gain", 1)[1].split()[0])
    peak_db = 20 * np.log10(np.abs(quieter).max()) + 12 + suggested
    assert -2.0 <= peak_db <= -1.0 + 1e-3, (suggested, peak_db)
    unclipped = np.abs(ear).max(axis=1) < 0.99  # where the full-level render did not clip
    np.testing.assert_allclose(quieter[unclipped], ear[unclipped] * 10 ** (-12 / 20), atol=1e-4)
    jet, rate = sf.read(sounds / "jet.flac")
    assert rate == 44100 and jet.shape[1] == 6 and np.all(jet[:, 3] == 0)  # LFE silent
    half = len(jet) // 2  # from the right (R, Rs) to the left (L, Ls), overhead in between
    assert np.sum(jet[:half, [1, 5]] ** 2) > np.sum(jet[:half, [0, 4]] ** 2)
    assert np.sum(jet[half:, [0, 4]] ** 2) > np.sum(jet[half:, [1, 5]] ** 2)
    hoa, _ = sf.read(sounds / "bee.wav")
    assert hoa.shape[1] == 16 and len(hoa) > 1.5 * SR  # a hall's tail follows the sound
    for stem, rate in (("noise", SR), ("tone44", 44100)):
        info = sf.info(sounds / "out" / f"{stem}.wav")
        assert info.channels == 12 and info.samplerate == rate


def test_spatial_store_through_a_pipe(sounds):
    result = shell(f"{SOUNDTOK} spatialize -q noise.wav --at 'az=90 el=0 dist=1' | "
                   f"{SOUNDTOK} decode -q --render binaural -o piped.wav", sounds)
    assert result.returncode == 0, result.stderr.decode()
    piped, rate = sf.read(sounds / "piped.wav")
    assert rate == SR and piped.shape[1] == 2 and ild_db(piped, rate) > 6
    # a store made too loud clips when rendered: the warning says by how much to lower it
    loud = shell(f"{SOUNDTOK} spatialize -q noise.wav --at 'az=90 el=0 dist=1' --gain 20 | "
                 f"{SOUNDTOK} decode --render binaural -o loud.wav", sounds)
    assert loud.returncode == 0, loud.stderr.decode()
    warning = loud.stderr.decode()
    assert "loud.wav: " in warning and "clipped at full scale" in warning, warning
    reduction = float(warning.split("lower the level by ", 1)[1].split(" dB")[0])
    peak_db = 20 * np.log10(np.abs(piped).max()) + 20 - reduction   # the unclipped render, 20 dB up, lowered
    assert -2.0 <= peak_db <= -1.0 + 1e-3, (reduction, peak_db)
    store = run("spatialize", "-q", "noise.wav", "tone44.wav", "--path", "around over 1s", "-o", "two.zarr.zip", cwd=sounds)
    assert store.returncode == 0, store.stderr.decode()
    import zarr

    group = zarr.open_group(zarr.storage.ZipStore(sounds / "two.zarr.zip", mode="r"), mode="r")
    assert group.attrs["soundtok"]["kind"] == "spatial"
    positions = np.asarray(group["positions"])
    assert positions.dtype == np.float32 and positions.shape == (group["codes"].shape[0], 3)
    first = positions[: int(np.asarray(group["items/length"])[0])]
    assert first[0] == pytest.approx([0, 0, 1], abs=1e-4) and np.ptp(first[:, 0]) > 300  # goes round
    info = run("info", "two.zarr.zip", cwd=sounds)
    assert info.returncode == 0 and b"spatial" in info.stdout
    unrendered = run("decode", "two.zarr.zip", "-o", "dry/{stem}.wav", cwd=sounds)
    one_line_error(unrendered, 2, "two.zarr.zip", "spatial store", "--render")
    rendered = run("decode", "two.zarr.zip", "--render", "foa", "-o", "foa/{stem}.wav", cwd=sounds)
    assert rendered.returncode == 0, rendered.stderr.decode()
    assert sf.info(sounds / "foa" / "tone44.wav").channels == 4
    # a tokens store placed afterwards, and a spatial store re-placed
    replaced = shell(f"{SOUNDTOK} encode -q noise.wav | {SOUNDTOK} spatialize -q --at 'right' | "
                     f"{SOUNDTOK} decode -q --render stereo -o right.wav", sounds)
    assert replaced.returncode == 0, replaced.stderr.decode()
    right, _ = sf.read(sounds / "right.wav")
    assert np.sum(right[:, 1] ** 2) > 10 * np.sum(right[:, 0] ** 2)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_examples_scene_renders_binaural_and_5_1(tmp_path):
    for name in ("Makefile", "scene.toml"):
        shutil.copy(os.path.join(ROOT, "examples", name), tmp_path / name)
    result = subprocess.run(["make", "-C", str(tmp_path), f"SOUNDTOK={SOUNDTOK}", f"PYTHON={sys.executable}", "scene"],
                            env=ENV, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    binaural, five = sf.info(tmp_path / "scene-binaural.wav"), sf.info(tmp_path / "scene-5.1.wav")
    assert binaural.channels == 2 and five.channels == 6 and binaural.duration > 3
    again = subprocess.run(["make", "-q", "-C", str(tmp_path), f"SOUNDTOK={SOUNDTOK}", "scene"], env=ENV)
    assert again.returncode == 0  # up to date


def test_bad_input(sounds):
    cases = [
        (("noise.wav", "--at", "az=nan", "--render", "binaural", "-o", "x.wav"), 2, ["--at", "finite"]),
        (("noise.wav", "--at", "az=10 dist=-2", "--render", "binaural", "-o", "x.wav"), 2, ["distance must be positive"]),
        (("noise.wav", "--at", "beside the door", "--render", "binaural", "-o", "x.wav"), 2,
         ["unknown word 'beside'", "front/ahead, behind", "overhead", "near/close"]),
        (("noise.wav", "--trajectory", "bad.csv", "--render", "binaural", "-o", "x.wav"), 2, ["bad.csv: line 3", "not a number"]),
        (("noise.wav", "--at", "left", "--render", "binaural", "--hrtf", "notes.sofa", "-o", "x.wav"), 2,
         ["notes.sofa", "not a SOFA file"]),
        (("noise.wav", "--at", "left", "--render", "9.2", "-o", "x.wav"), 2, ["--render", "binaural, stereo"]),
        (("noise.wav", "--render", "binaural", "-o", "x.wav"), 2, ["give one of --at"]),
        (("missing.wav", "--at", "left", "--render", "binaural", "-o", "x.wav"), 2, ["missing.wav", "no such file"]),
        (("noise.wav", "--at", "left", "--render", "7.1.4", "-o", "x.flac"), 2, ["FLAC holds at most 8 channels"]),
    ]

    def attempt(case):
        args, code, needles = case
        return run("spatialize", *args, cwd=sounds), code, needles

    with ThreadPoolExecutor(2) as pool:
        for result, code, needles in pool.map(attempt, cases):
            one_line_error(result, code, *needles)
    assert not (sounds / "x.wav").exists()
    # one bad input among good ones: the rest is rendered, exit status 1
    some = run("spatialize", "noise.wav", "missing.wav", "--at", "left", "--render", "stereo", "-o", "some/{stem}.wav", cwd=sounds)
    err = some.stderr.decode()
    assert some.returncode == 1 and "missing.wav: no such file" in err and "Traceback" not in err
    assert (sounds / "some" / "noise.wav").exists()
    # a tokens store is not a spatial store
    tokens = shell(f"{SOUNDTOK} encode -q noise.wav -o plain.zarr.zip", sounds)
    assert tokens.returncode == 0
    one_line_error(run("decode", "plain.zarr.zip", "--render", "binaural", "-o", "x.wav", cwd=sounds), 2,
                   "plain.zarr.zip", "expected spatial")
