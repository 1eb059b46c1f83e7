"""Clicks and crackle: find impulses an autoregressive model cannot predict, and fill them in by
least-squares AR interpolation (the classic declicker of Vaseghi and Rayner, Godsill and Rayner).

The signal is cut into blocks of about 21 ms on a grid fixed at sample 0. For each block an
AR(p) model is fitted (autocorrelation method over a Hann window twice the block long) and the
signal is inverse-filtered through it; music and speech leave a small, roughly white prediction
error, a click leaves a spike. A sample is marked when its error exceeds both `threshold` times
the robust standard deviation (median absolute error / 0.6745) and 2.5 times the 99th percentile
of the errors, each the median over the block and its two neighbours (voiced speech has a spike
at every glottal pulse: a click must stand out from those too). Marks closer than p samples join
into one gap, widened by 2 samples before and 0.4 ms after (the error peaks at a click's start). A gap longer than
`max_gap` (2.5 ms) is not a click (a drum hit, a consonant) and is left alone. Each gap is
replaced by the samples that minimise the AR prediction error over the gap and p samples after
it, given the known samples around it.

Every decision depends only on input within a few blocks of a sample, so `Chunked` processing
with `before`/`after` context equals processing the whole signal.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg, signal

ORDER_48K = 32
BLOCK_SECONDS = 1024 / 48000
THRESHOLD = 9.0
PEAK_QUANTILE, PEAK_FACTOR = 0.99, 2.5
AFTER_SECONDS = 0.0004  # a click's error peaks at its start: take this much after the last mark too
MAX_GAP_SECONDS = 0.0025
SILENCE = 1e-6  # error floor (about -120 dBFS): digital silence has no clicks
WHITE = 1e-3  # -30 dB: band-limited (resampled) audio would otherwise give wild predictors


class ClickRepair:
    """Detect and repair clicks in every channel; a `stream.Processor`. `repaired` counts gaps."""

    def __init__(self, sample_rate: int, threshold: float = THRESHOLD):
        scale = sample_rate / 48000
        self.order = max(8, int(round(ORDER_48K * min(scale, 1.0))))
        self.block = max(128, int(round(BLOCK_SECONDS * sample_rate)))
        self.fit = 2 * self.block
        self.max_gap = max(4, int(round(MAX_GAP_SECONDS * sample_rate)))
        self.pad = (2, max(4, int(round(AFTER_SECONDS * sample_rate))))  # samples added around each run of marks
        self.threshold = threshold
        self.fit_window = signal.get_window("hann", self.fit)
        p = self.order
        # context: gaps reaching the output (max_gap + p), marks beyond them (p), the blocks that
        # judge those marks (one before, one after) and their fit windows
        self.margin = self.max_gap + 2 * p + sum(self.pad)
        self.before = self.after = self.margin + 3 * self.block + self.fit
        self.repaired = 0

    def process(self, x: np.ndarray, offset: int, end: int | None) -> np.ndarray:
        n = len(x) - self.before - self.after
        out = x[self.before : self.before + n].copy()
        for c in range(x.shape[1]):
            out[:, c] = self._channel(x[:, c], offset, end, n)
        return out

    def _channel(self, x: np.ndarray, offset: int, end: int | None, n: int) -> np.ndarray:
        B, p = self.block, self.order
        out_lo, out_hi = offset + self.before, offset + self.before + n  # absolute output range
        look_lo, look_hi = out_lo - self.margin, out_hi + self.margin  # marks needed
        first, last = (look_lo // B) - 1, (look_hi - 1) // B + 1  # blocks judged, plus neighbours
        blocks = np.arange(first, last + 1)
        coefs = self._fit(x, offset, blocks)
        errors = np.empty((len(blocks), B))
        for i, b in enumerate(blocks):
            lo = b * B - offset
            errors[i] = signal.lfilter(coefs[i], [1.0], x[lo - p : lo + B])[p:]
        size = np.abs(errors)
        spread = np.median(size, axis=1) / 0.6745
        peaks = np.quantile(size, PEAK_QUANTILE, axis=1)
        spread, peaks = (np.median(np.stack([v[:-2], v[1:-1], v[2:]]), axis=0) for v in (spread, peaks))
        level = np.maximum(np.maximum(self.threshold * spread, PEAK_FACTOR * peaks), SILENCE)
        size = size[1:-1].ravel()
        level = np.repeat(level, B)
        marks = size > level
        start = (first + 1) * B
        positions = start + np.flatnonzero(marks)
        positions = positions[positions >= p]  # the first p errors see the zeros before the start
        if end is not None:
            positions = positions[positions < end]
        y = x[self.before : self.before + n].copy()
        for g0, g1 in self._gaps(positions, look_lo, look_hi):
            if g1 <= out_lo or g0 >= out_hi or g1 - g0 > self.max_gap:
                continue
            if g0 - p < 0 or (end is not None and g1 + p > end):
                continue  # too close to an end of the signal to interpolate
            if g0 - p < offset or g1 + p > offset + len(x):
                continue  # cannot happen with the declared context; never read outside x
            filled = self._interpolate(x, offset, g0, g1, coefs[(g0 // B) - first])
            lo, hi = max(g0, out_lo), min(g1, out_hi)
            y[lo - out_lo : hi - out_lo] = filled[lo - g0 : hi - g0]
            if g0 >= out_lo:  # count each gap once, in the chunk where it starts
                self.repaired += 1
        return y

    def _fit(self, x: np.ndarray, offset: int, blocks: np.ndarray) -> np.ndarray:
        """AR coefficients [1, a1..ap] per block, from a window of 2 blocks centred on it."""
        B, p = self.block, self.order
        starts = blocks * B + B // 2 - self.fit // 2 - offset
        frames = np.stack([x[s : s + self.fit] for s in starts]) * self.fit_window
        spectrum = np.abs(np.fft.rfft(frames, 2 * self.fit, axis=1)) ** 2
        r = np.fft.irfft(spectrum, axis=1)[:, : p + 1]
        coefs = np.zeros((len(blocks), p + 1))
        coefs[:, 0] = 1.0
        for i in range(len(blocks)):
            if r[i, 0] <= 1e-20:
                continue  # silence: the error is the signal itself (zero)
            r0 = r[i].copy()
            r0[0] *= 1.0 + WHITE  # a white-noise floor keeps the predictor from chasing band limits
            coefs[i, 1:] = -linalg.solve_toeplitz(r0[:p], r0[1 : p + 1])
        return coefs

    def _gaps(self, positions: np.ndarray, lo: int, hi: int) -> list[tuple[int, int]]:
        """Runs of marks closer than p samples, padded: [(start, end), ...] in absolute samples."""
        positions = positions[(positions >= lo) & (positions < hi)]
        if len(positions) == 0:
            return []
        breaks = np.flatnonzero(np.diff(positions) > self.order)
        starts = np.concatenate([[positions[0]], positions[breaks + 1]])
        ends = np.concatenate([positions[breaks], [positions[-1]]]) + 1
        return [(int(s) - self.pad[0], int(e) + self.pad[1]) for s, e in zip(starts, ends)]

    def _interpolate(self, x: np.ndarray, offset: int, g0: int, g1: int, a: np.ndarray) -> np.ndarray:
        """Least-squares AR interpolation of x[g0:g1] from the p samples either side."""
        p = self.order
        segment = x[g0 - p - offset : g1 + p - offset]
        m, rows = g1 - g0, g1 - g0 + p
        # error e[t] = sum_i a_i s[t + p - i] for t = 0..rows-1 (the errors that touch the gap)
        matrix = np.zeros((rows, len(segment)))
        for i in range(p + 1):
            matrix[np.arange(rows), np.arange(rows) + p - i] = a[i]
        unknown = matrix[:, p : p + m]
        known = np.delete(matrix, np.s_[p : p + m], axis=1)
        known_values = np.delete(segment, np.s_[p : p + m])
        return np.linalg.lstsq(unknown, -known @ known_values, rcond=None)[0]

