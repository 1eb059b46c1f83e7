"""A 1-D stream, pushed in chunks of any size, cut into fixed blocks with context on each side.

Block k covers samples [k*block, (k+1)*block) and comes with `margin` real samples before and after
it (zeros before the start of the stream and past its end). A block is handed out as soon as its
right-hand context has arrived, so whatever is computed from a block depends only on the stream's
samples there, never on how the caller chunked it; memory holds about one block.
"""

from __future__ import annotations

import numpy as np


class BlockGrid:
    def __init__(self, block: int, margin: int):
        self.block, self.margin = block, margin
        self.buffer = np.zeros(margin, dtype=np.float32)
        self.buffer_start = -margin  # stream index of buffer[0]
        self.next_block = 0
        self.total = 0  # samples pushed

    def _segment(self, k: int, source: np.ndarray) -> np.ndarray:
        offset = k * self.block - self.margin - self.buffer_start
        return source[offset : offset + self.block + 2 * self.margin]

    def push(self, samples: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """Append samples; return (k, block k with its context) for every block now complete."""
        self.total += len(samples)
        self.buffer = np.concatenate([self.buffer, samples.astype(np.float32, copy=False)])
        end = self.buffer_start + len(self.buffer)
        ready = []
        while (self.next_block + 1) * self.block + self.margin <= end:
            ready.append((self.next_block, self._segment(self.next_block, self.buffer)))
            self.next_block += 1
        keep_from = self.next_block * self.block - self.margin - self.buffer_start
        if keep_from > 0:
            self.buffer = self.buffer[keep_from:]
            self.buffer_start += keep_from
        return ready

    def finish(self, blocks: int) -> list[tuple[int, np.ndarray]]:
        """The remaining blocks up to `blocks` in all, zero-padded past the end of the stream."""
        end = self.buffer_start + len(self.buffer)
        missing = max(0, blocks * self.block + self.margin - end)
        source = np.concatenate([self.buffer, np.zeros(missing, dtype=np.float32)])
        ready = []
        while self.next_block < blocks:
            ready.append((self.next_block, self._segment(self.next_block, source)))
            self.next_block += 1
        return ready
