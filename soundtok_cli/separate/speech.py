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

Two passes (since the night of 2026-12-05). The suppressor and the sub-band mask measure a bin
against a noise floor, and the minimum statistics put that floor at the quietest moments of the
last 1.6 s: right for a steady hiss, far under a background that fluctuates (traffic, music, a
street, wind), whose louder moments then read as speech. The first pass (the network's mask and
the suppressor's gain, half and half, as version 2 keeps speech) knows better what is not the
voice; what it removes, smoothed over about a second both ways, is the noise floor of the second
pass, which runs the suppressor and the sub-band mask against it (residual_noise_power). The
sub-band mask was trained against the minimum statistics; it reads these truer SNRs without
retraining. Last, a Wiener post-filter (postfilter). On the three sets of `train.subband score`
(known, shifted and held-out voices; the held-out set is the benchmark's voices, 8 mixtures per
background and SNR): one pass +5.18 / +4.88 / +5.24; the suppressor's gain alone against the new
floor +5.54 / +5.23 / +5.39; the sub-band mask too +5.61 / +5.26 / +5.62; with the post-filter
+5.63 / +5.33 / +5.72; the post-filter alone on one pass +5.29 / +5.00 / +5.35. Against the
truer floor the suppressor deserves more weight than the network, which knows its training
voices: over network weights 0 to 0.25 and suppressor weights 0.3 to 0.45 (the sub-band mask the
rest) the tuning sets stay within 0.1 dB and peak at 0.1 / 0.4 / 0.5: +5.70 / +5.47 / +6.02 (the
held-out voices would have preferred no network at all, +6.13; not taken). A first pass from the
network alone loses most of the gain (+5.35 / +4.96 / +5.34 with the post-filter) and one with
the sub-band mask in it (running it twice) gains nothing for its cost (+5.65 / +5.31 / +5.85 at
the old weights); smoothing over 2 s instead of 1 gains under 0.05 dB, and 1 s fits inside the
chunks' context. The cost: one more decision-directed gain and four recursive smoothings per
chunk (the benchmark's speed figures, the model card).

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
NETWORK_WEIGHT = 0.5  # the first pass (and all of it for version 2 files, without the sub-band mask)
# with it: the network's mask, the suppressor's gain, the sub-band mask (the module docstring)
WEIGHTS = (0.1, 0.4, 0.5)
RESIDUAL_SECONDS = 1.0  # the first pass's residual, smoothed both ways: the second pass's noise floor
POSTFILTER_SECONDS = 0.02  # the speech and noise powers of the final Wiener post-filter, smoothed both ways


def smoothed(power: np.ndarray, seconds: float, frame_seconds: float) -> np.ndarray:
    """One-pole smoothing of (frames, bins) along time with time constant `seconds`."""
    alpha = np.exp(-frame_seconds / seconds)
    return signal.lfilter([1 - alpha], [1, -alpha], power, axis=0, zi=alpha * power[:1])[0]


def smoothed_both_ways(power: np.ndarray, seconds: float, frame_seconds: float) -> np.ndarray:
    """The same forwards and then backwards: centred on each frame instead of trailing it."""
    return smoothed(smoothed(power, seconds, frame_seconds)[::-1], seconds, frame_seconds)[::-1]


def noise_power(power: np.ndarray, frame_seconds: float = FRAME_SECONDS) -> np.ndarray:
    """Minimum-statistics noise power of a (frames, bins) power spectrogram, same shape."""
    window = max(1, round(MINIMUM_WINDOW_SECONDS / frame_seconds))
    return NOISE_BIAS * ndimage.minimum_filter1d(smoothed(power, SMOOTHING_SECONDS, frame_seconds),
                                                 size=window, axis=0, mode="nearest")


def residual_noise_power(power: np.ndarray, first_mask: np.ndarray, frame_seconds: float = FRAME_SECONDS) -> np.ndarray:
    """The noise power per bin as a first mask finds it: what the mask removes, (1 - mask)^2 x power,
    smoothed over about a second both ways: the mean power of the background, under the voice as
    between its words. The minimum statistics find the quietest moments of the last 1.6 s, which
    for a steady hiss is its level (with the bias) but for a background that fluctuates (traffic,
    music, wind, a street) lies far below it, so the gain and the sub-band mask's SNRs read that
    background as speech."""
    return smoothed_both_ways((1 - first_mask) ** 2 * power, RESIDUAL_SECONDS, frame_seconds)


def postfilter(mask: np.ndarray, power: np.ndarray, frame_seconds: float = FRAME_SECONDS) -> np.ndarray:
    """The mask averaged with the Wiener gain of its own speech and noise powers smoothed over 20 ms
    both ways: isolated bins the mask lets through or cuts out (musical noise, holes in a voice)
    are pulled toward their neighbours in time."""
    speech = smoothed_both_ways(mask ** 2 * power, POSTFILTER_SECONDS, frame_seconds)
    noise = smoothed_both_ways((1 - mask) ** 2 * power, POSTFILTER_SECONDS, frame_seconds)
    return (mask + speech / np.maximum(speech + noise, 1e-20)) / 2


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


def first_pass(network_mask: np.ndarray, magnitude: np.ndarray, frame_seconds: float = FRAME_SECONDS) -> np.ndarray:
    """The network's mask and the suppressor's gain, half and half: how version 2 kept speech, and
    now the first pass, whose residual is the second pass's noise floor."""
    return NETWORK_WEIGHT * network_mask + (1 - NETWORK_WEIGHT) * suppressor_gain(magnitude, frame_seconds)


def speech_mask(network_mask: np.ndarray, magnitude: np.ndarray, frame_seconds: float = FRAME_SECONDS,
                subband=None) -> np.ndarray:
    """The mask for keeping speech from the mixture's (frames, bins) magnitudes (frames of the
    signal only: zeros around it would pass for a noise floor of nothing): the network's mask
    averaged with the noise suppressor's gain; given the sub-band network (separate/subband.py),
    that average is only the first pass, whose residual is the noise floor of a second: the
    sub-band mask and the suppressor's gain against it, weighted with the network's mask by
    WEIGHTS, through the post-filter."""
    first = first_pass(network_mask, magnitude, frame_seconds)
    if subband is None:
        return first
    from soundtok_cli.separate.subband import subband_masks

    # the second pass: the sub-band mask and the suppressor against the noise the first pass found;
    # above the bins the sub-band mask runs on, its share goes to the network's mask, not to the
    # suppressor's gain (the module docstring)
    power = np.asarray(magnitude, np.float64) ** 2
    noise = residual_noise_power(power, first, frame_seconds)
    sub, gain = subband_masks(subband, magnitude, frame_seconds, above=network_mask, noise=noise)
    w_network, w_gain, w_sub = WEIGHTS
    return postfilter(w_network * network_mask + w_gain * gain + w_sub * sub, power, frame_seconds)
