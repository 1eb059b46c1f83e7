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

from soundtok_cli.codec.grid import BlockGrid


class GridResampler:
    def __init__(self, rate_in: int, rate_out: int, block_seconds: int = 2):
        self.rate_in, self.rate_out = rate_in, rate_out
        self.block_out = block_seconds * rate_out
        step_in = rate_in // math.gcd(rate_in, rate_out)  # input samples per whole output step
        self.context_in = step_in * math.ceil((rate_in // 20) / step_in)  # >= 50 ms, grid-aligned
        self.context_out = self.context_in * rate_out // rate_in
        self.grid = BlockGrid(block_seconds * rate_in, self.context_in)

    def _resample(self, segment: np.ndarray) -> np.ndarray:
        if self.rate_in == self.rate_out:
            return segment[self.context_in : self.context_in + self.grid.block].copy()
        out = soxr.resample(segment, self.rate_in, self.rate_out, quality="HQ")
        return out[self.context_out : self.context_out + self.block_out].astype(np.float32)

    def push(self, samples: np.ndarray) -> np.ndarray:
        return _join([self._resample(segment) for _, segment in self.grid.push(samples)])

    def finish(self) -> np.ndarray:
        end_out = math.ceil(self.grid.total * self.rate_out / self.rate_in)
        blocks = self.grid.finish(math.ceil(end_out / self.block_out))
        return _join([self._resample(segment)[: max(0, end_out - k * self.block_out)] for k, segment in blocks])


def _join(blocks: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)
