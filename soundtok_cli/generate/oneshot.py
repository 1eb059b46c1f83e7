"""One-shot sounds: a generated take cut to start at its event and to end without a click.

Why: the token model makes a sound that goes on; asked for "a heavy door slams" it often starts
with a stretch of room tone or silence and puts the slam somewhere in the first second, which a
sampler or an editor then has to trim by hand (4 takes of it at 3 s: lead-ins of 0 to 0.2 s and
a slam anywhere). With --one-shot the generation runs SEARCH_SECONDS longer than asked; the
take starts just before the loudest moment (20 ms) of its first SEARCH_SECONDS + ATTACK_SECONDS,
walked back to where it rose out of what came before, runs for the duration asked and fades out
over its last FADE_SECONDS; a PRE_ROLL_SECONDS fade-in before the onset keeps the attack whole
and the cut silent.
"""

from __future__ import annotations

import numpy as np

SEARCH_SECONDS = 1.0    # generated beyond the duration asked; the event is looked for in it
ATTACK_SECONDS = 0.25   # ... and this much further, so an event starting late in it keeps its peak
RISE_DB = 30.0          # the onset: where the envelope was last this far below the peak
WALK_BACK_SECONDS = 0.3  # looked back from the peak at most this far
PRE_ROLL_SECONDS = 0.005
FADE_SECONDS = 0.05
HOP_SECONDS = 0.0025    # envelope resolution
PEAK_HOPS = 8           # the loudest moment is the loudest 20 ms
MAX_SECONDS = 60.0      # a one-shot is decoded and cut in memory
DEFAULT_SECONDS = 3.0


def envelope_db(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Level in dB (re full scale) per HOP_SECONDS, RMS over two hops, of (n,) or (n, channels)."""
    mono = np.mean(np.asarray(samples, np.float64).reshape(len(samples), -1) ** 2, axis=1)
    hop = max(1, int(round(HOP_SECONDS * sample_rate)))
    frames = -(-len(mono) // hop)
    power = np.pad(mono, (0, frames * hop - len(mono))).reshape(frames, hop).mean(axis=1)
    smoothed = np.convolve(power, [0.5, 0.5])[:frames]
    return 10 * np.log10(smoothed + 1e-12)


def onset(samples: np.ndarray, sample_rate: int, search_seconds: float = SEARCH_SECONDS) -> int:
    """The sample where the loudest event of the first search_seconds (+ ATTACK_SECONDS) starts:
    from its peak, back to the last point RISE_DB below it (at most WALK_BACK_SECONDS back)."""
    level = envelope_db(samples, sample_rate)
    hop = max(1, int(round(HOP_SECONDS * sample_rate)))
    span = 10 ** (level[: max(1, int((search_seconds + ATTACK_SECONDS) / HOP_SECONDS))] / 10)
    # the loudest 20 ms (not the loudest click), then its loudest hop
    body = int(np.argmax(np.convolve(span, np.ones(PEAK_HOPS) / PEAK_HOPS, "same")))
    lo, hi = max(0, body - PEAK_HOPS // 2), min(len(span), body + PEAK_HOPS // 2 + 1)
    peak = lo + int(np.argmax(span[lo:hi]))
    earliest = max(0, peak - int(WALK_BACK_SECONDS / HOP_SECONDS))
    quiet = np.flatnonzero(level[earliest:peak] <= level[peak] - RISE_DB)
    # no point that quiet within reach: the quietest one before the peak
    start = earliest + (int(quiet[-1]) + 1 if len(quiet) else int(np.argmin(level[earliest : peak + 1])))
    return min(start * hop, len(samples))


def one_shot(samples: np.ndarray, sample_rate: int, seconds: float) -> np.ndarray:
    """`seconds` of samples ((n,) or (n, channels)) from just before the onset, faded in over the
    pre-roll and out over the last FADE_SECONDS (zeros after the end of the material, if any)."""
    samples = np.asarray(samples, np.float32)
    length = int(round(seconds * sample_rate))
    pre_roll = int(round(PRE_ROLL_SECONDS * sample_rate))
    start = max(0, onset(samples, sample_rate) - pre_roll)
    cut = samples[start : start + length]
    out = np.zeros((length,) + samples.shape[1:], np.float32)
    out[: len(cut)] = cut
    gain = np.ones(length, np.float32)
    fade_in = min(pre_roll, length)
    gain[:fade_in] = 0.5 - 0.5 * np.cos(np.pi * np.arange(fade_in) / max(fade_in, 1))
    fade_out = min(int(round(FADE_SECONDS * sample_rate)), length)
    gain[length - fade_out :] *= 0.5 + 0.5 * np.cos(np.pi * (np.arange(fade_out) + 1) / fade_out)
    return out * gain.reshape((-1,) + (1,) * (out.ndim - 1))
