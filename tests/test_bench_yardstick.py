"""bench/yardstick.py computes the same figures as the shared yardstick the project is judged by.

The shared tools live outside the repository (../shared/tools); on a user's machine they are
absent and these checks are skipped.
"""

import importlib.util
import os
import shutil
import sys

import numpy as np
import pytest
import soundfile as sf

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:  # bench/ is part of the repository, not of the installed package
    sys.path.insert(0, REPO_ROOT)

from bench import yardstick  # noqa: E402
SHARED_TOOLS = os.path.join(REPO_ROOT, "..", "shared", "tools")
SR = 48000

pytestmark = pytest.mark.skipif(not os.path.isfile(os.path.join(SHARED_TOOLS, "metrics.py")),
                                reason="shared yardstick (../shared/tools) not present")


def _load(name, filename):
    spec = importlib.util.spec_from_file_location(name, os.path.join(SHARED_TOOLS, filename))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def shared():
    return _load("shared_metrics_for_bench", "metrics.py")


@pytest.fixture(scope="module")
def shared_yardstick():
    saved_path, saved_metrics = list(sys.path), sys.modules.get("metrics")
    try:
        yield _load("shared_yardstick_for_bench", "yardstick.py")
    finally:
        sys.path[:] = saved_path
        if saved_metrics is None:
            sys.modules.pop("metrics", None)
        else:
            sys.modules["metrics"] = saved_metrics


def _signals():
    """(name, reference, estimate) pairs of 48 kHz float64 signals, short to keep the test fast."""
    rng = np.random.default_rng(7)
    n = SR // 2
    t = np.arange(n) / SR
    noise = rng.standard_normal(n) * 0.3
    sines = 0.4 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 3150.5 * t + 0.3) + 0.05 * np.sin(2 * np.pi * 15000 * t)
    clipped = np.clip(sines * 2.5, -0.6, 0.6)
    # a crude low-pass (moving average) plus a little noise
    kernel = np.ones(9) / 9
    filtered = np.convolve(noise, kernel, mode="same") + 0.01 * rng.standard_normal(n)
    delay = 1234  # samples, under the 0.1 s the alignment searches
    delayed = np.concatenate([np.zeros(delay), 0.7 * sines])[: n + 300]
    decay = np.exp(-t * 6) * rng.standard_normal(n) * 0.5
    return [
        ("noise/noisy", noise, noise + 0.05 * rng.standard_normal(n)),
        ("sines/clipped", sines, clipped),
        ("noise/filtered", noise, filtered),
        ("sines/delayed", sines, delayed),
        ("decay/scaled-shorter", decay, -0.5 * decay[: n - 777]),
        ("short/short", noise[:300], sines[:300]),
        ("silence/noise", np.zeros(4096), noise[:4096] * 1e-3),
    ]


def _close(ours, theirs):
    assert np.isfinite(ours) == np.isfinite(theirs)
    assert ours == pytest.approx(theirs, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("sr,n_fft,n_mels", [(48000, 512, 40), (48000, 1024, 80), (48000, 2048, 160), (44100, 1024, 64)])
def test_filterbank_matches(shared, sr, n_fft, n_mels):
    np.testing.assert_allclose(yardstick.mel_filterbank(sr, n_fft, n_mels), shared._mel_fb(sr, n_fft, n_mels), rtol=1e-12, atol=0)


def test_stft_matches(shared):
    x = np.random.default_rng(1).standard_normal(5000)
    for n_fft in (512, 2048, 8192):
        np.testing.assert_allclose(yardstick.stft_magnitude(x, n_fft, n_fft // 4), shared._stft_mag(x, n_fft, n_fft // 4), rtol=1e-12, atol=0)


@pytest.mark.parametrize("case", range(len(_signals())))
def test_metrics_match(shared, case):
    name, ref, est = _signals()[case]
    max_lag = SR // 10
    assert yardstick.align(ref, est, max_lag).shape == shared.align(ref, est, max_lag).shape
    np.testing.assert_array_equal(yardstick.align(ref, est, max_lag), shared.align(ref, est, max_lag))
    aligned = shared.align(ref, est, max_lag)
    k = min(len(ref), len(aligned))
    _close(yardstick.mel_distance(ref[:k], aligned[:k], SR), shared.mel_distance(ref[:k], aligned[:k], SR))
    _close(yardstick.si_sdr(ref[:k], aligned[:k]), shared.si_sdr(ref[:k], aligned[:k]))
    # unaligned, unequal lengths too
    _close(yardstick.mel_distance(ref, est, SR), shared.mel_distance(ref, est, SR))
    _close(yardstick.si_sdr(ref, est), shared.si_sdr(ref, est))


def test_delay_is_found():
    _, ref, est = _signals()[3]
    assert yardstick.best_lag(ref, est, SR // 10) == 1234
    assert yardstick.score_pair(ref, est)["sisdr"] > 60


def _write_clips(folder, with_stereo=True):
    os.makedirs(folder, exist_ok=True)
    for i, (_, ref, _) in enumerate(_signals()[:4]):
        sf.write(os.path.join(folder, f"clip-{i:03d}.wav"), ref * 0.9, SR, subtype="PCM_16")
    if with_stereo:  # another rate and two channels: read as 48 kHz mono
        rng = np.random.default_rng(3)
        sf.write(os.path.join(folder, "clip-100.wav"), rng.standard_normal((22050, 2)) * 0.2, 44100, subtype="FLOAT")


def test_directory_scores_match(shared_yardstick, tmp_path):
    refs, decs = str(tmp_path / "ref"), str(tmp_path / "dec")
    _write_clips(refs)
    os.makedirs(decs)
    rng = np.random.default_rng(5)
    for name in sorted(os.listdir(refs)):
        x, sr = sf.read(os.path.join(refs, name), always_2d=True)
        y = np.concatenate([np.zeros((321, x.shape[1])), x * 0.8 + 0.01 * rng.standard_normal(x.shape)])
        sf.write(os.path.join(decs, name), y, sr, subtype="FLOAT")
    ref_paths = sorted(os.path.join(refs, p) for p in os.listdir(refs))
    theirs = shared_yardstick.score(refs, lambda p: os.path.join(decs, os.path.basename(p)))
    ours = yardstick.score_files(ref_paths, lambda p: os.path.join(decs, os.path.basename(p)))
    assert ours["n"] == theirs["n"] == len(ref_paths)
    _close(ours["mel"], theirs["mel"])
    _close(ours["sisdr"], theirs["sisdr"])


@pytest.mark.skipif(shutil.which("opusenc") is None or shutil.which("opusdec") is None, reason="opus-tools not installed")
def test_opus_matches(shared_yardstick, tmp_path, monkeypatch):
    refs = str(tmp_path / "ref")
    _write_clips(refs, with_stereo=False)
    theirs_dir = tmp_path / "theirs"
    theirs_dir.mkdir()
    monkeypatch.setattr(shared_yardstick.tempfile, "mkdtemp", lambda: str(theirs_dir))
    theirs = shared_yardstick.opus(refs, 12.0)
    ours_dir = tmp_path / "ours"
    ours_dir.mkdir()
    ref_paths = sorted(os.path.join(refs, p) for p in os.listdir(refs))
    ours = yardstick.score_files(ref_paths, lambda p: yardstick.opus_roundtrip(p, 12, str(ours_dir)))
    assert ours["n"] == theirs["n"] == len(ref_paths)
    _close(ours["mel"], theirs["mel"])
    _close(ours["sisdr"], theirs["sisdr"])
