"""Mains hum: find the fundamental (50 or 60 Hz, +-1 Hz) in a long-term spectrum, remove it and
its harmonics.

Detection: the power spectrum averaged over the whole signal (frames of about 2.7 s, 0.37 Hz
bins) is compared, in dB, with its own running median over +-10 Hz; a candidate fundamental
scores the sum of the positive peak heights at its first 20 harmonics, searched every 0.005 Hz
from 49 to 51 and 59 to 61 Hz. Hum is reported when the fundamental stands out by 10 dB or at
least three harmonics by 6 dB; speech and music, averaged over time, do not line up on a mains
comb like that.

Removal: each harmonic present (3 dB or more above its surroundings) is estimated by complex
demodulation at its exact frequency with a 1 s Hann window and subtracted. All of that is one
symmetric FIR filter (zero phase, so no delay to compensate) applied by FFT convolution: a notch
with unit depth at each harmonic and about 1 Hz wide at -6 dB, which leaves the rest of the
spectrum alone. At the ends of the signal the hum is extrapolated (a least-squares fit of the
harmonics to the first and last second) so that the filter sees hum continue, not silence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage, signal

MAINS = (50.0, 60.0)
DRIFT_HZ = 1.0
MAX_HARMONICS = 20
FUNDAMENTAL_DB = 10.0  # the fundamental alone this far above its surroundings is hum
HARMONIC_DB = 6.0  # ... or this many harmonics this far above theirs
MIN_HARMONICS = 3
PRESENT_DB = 3.0  # harmonics removed
WINDOW_SECONDS = 1.0


@dataclass
class HumInfo:
    frequency: float  # fundamental, Hz
    harmonics: list[int]  # harmonic numbers found and removed (1 = the fundamental)
    levels_db: list[float]  # how far each stands above its surroundings

    def describe(self) -> str:
        return f"hum at {self.frequency:.2f} Hz ({len(self.harmonics)} harmonic{'' if len(self.harmonics) == 1 else 's'})"


class LongTermSpectrum:
    """Average power spectrum of a stream (all channels together), fed block by block."""

    def __init__(self, sample_rate: int, channels: int, seconds: float = 2.7):
        self.sample_rate = sample_rate
        self.nfft = 1 << int(np.ceil(np.log2(seconds * sample_rate)))
        self.hop = self.nfft // 2
        self.window = signal.get_window("hann", self.nfft)
        self._buffer = np.zeros((0, channels))
        self.power = np.zeros(self.nfft // 2 + 1)
        self.frames = 0
        self.peak = 0.0

    def update(self, block: np.ndarray) -> None:
        block = np.asarray(block, dtype=np.float64).reshape(len(block), -1)
        if len(block):
            self.peak = max(self.peak, float(np.abs(block).max()))
        self._buffer = np.concatenate([self._buffer, block])
        while len(self._buffer) >= self.nfft:
            self._add(self._buffer[: self.nfft])
            self._buffer = self._buffer[self.hop :]

    def result(self) -> np.ndarray:
        """The averaged spectrum; a signal shorter than one frame is analysed zero-padded."""
        if self.frames == 0 and len(self._buffer):
            n = len(self._buffer)
            x = self._buffer * signal.get_window("hann", n)[:, None]
            self.power += (np.abs(np.fft.rfft(x, self.nfft, axis=0)) ** 2).sum(axis=1)
            self.frames = 1
        return self.power / max(self.frames, 1)

    def _add(self, frame: np.ndarray) -> None:
        self.power += (np.abs(np.fft.rfft(frame * self.window[:, None], axis=0)) ** 2).sum(axis=1)
        self.frames += 1


def detect_hum(power: np.ndarray, sample_rate: int) -> HumInfo | None:
    """The mains fundamental and its audible harmonics in a long-term power spectrum, or None."""
    nfft = 2 * (len(power) - 1)
    bin_hz = sample_rate / nfft
    top = min(MAX_HARMONICS * (max(MAINS) + DRIFT_HZ) + 20.0, sample_rate / 2 - 20.0)
    n = int(top / bin_hz) + 2
    if power[:n].max() <= 0:
        return None
    level = 10 * np.log10(power[:n] + power[:n].max() * 1e-12)
    width = max(3, int(round(20.0 / bin_hz)) | 1)
    salience = level - ndimage.median_filter(level, size=width, mode="nearest")
    best = None
    for mains in MAINS:
        f0 = np.arange(mains - DRIFT_HZ, mains + DRIFT_HZ + 1e-9, 0.005)
        k = np.arange(1, MAX_HARMONICS + 1)
        freqs = f0[:, None] * k[None, :]
        heights = np.interp(freqs / bin_hz, np.arange(n), salience, right=0.0)
        heights[freqs >= sample_rate / 2 - 20.0] = 0.0
        score = np.clip(heights, 0, None).sum(axis=1)
        i = int(np.argmax(score))
        if best is None or score[i] > best[0]:
            best = (score[i], f0[i], heights[i])
    _, frequency, heights = best
    frequency = _refine(level, bin_hz, frequency, heights)
    heights = np.interp(frequency * np.arange(1, MAX_HARMONICS + 1) / bin_hz, np.arange(n), salience, right=0.0)
    heights[frequency * np.arange(1, MAX_HARMONICS + 1) >= sample_rate / 2 - 20.0] = 0.0
    if not (heights[0] >= FUNDAMENTAL_DB or (heights >= HARMONIC_DB).sum() >= MIN_HARMONICS):
        return None
    present = [int(k) for k in np.flatnonzero(heights >= PRESENT_DB) + 1]
    return HumInfo(round(float(frequency), 3), present, [round(float(heights[k - 1]), 1) for k in present])


def _refine(level: np.ndarray, bin_hz: float, f0: float, heights: np.ndarray) -> float:
    """f0 from the exact position of the strongest harmonic's peak (parabolic interpolation of the
    dB spectrum): the comb search can be pulled a little by broad partials of speech or music."""
    k = int(np.argmax(heights)) + 1
    centre = int(round(k * f0 / bin_hz))
    reach = max(1, int(np.ceil(0.6 / bin_hz)))  # the comb lands within about 0.5 Hz of a harmonic
    lo, hi = max(centre - reach, 1), min(centre + reach + 1, len(level) - 1)
    i = lo + int(np.argmax(level[lo:hi]))
    a, b, c = level[i - 1], level[i], level[i + 1]
    shift = 0.5 * (a - c) / (a - 2 * b + c) if a - 2 * b + c < 0 else 0.0
    refined = (i + float(np.clip(shift, -0.5, 0.5))) * bin_hz / k
    return refined if abs(refined - f0) * k <= 0.6 + bin_hz else f0


class HumFilter:
    """Subtract the hum harmonics `info` names; a `stream.Processor`."""

    def __init__(self, info: HumInfo, sample_rate: int, window_seconds: float = WINDOW_SECONDS):
        self.info = info
        self.sample_rate = sample_rate
        half = int(round(window_seconds * sample_rate / 2))
        m = np.arange(-half, half + 1)
        w = np.hanning(2 * half + 3)[1:-1]  # nonzero at both ends
        self.freqs = np.array([k * info.frequency for k in info.harmonics])
        omega = 2 * np.pi * self.freqs / sample_rate
        # hum estimate = sum_k 2 Re(e^{j w_k n} sum_m w[m] x[n-m] e^{-j w_k (n-m)}) / sum(w)
        self.kernel = (2.0 / w.sum()) * w * np.cos(np.outer(omega, m)).sum(axis=0)
        self.half = half
        self.before = self.after = 2 * half + 1  # room for the whole fit window at either end
        self._fits: dict[str, np.ndarray] = {}

    def process(self, x: np.ndarray, offset: int, end: int | None) -> np.ndarray:
        x = x.copy()
        if offset < 0:  # before the start: the hum the first second holds, continued backwards
            self._extend(x, offset, 0, min(-offset, len(x)), "start", end)
        if end is not None and offset + len(x) > end:
            self._extend(x, offset, end - offset, len(x), "end", end)
        hum = signal.fftconvolve(x, self.kernel[:, None], mode="valid", axes=0)
        n = len(x) - self.before - self.after
        lo = self.before - self.half
        return x[self.before : self.before + n] - hum[lo : lo + n]

    def _extend(self, x: np.ndarray, offset: int, lo: int, hi: int, side: str, end: int | None) -> None:
        n_fit = 2 * self.half + 1
        if side == "start":
            first = 0
            last = n_fit if end is None else min(n_fit, end)
        else:
            first, last = max(0, end - n_fit), end
        if side not in self._fits:
            t = np.arange(first, last)
            data = x[first - offset : last - offset]
            self._fits[side] = np.linalg.lstsq(self._basis(t), data, rcond=None)[0]
        x[lo:hi] = self._basis(np.arange(offset + lo, offset + hi)) @ self._fits[side]

    def _basis(self, t: np.ndarray) -> np.ndarray:
        phase = 2 * np.pi * np.outer(t, self.freqs) / self.sample_rate
        return np.concatenate([np.cos(phase), np.sin(phase)], axis=1)
