"""Snapping a sound-effect mask onto the mixture's spectral patterns (soundtok_cli.separate.snap)."""

from __future__ import annotations

import numpy as np

from soundtok_cli.separate.snap import BLEND, SHARPNESS, nmf, shares, snap, snap_each


def two_patterns(frames: int = 200, bins: int = 120, seed: int = 0):
    """A magnitude spectrogram of two sounds with their own spectra and rhythms, and the true
    share of the first in each bin."""
    rng = np.random.default_rng(seed)
    low = np.exp(-0.5 * ((np.arange(bins) - 25) / 6.0) ** 2)
    high = np.exp(-0.5 * ((np.arange(bins) - 80) / 10.0) ** 2) + 0.2 * np.exp(-0.5 * ((np.arange(bins) - 40) / 4.0) ** 2)
    t = np.arange(frames)
    first = np.outer(1.0 + 0.8 * np.sin(t / 7.0), low)                   # (frames, bins)
    second = np.outer((rng.random(frames) > 0.6) * rng.uniform(0.5, 2.0, frames), high)
    magnitude = first + second + 1e-3
    return magnitude.astype(np.float32), (first / magnitude).astype(np.float32)


def test_nmf_explains_the_spectrogram_and_is_deterministic():
    magnitude, _ = two_patterns()
    w, h = nmf(magnitude, patterns=4, iterations=200)
    assert w.shape == (magnitude.shape[1], 4) and h.shape == (4, magnitude.shape[0])
    assert (w >= 0).all() and (h >= 0).all()
    np.testing.assert_allclose(w.sum(0), 1.0, rtol=1e-4)
    error = np.sum((w @ h - magnitude.T) ** 2) / np.sum(magnitude ** 2)
    assert error < 1e-3, error
    w2, h2 = nmf(magnitude, patterns=4, iterations=200)
    np.testing.assert_array_equal(w, w2)
    np.testing.assert_array_equal(h, h2)


def test_one_sound_s_votes_are_pushed_away_from_a_half():
    votes = np.array([[0.0, 0.2, 0.4, 0.5, 0.6, 0.8, 1.0]])
    out = shares(votes, 2.0)[0]
    np.testing.assert_allclose(out[[0, 3, 6]], [0.0, 0.5, 1.0], atol=1e-9)
    assert (np.diff(out) > 0).all()
    assert out[1] < 0.2 and out[2] < 0.4 and out[4] > 0.6 and out[5] > 0.8
    np.testing.assert_allclose(shares(votes, 1.0)[0], votes[0], atol=1e-9)


def test_several_sounds_share_each_pattern_out():
    votes = np.array([[0.6, 0.3, 0.1, 0.0],
                      [0.3, 0.6, 0.1, 0.0]])
    out = shares(votes, 4.0)
    assert (out.sum(0) <= 1.0 + 1e-9).all()
    assert out[0, 0] > 0.9 and out[1, 1] > 0.9          # the surer vote takes the pattern
    assert out[:, 2].sum() < 0.01                        # what neither claims stays with neither
    np.testing.assert_allclose(out[:, 3], 0.0)


def test_a_scattered_mask_comes_closer_to_the_truth():
    """The network's errors scatter bin by bin; the patterns gather them: a mask that is the true
    one plus heavy noise is far nearer the truth once snapped."""
    magnitude, truth = two_patterns()
    rng = np.random.default_rng(1)
    noisy = np.clip(truth + rng.normal(0.0, 0.35, truth.shape), 0.0, 1.0).astype(np.float32)
    energy = magnitude ** 2

    def error(mask):
        return float(np.sum(energy * (mask - truth) ** 2) / np.sum(energy))

    snapped = snap(noisy[None], magnitude, patterns=4)[0]
    assert snapped.dtype == noisy.dtype and snapped.shape == noisy.shape
    assert snapped.min() >= 0.0 and snapped.max() <= 1.0
    assert error(snapped) < 0.3 * error(noisy), (error(snapped), error(noisy))


def test_one_description_keeps_part_of_the_network_s_own_mask():
    magnitude, truth = two_patterns()
    rng = np.random.default_rng(3)
    noisy = np.clip(truth + rng.normal(0.0, 0.35, truth.shape), 0.0, 1.0).astype(np.float32)
    out = snap_each(noisy[None], magnitude)[0]
    snapped = snap(noisy[None], magnitude, sharpness=SHARPNESS)[0]
    np.testing.assert_allclose(out, BLEND * noisy + (1 - BLEND) * snapped, atol=1e-6)
    energy = magnitude ** 2
    assert np.sum(energy * (out - truth) ** 2) < 0.5 * np.sum(energy * (noisy - truth) ** 2)
    # several descriptions each on its own: one factorisation, each voted on as if alone
    other = np.clip(1.0 - truth + rng.normal(0.0, 0.35, truth.shape), 0.0, 1.0).astype(np.float32)
    both = snap(np.stack([noisy, other]), magnitude, sharpness=SHARPNESS, shared=False)
    np.testing.assert_allclose(both[1], snap(other[None], magnitude, sharpness=SHARPNESS)[0], atol=1e-6)
    np.testing.assert_allclose(both[0], snapped, atol=1e-6)


def test_stems_share_the_mixture_out_between_them():
    """Two scattered masks, one for each sound, snapped together: each comes nearer its sound, and
    together they never hold more than the mixture."""
    magnitude, truth = two_patterns()
    rng = np.random.default_rng(2)
    noisy = np.clip(np.stack([truth, 1.0 - truth]) + rng.normal(0.0, 0.35, (2,) + truth.shape), 0.0, 1.0)
    snapped = snap(noisy.astype(np.float32), magnitude, patterns=4, sharpness=4.0)
    energy = magnitude ** 2
    for mask, target, guess in zip(snapped, (truth, 1.0 - truth), noisy):
        assert np.sum(energy * (mask - target) ** 2) < 0.3 * np.sum(energy * (guess - target) ** 2)
    assert snapped.sum(0).max() <= 1.0 + 1e-5


def test_a_mask_that_keeps_all_or_nothing_stays_so():
    magnitude, _ = two_patterns()
    ones, zeros = np.ones_like(magnitude), np.zeros_like(magnitude)
    np.testing.assert_allclose(snap(ones[None], magnitude), 1.0, atol=1e-5)
    np.testing.assert_allclose(snap(zeros[None], magnitude), 0.0, atol=1e-5)


def test_silence_and_a_single_frame_keep_their_mask():
    masks = np.full((2, 50, 30), 0.3, np.float32)
    assert snap(masks, np.zeros((50, 30), np.float32)) is masks
    one = np.full((1, 1, 30), 0.7, np.float32)
    assert snap(one, np.ones((1, 30), np.float32)) is one
