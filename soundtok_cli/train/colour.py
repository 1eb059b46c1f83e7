"""A random recording-chain colour, so a model does not know a sound by the few microphones,
speakers and masterings of its training data (the separator's voices come from a few packages;
its model card, version 2, measures what this changed). Tried on the embedder's crops too and not
kept there (its model card)."""

from __future__ import annotations

import numpy as np


def random_colour(x: np.ndarray, rng: np.random.Generator, sample_rate: int = 48000) -> np.ndarray:
    """x through a random colour: a low shelf (-9..+9 dB below 150-500 Hz), a high shelf
    (-12..+6 dB above 2.5-8 kHz) and, one time in three, a band limit (4 to 16 kHz)."""
    f = np.fft.rfftfreq(len(x), 1 / sample_rate)
    low = (f / rng.uniform(150, 500)) ** 2
    high = (f / rng.uniform(2500, 8000)) ** 2
    gain = 10 ** ((rng.uniform(-9, 9) / (1 + low) + rng.uniform(-12, 6) * high / (1 + high)) / 20)
    if rng.random() < 1 / 3:
        gain /= 1 + (f / rng.choice([4000.0, 8000.0, 11025.0, 16000.0])) ** 8
    return _filtered(x, gain)


def proximity_boost(x: np.ndarray, rng: np.random.Generator, sample_rate: int = 48000) -> np.ndarray:
    """x as a directional microphone close to a talker hears it: a low shelf of +6..+18 dB below
    100-250 Hz (the proximity effect), so that a voice's fundamental and lowest harmonics carry
    the energy they do in close-miked dialogue. The training split's recorded voices are mostly
    telephone-band prompts and game lines with almost nothing below 150 Hz (the separator's card)."""
    f = np.fft.rfftfreq(len(x), 1 / sample_rate)
    gain = 10 ** (rng.uniform(6, 18) / (1 + (f / rng.uniform(100, 250)) ** 2) / 20)
    return _filtered(x, gain)


def _filtered(x: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """x through a zero-phase filter of the given gain per rfft bin."""
    return np.fft.irfft(np.fft.rfft(x) * gain, len(x)).astype(np.float32)
