"""Stationary hiss: estimate the noise floor from the quietest moments, then apply a smoothed
spectral gain (short-time Fourier transform, Hann windows of about 43 ms, 75 % overlap).

Noise floor: per channel and frequency bin, the power spectrum averaged over 8 frames (85 ms) is
counted into a histogram in 0.25 dB steps over the whole signal; its 5th percentile, divided by
the measured bias of that percentile for noise alone (see `QUANTILE_BIAS`), is the floor. This is
minimum statistics taken over the whole file, which suits stationary hiss: speech and music leave
pauses and quiet partials, so the lowest twentieth of the time at each frequency is the noise.
Or, given a noise print (a stretch of the noise alone: room tone before a take, or a file of it),
the floor is the mean power of its frames (`NoisePrint`): exact where the file never pauses.

Gain: the power in each bin, smoothed over 5 frames and 3 bins, gives G = 1 - a N / P (a, the
over-subtraction, grows with `strength`), floored at -6 - 12 * strength dB so that what is left of
the noise is a quieter, unchanged hiss rather than musical noise. The smoothing has finite
support on a frame grid fixed at sample 0, so chunked processing equals whole processing.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

QUANTILE = 0.05
AVERAGE_FRAMES = 8
# The 5th percentile of 8-frame averages of pure white or pink noise's power, as a fraction of
# its mean (measured: tests/test_separate.py checks the floor of white noise within 1 dB).
QUANTILE_BIAS = 0.38
HIST_LO_DB, HIST_HI_DB, HIST_STEP_DB = -240.0, 20.0, 0.25
SMOOTH_FRAMES, SMOOTH_BINS = 5, 3


def frame_size(sample_rate: int) -> int:
    return 1 << int(np.ceil(np.log2(0.04 * sample_rate)))


def _window(n: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)  # periodic Hann: sum of squares at hop n/4 is 1.5 n / n


class PowerFrames:
    """Power spectra of a signal fed in blocks: Hann frames of `frame_size`, a quarter frame apart,
    frame j centred on sample j x hop (zeros before the signal's start)."""

    def __init__(self, sample_rate: int, channels: int):
        self.nfft = frame_size(sample_rate)
        self.hop = self.nfft // 4
        self.window = _window(self.nfft)
        self.bins = self.nfft // 2 + 1
        self.made = 0  # frames returned so far: the index of the next one
        self._buffer = np.zeros((self.nfft // 2, channels))

    def push(self, block: np.ndarray) -> np.ndarray:
        """The (frames, bins, channels) powers of the frames this block completes, in order."""
        self._buffer = np.concatenate([self._buffer, np.asarray(block, dtype=np.float64).reshape(len(block), -1)])
        count = max(0, (len(self._buffer) - self.nfft) // self.hop + 1)
        idx = np.arange(count)[:, None] * self.hop + np.arange(self.nfft)[None, :]
        frames = self._buffer[idx] * self.window[None, :, None]  # (frames, nfft, channels)
        self._buffer = self._buffer[count * self.hop :]
        self.made += count
        return np.abs(np.fft.rfft(frames, axis=1)) ** 2


class NoiseFloor:
    """Feed blocks of the signal; `result()` is the noise power per channel and bin (or None for
    digital silence)."""

    def __init__(self, sample_rate: int, channels: int):
        self._frames = PowerFrames(sample_rate, channels)
        self.bins = self._frames.bins
        self.channels = channels
        self.levels = int((HIST_HI_DB - HIST_LO_DB) / HIST_STEP_DB)
        self.histogram = np.zeros((channels, self.bins, self.levels), dtype=np.int64)
        self._recent = np.zeros((0, self.bins, channels))
        self.frames = 0

    def update(self, block: np.ndarray) -> None:
        power = self._frames.push(block)
        if not len(power):
            return
        recent = np.concatenate([self._recent, power])  # the last frames of the previous call first
        if len(recent) >= AVERAGE_FRAMES:
            sums = np.cumsum(recent, axis=0)
            averages = (sums[AVERAGE_FRAMES - 1 :] - np.concatenate([np.zeros_like(sums[:1]), sums[:-AVERAGE_FRAMES]])) / AVERAGE_FRAMES
            self._count(averages)
        self._recent = recent[-(AVERAGE_FRAMES - 1) :]

    def _count(self, power: np.ndarray) -> None:
        """Histogram (frames, bins, channels) powers in dB per channel and bin."""
        db = 10 * np.log10(np.maximum(power, 1e-30))
        level = np.clip(((db - HIST_LO_DB) / HIST_STEP_DB).astype(np.int64), 0, self.levels - 1)
        flat = (np.arange(self.channels)[None, None, :] * self.bins + np.arange(self.bins)[None, :, None]) * self.levels + level
        self.histogram += np.bincount(flat.ravel(), minlength=self.histogram.size).reshape(self.histogram.shape)
        self.frames += len(power)

    def result(self) -> np.ndarray | None:
        if self.frames == 0 and len(self._recent):  # shorter than the averaging: use what there is
            self._count(self._recent.mean(axis=0, keepdims=True))
        if self.frames == 0:
            return None
        cumulative = np.cumsum(self.histogram, axis=2)
        level = np.argmax(cumulative >= QUANTILE * self.frames, axis=2)  # (channels, bins)
        db = HIST_LO_DB + (level + 0.5) * HIST_STEP_DB
        db = ndimage.median_filter(db, size=(1, 5), mode="nearest")
        if db.max() <= HIST_LO_DB + 1:
            return None  # digital silence
        return (10 ** (db / 10) / QUANTILE_BIAS).T  # (bins, channels)


class NoisePrint:
    """The noise power per bin and channel as the mean of the frames lying wholly inside samples
    [start, end) of the signal fed in blocks: a noise print, the noise alone. `result()` is
    (bins, channels), or None when no frame fits or the print is digital silence."""

    def __init__(self, sample_rate: int, channels: int, start: int = 0, end: float = np.inf):
        self._frames = PowerFrames(sample_rate, channels)
        self.start, self.end = start, end
        self.total = np.zeros((self._frames.bins, channels))
        self.frames = 0

    def update(self, block: np.ndarray) -> None:
        first = self._frames.made
        power = self._frames.push(block)
        begins = (first + np.arange(len(power))) * self._frames.hop - self._frames.nfft // 2
        inside = (begins >= self.start) & (begins + self._frames.nfft <= self.end)
        self.total += power[inside].sum(axis=0)
        self.frames += int(inside.sum())

    @property
    def complete(self) -> bool:
        """No frame still to come can lie inside the print."""
        return self._frames.made * self._frames.hop - self._frames.nfft // 2 + self._frames.nfft > self.end

    def result(self) -> np.ndarray | None:
        if self.frames == 0 or not self.total.any():
            return None
        return self.total / self.frames


def level_dbfs(noise: np.ndarray, sample_rate: int) -> float:
    """A (bins, channels) noise power as a broadband level in dB relative to a full-scale sine (for reports)."""
    window = _window(frame_size(sample_rate))
    # the one-sided bins hold half of Parseval's sum N x sum((x w)^2): twice that over N sum(w^2) is
    # the mean power; a full-scale sine's is 1/2 (tests/test_separate.py checks a sine and white noise)
    power = noise.mean(axis=1).sum() * 2 / (window ** 2).sum() / len(window)
    return float(10 * np.log10(max(power, 1e-30)) + 3.01)


class HissFilter:
    """Spectral gain against the noise power `noise` (bins, channels); a `stream.Processor`."""

    def __init__(self, noise: np.ndarray, sample_rate: int, strength: float = 1.0):
        self.nfft = frame_size(sample_rate)
        self.hop = self.nfft // 4
        self.window = _window(self.nfft)
        self.noise = np.asarray(noise, dtype=np.float64)
        self.oversubtract = 1.0 + 0.5 * strength
        self.floor = 10 ** (-(6.0 + 12.0 * strength) / 20) if strength > 0 else 1.0
        self.context = SMOOTH_FRAMES // 2
        self.before = self.after = self.nfft + (self.context + 1) * self.hop

    def process(self, x: np.ndarray, offset: int, end: int | None) -> np.ndarray:
        N, hop, T = self.nfft, self.hop, self.context
        n = len(x) - self.before - self.after
        a, b = offset + self.before, offset + self.before + n
        j_lo = -((-(a - N // 2 + 1)) // hop)  # ceil
        j_hi = (b - 1 + N // 2) // hop
        js = np.arange(j_lo - T, j_hi + T + 1)
        idx = (js * hop - N // 2 - offset)[:, None] + np.arange(N)[None, :]
        spectra = np.fft.rfft(x[idx] * self.window[None, :, None], axis=1)  # (frames, bins, channels)
        power = ndimage.uniform_filter(np.abs(spectra) ** 2, size=(SMOOTH_FRAMES, SMOOTH_BINS, 1), mode="nearest")
        gain = np.clip(1.0 - self.oversubtract * self.noise[None] / np.maximum(power, 1e-30), 0.0, 1.0)
        gain = self.floor + (1.0 - self.floor) * gain
        frames = np.fft.irfft(spectra[T : len(js) - T] * gain[T : len(js) - T], N, axis=1) * self.window[None, :, None]
        y = np.zeros((n + 2 * N, x.shape[1]))
        base = j_lo * hop - N // 2 - a + N  # where frame j_lo starts in y (shifted by N)
        for i in range(len(frames)):
            s = base + i * hop
            y[s : s + N] += frames[i]
        return y[N : N + n] / 1.5
