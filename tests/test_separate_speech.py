"""Keeping speech (soundtok_cli.separate.speech): the noise floor it tracks, the gain it applies,
which queries take that path, and the separator with it: better than the network alone on a
steady noise, no seams between chunks, no free pass for the noise at the ends of a file."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from soundtok_cli.data import synth
from soundtok_cli.separate.model import HOP, N_FFT
from soundtok_cli.separate.speech import (GAIN_FLOOR, WEIGHTS, noise_power, postfilter, residual_noise_power,
                                          speech_mask, wiener_gain)
from soundtok_cli.separate.stream import run_all

from audio_checks import si_sdr
from test_separate import SR, speak

TEXT = "Keep the voice and lose the noise of the room around it. Every word should stay clear."


@pytest.fixture(scope="module")
def separator():
    from soundtok_cli.models.registry import load_separator
    from soundtok_cli.threads import configure_torch_threads

    configure_torch_threads(workers=2)
    return load_separator(device="cpu")


@pytest.fixture(scope="module")
def voice(tmp_path_factory):
    return speak(tmp_path_factory.mktemp("voice"), TEXT)


def power_of(x: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
    spec = torch.stft(torch.from_numpy(x.astype(np.float32)), N_FFT, HOP, window=torch.hann_window(N_FFT),
                      center=True, return_complex=True)
    return spec, spec.abs().T.numpy().astype(np.float64) ** 2


def masked(spec: torch.Tensor, mask: np.ndarray, n: int) -> np.ndarray:
    m = torch.from_numpy(mask.T.astype(np.float32))
    return torch.istft(spec * m, N_FFT, HOP, window=torch.hann_window(N_FFT), center=True, length=n).numpy()


def pink_at(x: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    noise = synth.pink(np.random.default_rng(seed), len(x))
    return noise * np.sqrt(np.mean(x ** 2) / np.mean(noise ** 2)) * 10 ** (-snr_db / 20)


def test_noise_floor_of_white_noise_is_its_mean_power():
    _, power = power_of(0.01 * np.random.default_rng(1).standard_normal(10 * SR))
    estimate = noise_power(power)[100:-100]
    error_db = 10 * np.log10(np.median(estimate) / np.mean(power[100:-100]))
    assert abs(error_db) < 2.0, error_db


def test_the_gain_keeps_a_voice_and_lowers_steady_noise(voice):
    mixture = voice + pink_at(voice, 0.0, 2)
    spec, power = power_of(mixture)
    gain = wiener_gain(power, noise_power(power))
    assert gain.min() >= GAIN_FLOOR - 1e-12 and gain.max() <= 1.0
    cleaned = masked(spec, gain, len(mixture))
    assert si_sdr(voice, cleaned) - si_sdr(voice, mixture) > 2.0   # measured: +2.8 dB


def test_which_queries_ask_for_speech(separator):
    asked = separator.ground(["speech", "a man talking", "a woman speaking French", "dialogue",
                              "people talking", "crowd chatter", "rain", "dog barking",
                              "music", "piano music"])   # "music" is nearer "vocals" than LOOSE
    assert [q.speech for q in asked] == [True] * 4 + [False] * 6


def test_speech_in_steady_noise_is_kept_better_than_by_the_network_alone(separator, voice):
    """On a voice the network knows well (espeak-ng is in its training data) the network alone is
    already good; the average with the noise suppressor must not lose to it on steady noise."""
    mixture = voice + pink_at(voice, 0.0, 3)
    (query,) = separator.ground(["speech"])
    with_suppressor = run_all(separator.stage([query], SR, "keep"), mixture)
    network_alone = run_all(separator.stage([query], SR, "keep", refine=False), mixture)
    before = si_sdr(voice, mixture)
    assert si_sdr(voice, with_suppressor) - before > 3.0
    assert si_sdr(voice, with_suppressor) > si_sdr(voice, network_alone) - 0.5


def test_noise_at_the_start_of_a_file_is_lowered_too(separator, voice):
    """The separator pads a file with zeros; taken for a noise floor they would let the first
    second of noise through."""
    lead = SR
    clean = np.concatenate([np.zeros(lead), voice])
    mixture = clean + pink_at(clean, 0.0, 4)
    kept = run_all(separator.stage(separator.ground(["speech"]), SR, "keep"), mixture)
    attenuation_db = 10 * np.log10(np.sum(kept[: lead // 2] ** 2) / np.sum(mixture[: lead // 2] ** 2))
    assert attenuation_db < -10.0, attenuation_db


def test_speech_mask_is_half_the_network_and_half_the_gain():
    rng = np.random.default_rng(5)
    power = rng.exponential(1.0, (300, 8))
    network = rng.uniform(0, 1, power.shape)
    mask = speech_mask(network, np.sqrt(power))
    # half the network's mask plus half a gain in [floor, 1]
    inside = mask - 0.5 * network
    assert inside.min() >= 0.5 * GAIN_FLOOR - 1e-6 and inside.max() <= 0.5 + 1e-6


def test_with_the_subband_network_a_second_pass_works_against_the_first_ones_residual():
    from soundtok_cli.separate.subband import BIN_HZ, RUN_TOP_HZ, SubbandConfig, SubbandMask, subband_masks

    torch.manual_seed(0)
    subband = SubbandMask(SubbandConfig(hidden=8)).eval()
    rng = np.random.default_rng(6)
    magnitude = np.sqrt(rng.exponential(1.0, (300, 200)))
    power = magnitude ** 2
    network = rng.uniform(0, 1, magnitude.shape)
    mask = speech_mask(network, magnitude, subband=subband)
    first = (network + wiener_gain(power, noise_power(power))) / 2
    sub, gain = subband_masks(subband, magnitude, noise=residual_noise_power(power, first))
    w_network, w_gain, w_sub = WEIGHTS
    top = int(RUN_TOP_HZ / BIN_HZ) + 1
    # above the sub-band mask's bins its share goes to the network
    expected = w_network * network + w_gain * gain + w_sub * np.where(np.arange(200) < top, sub, network)
    np.testing.assert_allclose(mask, postfilter(expected, power), rtol=1e-6)
    # the second pass differs from the same masks against the minimum-statistics floor
    sub_ms, gain_ms = subband_masks(subband, magnitude)
    assert np.abs(gain - gain_ms).max() > 0.05 and np.abs(sub - sub_ms).max() > 0.01


def test_the_residual_noise_floor_finds_the_level_of_a_fluctuating_noise_that_minimum_statistics_misses():
    """A background whose level jumps every 100 ms over 20 dB (traffic, music, a street), which a
    first mask removes whole: its residual is the noise's mean power, while the minimum over the
    last 1.6 s lies near the quietest moments, far below what the noise is most of the time."""
    frames, segment = 3000, 9  # 9 frames: about 100 ms
    levels_db = np.random.default_rng(7).uniform(-20, 0, frames // segment + 1)
    level = np.repeat(10 ** (levels_db / 10), segment)[:frames]
    power = level[:, None] * np.random.default_rng(8).exponential(1.0, (frames, 16))
    inner = slice(300, -300)
    mean_power = level.mean()
    error_db = {name: abs(10 * np.log10(np.median(floor[inner]) / mean_power))
                for name, floor in (("residual", residual_noise_power(power, np.zeros_like(power))),
                                    ("minimum statistics", noise_power(power)))}
    assert error_db["residual"] < 1.5 and error_db["minimum statistics"] > 5, error_db


def test_the_postfilter_pulls_a_lone_bin_toward_its_neighbours_in_time():
    """Musical noise: one frame of one bin let through where the frames around it are cut (and one
    cut out of a kept run) moves toward what its neighbours say; a long run keeps its level."""
    power = np.ones((200, 4))
    mask = np.full(power.shape, 0.05)
    mask[100, 0] = 0.95                    # a lone bin let through
    mask[:, 1] = 0.95
    mask[100, 1] = 0.05                    # a lone hole in a kept bin
    out = postfilter(mask, power)
    assert 0 <= out.min() and out.max() <= 1
    assert out[100, 0] < 0.7 and out[100, 1] > 0.3
    assert abs(out[50, 1] - 0.95) < 0.05 and abs(out[50, 2] - 0.05) < 0.05


def test_speech_chunks_join_as_well_as_the_network_alone(separator, voice):
    """In chunks as whole: the suppressor's windows fit inside the chunks' context, so it adds no
    difference of its own. (The network's recurrent layers see only the chunks' 1 s of context,
    which leaves a difference spread evenly over the file, in float32 as in int8: -22 dB on this
    voice in steady noise, -27 dB with the suppressor, whose gain does not depend on the network.)"""
    x = np.tile(voice, 3)[: 20 * SR]
    x = x + pink_at(x, 5.0, 6)
    (query,) = separator.ground(["speech"])
    errors = []
    for refine in (True, False):
        stage = separator.stage([query], SR, "keep", refine=refine)
        whole = run_all(stage, x, chunk=len(x) + stage.after)         # one chunk: the file at once
        pieces = run_all(stage, x, chunk=stage.chunk, block=12345)    # 12 s chunks fed in odd blocks
        errors.append(10 * np.log10(np.sum((pieces - whole) ** 2) / np.sum(whole ** 2)))
    assert errors[0] < -20 and errors[0] <= errors[1] + 0.5, errors
