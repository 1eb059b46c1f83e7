"""Restoration library (soundtok_cli.separate): hum, clicks and hiss on synthesised speech with
known damage, measured against the clean signal; chunked processing against whole processing."""

from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from soundtok_cli.errors import UsageError
from soundtok_cli.io.audio import resample
from soundtok_cli.separate import parse_removals
from soundtok_cli.separate.clicks import ClickRepair
from soundtok_cli.separate.hiss import HissFilter, NoiseFloor, NoisePrint, _window, frame_size, level_dbfs
from soundtok_cli.separate.hum import HumFilter, LongTermSpectrum, detect_hum
from soundtok_cli.separate.stream import run_all

from audio_checks import si_sdr

SR = 48000
TEXT = ("The quick brown fox jumps over the lazy dog. Sound designers work with libraries of "
        "thousands of files. Restoration removes hum, clicks and hiss from old recordings.")


def speak(tmp_path, text: str = TEXT, rate: int = SR) -> np.ndarray:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    path = tmp_path / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(path), text], check=True, capture_output=True)
    x, native = sf.read(path, dtype="float32")
    x = resample(x, native, rate).astype(np.float64)
    return 0.5 * x / np.abs(x).max()


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    return speak(tmp_path_factory.mktemp("speech"))


def hum_of(f0: float, n: int, rms: float, rng, rate: int = SR, harmonics: int = 10) -> np.ndarray:
    t = np.arange(n) / rate
    hum = sum(0.7**k * np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi)) for k in range(1, harmonics + 1))
    return hum * rms / np.sqrt(np.mean(hum**2))


def find_hum(x: np.ndarray, rate: int = SR):
    spectrum = LongTermSpectrum(rate, 1 if x.ndim == 1 else x.shape[1])
    spectrum.update(x.reshape(len(x), -1))
    return detect_hum(spectrum.result(), rate)


@pytest.mark.parametrize("f0", [50.0, 60.0, 49.3, 60.8])
def test_hum_is_found_and_removed(speech, f0):
    rng = np.random.default_rng(int(f0 * 10))
    rms = np.sqrt(np.mean(speech**2))
    noisy = speech + hum_of(f0, len(speech), rms, rng)  # hum as loud as the speech (0 dB)
    info = find_hum(noisy)
    assert info is not None and abs(info.frequency - f0) < 0.05, info
    assert info.harmonics[:3] == [1, 2, 3]
    out = run_all(HumFilter(info, SR), noisy)
    before, after = si_sdr(speech, noisy), si_sdr(speech, out)
    assert after - before >= 15.0, (before, after)  # measured: +20 dB
    # the rest of the signal (speech through the same filter) is not damaged
    assert si_sdr(speech, run_all(HumFilter(info, SR), speech)) >= 17.0  # measured: 20 to 22 dB


def test_hum_at_the_very_ends_is_removed(speech):
    rng = np.random.default_rng(5)
    noisy = speech + hum_of(50.0, len(speech), 0.05, rng)
    info = find_hum(noisy)
    # the filter is linear (its extrapolation at the ends too): what is left of the hum is
    # its output minus its output for the speech alone
    left = run_all(HumFilter(info, SR), noisy) - run_all(HumFilter(info, SR), speech)
    quarter = SR // 4
    for part in (slice(0, quarter), slice(len(speech) // 2, len(speech) // 2 + quarter), slice(-quarter, None)):
        residual = left[part]
        hum = noisy[part] - speech[part]
        assert np.sqrt(np.mean(residual**2)) < 0.1 * np.sqrt(np.mean(hum**2))


def test_no_hum_is_reported_as_none(speech):
    assert find_hum(speech) is None
    rng = np.random.default_rng(1)
    assert find_hum(0.1 * rng.standard_normal(3 * SR)) is None  # white noise
    t = np.arange(3 * SR) / SR
    assert find_hum(0.3 * np.sin(2 * np.pi * 440 * t)) is None  # a tone is not hum
    assert find_hum(np.zeros(SR)) is None


def test_hum_in_a_short_file_at_44k(tmp_path):
    rate = 44100
    x = speak(tmp_path, "Hello there.", rate)
    noisy = x + hum_of(60.0, len(x), 0.05, np.random.default_rng(2), rate)
    info = find_hum(noisy, rate)
    assert info is not None and abs(info.frequency - 60.0) < 0.1
    assert si_sdr(x, run_all(HumFilter(info, rate), noisy)) - si_sdr(x, noisy) >= 10.0


def add_clicks(x: np.ndarray, count: int, rng) -> tuple[np.ndarray, np.ndarray]:
    y = x.copy()
    positions = np.sort(rng.choice(np.arange(2000, len(x) - 2000, 500), count, replace=False))
    for p in positions:
        width = int(rng.integers(1, 20))
        y[p : p + width] += rng.uniform(0.2, 0.6) * rng.choice([-1, 1]) * np.hanning(width + 2)[1:-1]
    return y, positions


def test_clicks_are_found_and_repaired(speech):
    rng = np.random.default_rng(0)
    damaged, positions = add_clicks(speech, 40, rng)
    repair = ClickRepair(SR)
    out = run_all(repair, damaged)
    found = np.mean([not np.allclose(out[p : p + 3], damaged[p : p + 3]) for p in positions])
    assert found >= 0.9, found
    around = [slice(p - 5, p + 25) for p in positions]
    error_in = sum(np.sum((damaged[s] - speech[s]) ** 2) for s in around)
    error_out = sum(np.sum((out[s] - speech[s]) ** 2) for s in around)
    assert error_in / error_out >= 10.0, error_in / error_out  # measured: 28x
    assert repair.repaired >= 0.9 * len(positions)


def test_clicks_leave_clean_speech_nearly_alone(speech):
    out = run_all(ClickRepair(SR), speech)
    assert si_sdr(speech, out) >= 20.0


def test_clicks_in_silence_and_silence_itself():
    x = np.zeros(SR)
    assert np.array_equal(run_all(ClickRepair(SR), x), x)
    x[20000:20004] = [0.5, -0.3, 0.2, 0.1]
    out = run_all(ClickRepair(SR), x)
    assert np.abs(out[20000:20004]).max() < 0.05


def test_noise_floor_of_white_noise_is_right():
    rng = np.random.default_rng(3)
    noise = 0.01 * rng.standard_normal(10 * SR)
    floor = NoiseFloor(SR, 1)
    floor.update(noise[:, None])
    expected = 1e-4 * (_window(frame_size(SR)) ** 2).sum()
    assert abs(10 * np.log10(np.median(floor.result()) / expected)) < 1.0


@pytest.mark.parametrize("strength", [0.5, 1.0])
def test_hiss_at_10_db_snr_improves(speech, strength):
    rng = np.random.default_rng(4)
    noise = rng.standard_normal(len(speech))
    noise *= np.sqrt(np.mean(speech**2) / np.mean(noise**2)) / np.sqrt(10)
    noisy = speech + noise
    floor = NoiseFloor(SR, 1)
    floor.update(noisy[:, None])
    out = run_all(HissFilter(floor.result(), SR, strength), noisy)
    assert si_sdr(speech, out) - si_sdr(speech, noisy) >= 3.0  # measured: +7 (0.5) and +8.8 dB (1.0)


def continuous_chord(n: int) -> np.ndarray:
    """Sound that never pauses: a swelling chord of slowly beating partials (as music under hiss)."""
    t = np.arange(n) / SR
    chord = sum(np.sin(2 * np.pi * f * t + k) / (1 + k) for k, f in enumerate((220, 277.2, 329.6, 440, 554.4, 659.3, 880)))
    return 0.1 * chord * (1 + 0.5 * np.sin(2 * np.pi * 0.3 * t))


def test_a_noise_print_measures_the_noise_alone():
    rng = np.random.default_rng(8)
    noise = 0.01 * rng.standard_normal(4 * SR)
    x = noise + np.concatenate([np.zeros(SR), continuous_chord(3 * SR)])  # the first second is the noise alone
    meter = NoisePrint(SR, 1, 0, SR)
    for start in range(0, len(x), 7777):  # odd blocks: the frames are the same
        meter.update(x[start : start + 7777, None])
        if start > 1.2 * SR:
            assert meter.complete
    expected = 1e-4 * (_window(frame_size(SR)) ** 2).sum()
    assert abs(10 * np.log10(np.median(meter.result()) / expected)) < 0.5
    assert abs(level_dbfs(meter.result(), SR) - (20 * np.log10(0.01) + 3.01)) < 0.5  # a sine's full scale
    sine = NoisePrint(SR, 1)
    sine.update(0.5 * np.sin(2 * np.pi * 1000 * np.arange(SR) / SR)[:, None])
    assert abs(level_dbfs(sine.result(), SR) + 6.02) < 0.1  # half of full scale: -6 dBFS, as reports say
    whole = NoisePrint(SR, 1)  # the whole signal: the chord's partials stand out
    whole.update(x[:, None])
    assert whole.result()[round(440 / SR * frame_size(SR))] > 100 * meter.result()[round(440 / SR * frame_size(SR))]
    late = NoisePrint(SR, 1, 5 * SR, 6 * SR)  # past the end: nothing
    late.update(x[:, None])
    assert late.result() is None and not late.complete


def test_a_noise_print_keeps_sound_that_never_pauses():
    """Under a chord that never pauses, the quietest moments are not the noise: the floor from them
    is too high and takes the chord's quiet partials; a print of the noise alone does not."""
    rng = np.random.default_rng(9)
    clean = continuous_chord(8 * SR)
    noise = rng.standard_normal(10 * SR) * np.sqrt(np.mean(clean ** 2)) * 10 ** (-20 / 20)  # 20 dB SNR
    noisy = clean + noise[: len(clean)]
    floor, meter = NoiseFloor(SR, 1), NoisePrint(SR, 1)
    floor.update(noisy[:, None])
    meter.update(noise[len(clean) :, None])  # 2 s of the noise recorded on its own
    auto = si_sdr(clean, run_all(HissFilter(floor.result(), SR), noisy)) - si_sdr(clean, noisy)
    printed = si_sdr(clean, run_all(HissFilter(meter.result(), SR), noisy)) - si_sdr(clean, noisy)
    assert printed > auto + 2.0 and printed > 5.0, (auto, printed)


def test_hiss_strength_zero_is_identity(speech):
    floor = NoiseFloor(SR, 1)
    floor.update(speech[:, None] + 0.001)
    out = run_all(HissFilter(floor.result(), SR, 0.0), speech)
    assert np.max(np.abs(out - speech)) < 1e-9


def test_silence_has_no_noise_floor():
    floor = NoiseFloor(SR, 2)
    floor.update(np.zeros((SR, 2)))
    assert floor.result() is None


def test_chunked_equals_whole(speech):
    """Every processor, in small odd chunks and blocks, gives the samples it gives in one piece."""
    rng = np.random.default_rng(6)
    x = np.stack([speech, speech[::-1]], axis=1)[: 4 * SR]
    x = x + hum_of(50.0, len(x), 0.05, rng)[:, None] + 0.01 * rng.standard_normal(x.shape)
    x[30000:30003] += 0.5
    floor = NoiseFloor(SR, 2)
    floor.update(x)
    info = find_hum(x)
    for make in (lambda: HumFilter(info, SR), lambda: ClickRepair(SR), lambda: HissFilter(floor.result(), SR)):
        whole = run_all(make(), x, chunk=1 << 24, block=1 << 24)
        for chunk, block in ((3001, 777), (20000, 1 << 16)):
            pieces = run_all(make(), x, chunk=chunk, block=block)
            assert pieces.shape == x.shape
            np.testing.assert_allclose(pieces, whole, atol=1e-6, rtol=0)


def test_parse_removals():
    assert parse_removals(["hiss", "clicks,hum"]) == (["hum", "clicks", "hiss"], [])
    assert parse_removals(["Crackle", "mains hum"]) == (["hum", "clicks"], [])
    assert parse_removals(["hum, Crowd  Chatter", "traffic", "crowd chatter"]) == (["hum"], ["crowd chatter", "traffic"])
    for bad in ([""], [" , "]):
        with pytest.raises(UsageError) as error:
            parse_removals(bad)
        assert "hum, clicks, hiss or a description" in str(error.value)
