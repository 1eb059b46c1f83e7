"""Run a processor over a long signal in overlapping chunks, in bounded memory, without seams.

A processor declares how much input it needs around each stretch of output (`before`, `after`)
and computes output sample n from input samples [n - before, n + after] only, with every frame,
block and grid it uses anchored at absolute sample positions. `Chunked` then feeds it chunks with
that much context, so the output is the same, to floating-point rounding, whatever the chunk and
block sizes: processing a file in pieces equals processing it whole.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Processor(Protocol):
    before: int  # input samples needed before each output sample
    after: int  # ... and after it

    def process(self, x: np.ndarray, offset: int, end: int | None) -> np.ndarray:
        """x: (before + n + after, channels) float64, x[i] is input sample offset + i; samples before
        0 and from `end` (the signal's length, given once known) on are zeros. Return (n, channels)."""


class Chunked:
    """Push blocks in, get processed blocks out (delayed by up to a chunk); `finish` flushes."""

    def __init__(self, processor: Processor, channels: int, chunk: int = 1 << 16):
        self.processor = processor
        self.channels = channels
        self.chunk = max(int(chunk), 1)
        self._before, self._after = processor.before, processor.after
        self._buffer = np.zeros((self._before, channels))  # the zeros before sample 0
        self._buffer_start = -self._before  # absolute index of _buffer[0]
        self._next = 0  # next output sample
        self._seen = 0  # input samples pushed so far

    def push(self, block: np.ndarray) -> np.ndarray:
        block = np.asarray(block, dtype=np.float64).reshape(-1, self.channels)
        self._buffer = np.concatenate([self._buffer, block])
        self._seen += len(block)
        out = []
        while self._seen >= self._next + self.chunk + self._after:
            out.append(self._run(self.chunk, None))
        self._trim()
        return np.concatenate(out) if out else np.zeros((0, self.channels))

    def finish(self) -> np.ndarray:
        end = self._seen
        out = []
        while self._next < end:
            n = min(self.chunk, end - self._next)
            missing = self._next + n + self._after - (self._buffer_start + len(self._buffer))
            if missing > 0:
                self._buffer = np.concatenate([self._buffer, np.zeros((missing, self.channels))])
            out.append(self._run(n, end))
        return np.concatenate(out) if out else np.zeros((0, self.channels))

    def _run(self, n: int, end: int | None) -> np.ndarray:
        lo = self._next - self._before - self._buffer_start
        x = self._buffer[lo : lo + self._before + n + self._after]
        y = self.processor.process(x, self._next - self._before, end)
        self._next += n
        return y

    def _trim(self) -> None:
        drop = self._next - self._before - self._buffer_start
        if drop > 0:
            self._buffer = self._buffer[drop:]
            self._buffer_start += drop


def run_all(processor: Processor, x: np.ndarray, chunk: int = 1 << 16, block: int = 1 << 16) -> np.ndarray:
    """The whole of (n, channels) or (n,) `x` through `processor` (tests and benchmarks)."""
    one = np.asarray(x).ndim == 1
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    stream = Chunked(processor, x.shape[1], chunk)
    parts = [stream.push(x[i : i + block]) for i in range(0, len(x), block)] + [stream.finish()]
    # an empty part has the input's width, which need not be the output's (stems)
    y = np.concatenate([p for p in parts if len(p)])
    return y[:, 0] if one else y
