"""Shared by the tests that judge audio: how close an estimate is to a reference, and a speech-like signal."""

from __future__ import annotations

import numpy as np


def si_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Scale-invariant SDR of `estimate` against `reference`, dB."""
    scale = np.dot(estimate, reference) / np.dot(reference, reference)
    target = scale * reference
    return float(10 * np.log10(np.sum(target**2) / np.sum((estimate - target) ** 2)))


def voice(n: int, rate: int, seed: int) -> np.ndarray:
    """A speech-like test signal: a gliding harmonic voice in syllables, with pauses."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / rate
    f0 = 110 + 30 * np.sin(2 * np.pi * 0.7 * t + seed)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    tone = sum(np.sin(k * phase) / k for k in range(1, 25) if k * 140 < rate / 2)
    syllables = np.clip(np.sin(2 * np.pi * 2.5 * t + rng.uniform(0, 6)), 0, None) ** 2
    return 0.2 * tone * syllables
