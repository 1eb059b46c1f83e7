"""Encoding and decoding on a fixed grid of blocks: bounded memory, no seams, seekable.

The encoder's receptive field is finite (`CodecConfig.encoder_context` frames each side). Every
block of BLOCK_FRAMES frames is encoded from exactly its own samples plus that context, so a frame's
code depends only on the audio near it: a file pushed whole or in any chunks gives identical codes,
and memory holds one block. Decoding works the same way from codes, so a time range decodes from
the codes around it alone, at a cost proportional to its length.
"""

from __future__ import annotations

import math
from typing import Iterator

import numpy as np
import torch

from soundtok_cli.codec.grid import BlockGrid
from soundtok_cli.codec.resample import GridResampler

BLOCK_FRAMES = 300  # 4 s at 75 frames/s: context overhead of about 10-20 % per block


class StreamingEncoder:
    """push() source-rate mono samples in any chunks; get (frames, levels) uint16 codes back."""

    def __init__(self, codec, source_rate: int, levels: int):
        self.codec = codec
        self.levels = levels
        self.hop = codec.config.hop
        self.resampler = GridResampler(source_rate, codec.config.sample_rate)
        self.context = codec.config.encoder_context()
        # a block's frames need the samples of `context` more frames, plus one for the STFT window
        self.grid = BlockGrid(BLOCK_FRAMES * self.hop, (self.context + 1) * self.hop)

    def _encode(self, blocks: list[tuple[int, np.ndarray]], total_frames: int | None = None) -> np.ndarray:
        codes = [self.codec.encode_segment(segment, self.context, self.levels) for _, segment in blocks]
        if total_frames is not None:  # the last block stops at the end of the audio
            codes = [c[: total_frames - k * BLOCK_FRAMES] for (k, _), c in zip(blocks, codes)]
        return np.concatenate(codes) if codes else np.zeros((0, self.levels), dtype=np.uint16)

    def push(self, samples: np.ndarray) -> np.ndarray:
        return self._encode(self.grid.push(self.resampler.push(samples)))

    def finish(self) -> np.ndarray:
        blocks = self.grid.push(self.resampler.finish())
        total_frames = math.ceil(self.grid.total / self.hop)
        blocks += self.grid.finish(math.ceil(total_frames / BLOCK_FRAMES))
        return self._encode(blocks, total_frames)


def decode_frames(codec, codes: np.ndarray, start: int = 0, end: int | None = None) -> Iterator[np.ndarray]:
    """Yield 48 kHz samples for frames [start, end) of one item's codes (T, L), block by block.

    Blocks sit on the same absolute grid whatever range is asked for, so any range decodes to
    exactly the samples the whole item decodes to there.
    """
    total = len(codes)
    end = total if end is None else min(end, total)
    hop = codec.config.hop
    context = codec.config.decoder_context() + 1
    for j in range(start // BLOCK_FRAMES, math.ceil(end / BLOCK_FRAMES)):
        lo, hi = j * BLOCK_FRAMES - context, (j + 1) * BLOCK_FRAMES + context
        window = codes[max(lo, 0) : min(hi, total)]
        audio = codec.decode_segment(window, pad_before=max(0, -lo), pad_after=max(0, hi - total), context=context)
        first, last = max(start, j * BLOCK_FRAMES), min(end, (j + 1) * BLOCK_FRAMES)
        yield audio[(first - j * BLOCK_FRAMES) * hop : (last - j * BLOCK_FRAMES) * hop]


def to_tensor(x: np.ndarray, device: str) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x)).to(device)
