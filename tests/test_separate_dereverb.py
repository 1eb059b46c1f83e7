"""`--remove reverb`: the dereverberation mask (soundtok_cli.separate.dereverb), its bands, the
shipped network on a voice in a room and on a dry one, chunking, rates and channels, and its
trainer's rooms and export."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audio_checks import si_sdr, voice
from soundtok_cli.separate.dereverb import (Bands, DereverbConfig, DereverbStage, band_edges, features, network,
                                            reverb_mask, shipped_network)
from soundtok_cli.separate.model import N_FFT
from soundtok_cli.separate.stream import run_all

RATE = 48000


def room(rt60: float = 0.8, direct_to_reverberant_db: float = 0.0, rate: int = RATE, seed: int = 3):
    """(a room's response: the direct sound, then exponentially decaying noise from 10 ms on; its
    first 50 ms, what a listener hears as the source)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(1.2 * rt60 * rate)) / rate
    ir = rng.standard_normal(len(t)) * np.exp(-6.91 * t / rt60) * (t > 0.01)
    ir *= np.sqrt(10 ** (-direct_to_reverberant_db / 10) / np.sum(ir ** 2))
    ir[0] = 1.0
    return ir, ir[: int(0.05 * rate)]


def convolve(x: np.ndarray, ir: np.ndarray) -> np.ndarray:
    return np.convolve(x, ir)[: len(x)]


def test_bands_are_single_bins_below_4_khz_then_sixth_octaves():
    edges = band_edges()
    assert edges[0] == 0 and edges[-1] == N_FFT // 2 + 1 and np.all(np.diff(edges) >= 1)
    single = np.diff(edges) == 1
    assert single[: 4000 * N_FFT // RATE].all()
    wide = np.diff(edges)[~single]
    assert len(wide) and (wide[1:] / wide[:-1]).max() < 1.3  # growing a sixth of an octave at a time
    bands = Bands(edges)
    power = np.full((7, N_FFT // 2 + 1), 3.0)
    np.testing.assert_allclose(bands.pool(power), 3.0)
    mask = np.random.default_rng(0).uniform(size=(7, bands.count))
    spread = bands.spread(mask, N_FFT // 2 + 1)
    np.testing.assert_allclose(spread[:, :80], mask[:, :80])  # a single-bin band is its own bin
    assert spread.min() >= mask.min() - 1e-12 and spread.max() <= mask.max() + 1e-12


def test_features_read_levels_and_the_bands_place():
    config = DereverbConfig()
    bands = Bands.for_bins()
    power = 1e-4 * (0.5 + np.random.default_rng(1).exponential(1.0, (50, bands.count)))
    feats = features(power, config)
    assert feats.shape == (bands.count, 50, config.features) and feats.dtype == np.float32
    np.testing.assert_allclose(feats[:, :, config.neighbours], (10 * np.log10(power + 1e-12) / 20).T, atol=1e-5)
    louder = features(100 * power, config)  # absolute levels: 20 dB louder reads 1 higher
    np.testing.assert_allclose(louder[..., :-1] - feats[..., :-1], 1.0, atol=1e-4)
    assert feats[0, 0, -1] == -1 and feats[-1, 0, -1] == 1


def test_a_voice_in_a_room_comes_out_drier():
    x = voice(4 * RATE, RATE, 0)
    ir, early = room(0.8, 0.0)
    y, reference = convolve(x, ir), convolve(x, early)
    out = run_all(DereverbStage(shipped_network(), RATE), y)
    gain = si_sdr(reference, out) - si_sdr(reference, y)
    assert gain > 1.0, gain  # measured +1.40 dB (the shipped weights)


def test_dry_sound_is_left_alone():
    x = voice(3 * RATE, RATE, 2)
    out = run_all(DereverbStage(shipped_network(), RATE), x)
    assert si_sdr(x, out) > 15.0  # measured 18.3 dB


def test_chunks_give_what_the_whole_file_gives():
    x = voice(6 * RATE, RATE, 4)
    y = convolve(x, room(1.0, -3.0)[0])
    stage = DereverbStage(shipped_network(), RATE)
    whole = run_all(stage, y, chunk=len(y))
    chunked = run_all(stage, y, chunk=2 * RATE, block=12345)
    error_db = 10 * np.log10(np.sum((whole - chunked) ** 2) / np.sum(whole ** 2))
    assert error_db < -25, error_db  # measured -29.9 dB


@pytest.mark.parametrize("rate", [16000, 44100, 96000])
def test_any_rate_and_channel_count(rate):
    x = voice(3 * rate, rate, 5)
    ir = room(0.6, 0.0, rate)[0]
    stereo = np.stack([convolve(x, ir), 0.5 * convolve(x, ir)], axis=1)
    out = run_all(DereverbStage(shipped_network(), rate), stereo)
    assert out.shape == stereo.shape and np.isfinite(out).all()
    np.testing.assert_allclose(out[:, 1], 0.5 * out[:, 0], atol=1e-6)  # one mask for every channel: the image stays
    assert np.sum(out ** 2) < np.sum(stereo ** 2)


def test_silence_stays_silent_and_the_stage_reports_what_it_took():
    stage = DereverbStage(shipped_network(), RATE)
    assert np.all(run_all(stage, np.zeros(RATE)) == 0) and stage.removed_db() == 0.0
    y = convolve(voice(2 * RATE, RATE, 1), room(1.0, -6.0)[0])
    run_all(stage, y)
    assert stage.removed_db() < -1.0


def test_mask_is_in_range_and_the_bins_past_24_khz_take_the_top_band():
    magnitude = np.abs(np.random.default_rng(2).standard_normal((30, 700))) * 0.01
    mask = reverb_mask(shipped_network(), magnitude)
    assert mask.shape == magnitude.shape and mask.min() >= 0 and mask.max() <= 1
    np.testing.assert_array_equal(mask[:, 600], mask[:, N_FFT // 2])


def test_trainer_rooms_and_examples():
    from soundtok_cli.train.dereverb import EARLY_SECONDS, room_response

    rng = np.random.default_rng(0)
    for _ in range(5):
        ir, early = room_response(rng)
        cut = int(EARLY_SECONDS * RATE)
        np.testing.assert_allclose(early[:cut], ir[:cut])  # the early part is the response's start
        assert abs(early[-1]) < 1e-3 * np.abs(early).max() + 1e-9  # faded out
        quarter = len(ir) // 4
        assert np.sum(ir[-quarter:] ** 2) < 1e-3 * np.sum(ir[cut:quarter] ** 2)  # it decays


def test_export_writes_a_weights_file_the_registry_loads(tmp_path):
    from soundtok_cli.models.registry import load_dereverber
    from soundtok_cli.train.dereverb import export

    net = network(DereverbConfig(hidden=8))
    checkpoint = tmp_path / "last.pt"
    torch.save({"model": net.state_dict(), "step": 3, "config": net.config.to_json()}, checkpoint)
    export(str(checkpoint), str(tmp_path / "d.safetensors"))
    loaded = load_dereverber(path=str(tmp_path / "d.safetensors"))
    feats = torch.randn(4, 20, net.config.features)
    with torch.no_grad():
        torch.testing.assert_close(loaded(feats), net(feats))
