"""Procedural synthesis: determinism, ranges, lengths, spectra, captions, demo library."""

import numpy as np
import pytest
import soundfile as sf

from soundtok_cli.data import synth

SR = 48000


@pytest.mark.parametrize("name", sorted(synth.GENERATORS))
def test_generator_deterministic_and_in_range(name):
    gen = synth.GENERATORS[name]
    x1, c1 = gen(np.random.default_rng(7), SR, 1.5)
    x2, c2 = gen(np.random.default_rng(7), SR, 1.5)
    assert x1.dtype == np.float32 and x1.ndim == 1
    assert len(x1) == round(1.5 * SR)
    assert np.array_equal(x1, x2) and c1 == c2
    assert np.all(np.isfinite(x1))
    assert np.max(np.abs(x1)) <= 1.0
    assert np.sqrt(np.mean(x1.astype(np.float64) ** 2)) > 1e-4
    assert isinstance(c1, str) and c1 and "\t" not in c1 and "\n" not in c1


@pytest.mark.parametrize("name,params", [(n, {}) for n in synth.NOISE_BASED]
                         + [("noise_bed", {"color": "white"}), ("noise_bed", {"color": "pink"})])
def test_noise_based_generators_are_full_band(name, params):
    x, _ = synth.GENERATORS[name](np.random.default_rng(3), SR, 2.0, **params)
    power = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
    f = np.fft.rfftfreq(len(x), 1 / SR)
    assert power[f > 12000].sum() / power.sum() > 1e-3
    assert power[f > 18000].sum() > 0


def test_other_sample_rates_and_durations():
    for sr, dur in ((16000, 0.5), (44100, 1.0), (48000, 0.01)):
        x, _ = synth.rain(np.random.default_rng(0), sr, dur)
        assert len(x) == round(sr * dur)


def test_plucked_string_pitch():
    x, cap = synth.plucked_string(np.random.default_rng(0), SR, 1.0, note=57)  # A3 = 220 Hz
    assert "A3" in cap
    seg = x[: SR // 4].astype(np.float64)
    ac = np.correlate(seg, seg, mode="full")[len(seg) - 1:]
    lo, hi = SR // 1000, SR // 100          # periods of 100 Hz .. 1 kHz
    lag = lo + int(np.argmax(ac[lo:hi]))
    assert abs(SR / lag - 220.0) < 3


def test_thunder_captions_follow_parameters():
    _, near = synth.thunder(np.random.default_rng(0), SR, 1.0, distance="near")
    _, far = synth.thunder(np.random.default_rng(0), SR, 1.0, distance="distant")
    assert "close" in near and "distant" in far


def test_random_sound_deterministic_varied_and_bounded():
    caps = set()
    levels = []
    for seed in range(24):
        x, cap = synth.random_sound(np.random.default_rng(seed), SR, 1.0)
        y, cap2 = synth.random_sound(np.random.default_rng(seed), SR, 1.0)
        assert np.array_equal(x, y) and cap == cap2
        assert len(x) == SR and np.all(np.isfinite(x)) and np.max(np.abs(x)) <= 1.0
        caps.add(cap)
        levels.append(20 * np.log10(np.max(np.abs(x)) + 1e-12))
    assert len(caps) > 15
    assert max(levels) - min(levels) > 15  # a wide range of levels


def test_quiet_caption_grammar():
    assert synth._quiet("an error beep") == "a quiet error beep"
    assert synth._quiet("a whoosh") == "a quiet whoosh"
    assert synth._quiet("crackling fire") == "quiet crackling fire"


def test_reverb_keeps_length():
    x, _ = synth.ui_beeps(np.random.default_rng(0), SR, 0.5)
    y = synth.reverb(np.random.default_rng(1), x.astype(np.float64), SR, 1.0)
    assert len(y) == len(x) and np.all(np.isfinite(y))


def test_demo_library(tmp_path):
    paths = synth.demo_library(tmp_path)
    assert 6 <= len(paths) <= 10
    infos = [sf.info(str(p)) for p in paths]
    assert all(2.0 <= i.duration <= 4.0 for i in infos)
    assert any(i.channels == 2 for i in infos)
    assert any(i.samplerate == 44100 for i in infos)
    assert any(p.suffix == ".flac" for p in paths)
    assert (tmp_path / "captions.tsv").read_text().count("\n") == len(paths) + 1
    # deterministic
    again = synth.demo_library(tmp_path / "again")
    for a, b in zip(paths, again):
        assert np.array_equal(sf.read(str(a))[0], sf.read(str(b))[0])


def test_outdoor_sounds_are_not_put_in_rooms():
    outdoor = ("rain", "wind", "thunder", "ocean", "bird", "siren")
    for seed in range(200):
        _, cap = synth.random_sound(np.random.default_rng(seed), 8000, 0.3)
        if any(w in cap for w in outdoor):
            assert "small room" not in cap and "large hall" not in cap, cap


def test_a_sound_laid_over_a_bed_is_told_from_one_sound():
    captions = [synth.random_sound(np.random.default_rng(seed), 8000, 0.3)[1] for seed in range(120)]
    layered = [c for c in captions if synth.laid_over_bed(c)]
    assert 10 < len(layered) < 60, len(layered)  # random_sound lays a bed under a quarter of its sounds
    assert all(" with " in c for c in layered)
    assert not synth.laid_over_bed("a distant explosion with debris falling")  # one event
    assert synth.laid_over_bed("an explosion with debris falling with light rain in the background")
    assert not synth.laid_over_bed("footsteps on gravel")
