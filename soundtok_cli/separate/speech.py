"""Keeping speech: the voice network's mask combined with a classical noise-suppression gain and
the sub-band speech mask (separate/subband.py).

Why: the network (trained on CPU for 4,400 steps on few real voices) keeps the voices it was
trained on well but partly removes voices it has never heard, while a statistical noise
suppressor knows no voices at all: it keeps whatever rises above a tracked noise floor, and the
sub-band network knows only what speech does within a band over time. Speech in noise, SI-SDR
improvement, on 84 mixtures of training-split real voices over other backgrounds (a tuning set,
not the benchmark) / the benchmark's held-out voices (`python -m bench.separation --part speech`):
the network alone +3.66 / +1.88 dB, the suppressor alone +2.80 / +4.17, the sub-band mask alone
+4.34 / +4.11; the network and the suppressor averaged (version 2) +4.38 / +4.19, all three
+4.86 / +4.61 (+4.82 / +4.57 with the sub-band mask run to 4 kHz, as it runs; +4.85 /
+4.65 since it trained on close-microphone voices too; `python -m soundtok_cli.train.subband
score`). Since 2026-12-05 a voice query takes the voice network (the network fine-tuned with
close-microphone voices; the model card): alone +3.70 / +2.84, all three +4.87 / +4.98; the
sub-band mask weighs half, the other two a quarter each: +4.94 / +5.01 (the weights chosen on
the tuning sets, training voices as they are and shifted 4-6 semitones, among equal network and
suppressor weights; the model card has the grid); and above 4 kHz, where the sub-band mask does
not run (separate/subband.py), its half goes to the network, not to the suppressor: +5.18 /
+5.24 (shifted voices +4.63 -> +4.88). Up there a voice is mostly fricatives and breath, which a
noise floor tracker cannot tell from hiss; the suppressor's three quarters had been a side effect
of the sub-band mask stopping at 4 kHz, not a choice (every bin to 6 kHz: +5.01 / +5.08). The
combination is above each part alone on both sets, so it is what `--keep speech` uses; a query
for anything else gets the general network's mask alone (a noise suppressor would remove the rain
asked for). A separator file without the sub-band mask (version 2) gets the network and the
suppressor, half and half.

The suppressor is textbook, with the usual parameters (none fitted to the benchmark): the noise
power per bin by minimum statistics (Martin 2001: the power smoothed over about 70 ms, its
minimum over a 1.6 s window, times a bias of 2), and a Wiener gain from the decision-directed
a-priori SNR (Ephraim and Malah 1984, smoothing 0.98), floored at -20 dB. Not hiss.NoiseFloor:
that is one floor for a whole file, right for tape hiss, while a voice's background changes
within a file, so this floor follows it over 1.6 s. The window is centred and shorter than the
separator's context (1 s each side), so chunks give the suppressor what a whole-file pass would.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, signal

FRAME_SECONDS = 512 / 48000  # the separator's hop: the constants below are in these frames
SMOOTHING_SECONDS = 0.07
MINIMUM_WINDOW_SECONDS = 1.6
NOISE_BIAS = 2.0
DECISION_DIRECTED = 0.98
GAIN_FLOOR = 0.1  # -20 dB
NETWORK_WEIGHT = 0.5  # without the sub-band mask (version 2 files)
# with it: the network's mask, the suppressor's gain, the sub-band mask (the module docstring)
WEIGHTS = (0.25, 0.25, 0.5)


def noise_power(power: np.ndarray, frame_seconds: float = FRAME_SECONDS) -> np.ndarray:
    """Minimum-statistics noise power of a (frames, bins) power spectrogram, same shape."""
    alpha = np.exp(-frame_seconds / SMOOTHING_SECONDS)
    smoothed = signal.lfilter([1 - alpha], [1, -alpha], power, axis=0, zi=alpha * power[:1])[0]
    window = max(1, round(MINIMUM_WINDOW_SECONDS / frame_seconds))
    return NOISE_BIAS * ndimage.minimum_filter1d(smoothed, size=window, axis=0, mode="nearest")


def wiener_gain(power: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """Decision-directed Wiener gain per frame and bin, in [GAIN_FLOOR, 1]. A loop over frames:
    each frame's a-priori SNR depends on the previous frame's gain."""
    inverse_noise = 1.0 / np.maximum(noise, 1e-20)
    measured = (1 - DECISION_DIRECTED) * np.maximum(power * inverse_noise - 1, 0)
    gain = np.empty_like(power)
    previous = np.zeros(power.shape[1])
    for t in range(len(power)):
        prior = DECISION_DIRECTED * previous * inverse_noise[t] + measured[t]
        g = prior / (1 + prior)
        gain[t] = g
        previous = g * g * power[t]
    return np.maximum(gain, GAIN_FLOOR)


def suppressor_gain(magnitude: np.ndarray, frame_seconds: float = FRAME_SECONDS) -> np.ndarray:
    """The noise suppressor's gain for (frames, bins) magnitudes of a mixture."""
    power = np.asarray(magnitude, np.float64) ** 2
    return wiener_gain(power, noise_power(power, frame_seconds))


def speech_mask(network_mask: np.ndarray, magnitude: np.ndarray, frame_seconds: float = FRAME_SECONDS,
                subband=None) -> np.ndarray:
    """The mask for keeping speech from the mixture's (frames, bins) magnitudes (frames of the
    signal only: zeros around it would pass for a noise floor of nothing): the network's mask
    averaged with the noise suppressor's gain, or, given the sub-band network (separate/subband.py),
    the three weighted by WEIGHTS."""
    if subband is None:
        return NETWORK_WEIGHT * network_mask + (1 - NETWORK_WEIGHT) * suppressor_gain(magnitude, frame_seconds)
    from soundtok_cli.separate.subband import subband_masks

    # above the bins the sub-band mask runs on, its share goes to the network's mask, not to the
    # suppressor's gain (the module docstring)
    sub, gain = subband_masks(subband, magnitude, frame_seconds, above=network_mask)
    w_network, w_gain, w_sub = WEIGHTS
    return w_network * network_mask + w_gain * gain + w_sub * sub
