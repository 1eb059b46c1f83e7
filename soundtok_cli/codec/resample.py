"""Resampling on a fixed time grid, so that the result never depends on how input was chunked.

soxr is used for quality, but a streaming resampler's output depends on where the caller's chunks
fall. Here every block of `block_seconds` of input is resampled on its own, with enough real
neighbouring samples on each side that the filter never sees a block edge, and the middle is kept:
the same input always gives bit-identical output, whether pushed whole or in pieces.
"""

from __future__ import annotations

import math

import numpy as np
import soxr


class GridResampler:
    def __init__(self, rate_in: int, rate_out: int, block_seconds: int = 2):
        self.rate_in, self.rate_out = rate_in, rate_out
        self.block_in = block_seconds * rate_in
        self.block_out = block_seconds * rate_out
        step_in = rate_in // math.gcd(rate_in, rate_out)  # input samples per whole output step
        self.context_in = step_in * math.ceil((rate_in // 20) / step_in)  # >= 50 ms, grid-aligned
        self.context_out = self.context_in * rate_out // rate_in
        self.pending_start = -self.context_in  # input index of pending[0]; zeros before the start
        self.pending = np.zeros(self.context_in, dtype=np.float32)
        self.next_block = 0
        self.total_in = 0

    def _block(self, k: int, source: np.ndarray) -> np.ndarray:
        start = k * self.block_in - self.context_in - self.pending_start
        segment = source[start : start + self.block_in + 2 * self.context_in]
        if self.rate_in == self.rate_out:
            return segment[self.context_in : self.context_in + self.block_in].copy()
        out = soxr.resample(segment, self.rate_in, self.rate_out, quality="HQ")
        return out[self.context_out : self.context_out + self.block_out].astype(np.float32)

    def _drain(self, final: bool) -> list[np.ndarray]:
        blocks = []
        need = lambda k: (k + 1) * self.block_in + self.context_in  # noqa: E731
        end_in = self.pending_start + len(self.pending)
        if final:
            end_out = math.ceil(self.total_in * self.rate_out / self.rate_in)
            last = math.ceil(end_out / self.block_out)
            pad = max(0, need(last - 1) - end_in) if last > 0 else 0
            source = np.concatenate([self.pending, np.zeros(pad, dtype=np.float32)])
            while self.next_block < last:
                block = self._block(self.next_block, source)
                block_start = self.next_block * self.block_out
                blocks.append(block[: max(0, end_out - block_start)])
                self.next_block += 1
            return blocks
        while need(self.next_block) <= end_in:
            blocks.append(self._block(self.next_block, self.pending))
            self.next_block += 1
        keep_from = self.next_block * self.block_in - self.context_in - self.pending_start
        if keep_from > 0:
            self.pending = self.pending[keep_from:]
            self.pending_start += keep_from
        return blocks

    def push(self, samples: np.ndarray) -> np.ndarray:
        self.total_in += len(samples)
        self.pending = np.concatenate([self.pending, samples.astype(np.float32, copy=False)])
        return _join(self._drain(final=False))

    def finish(self) -> np.ndarray:
        return _join(self._drain(final=True))


def _join(blocks: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)
