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

from soundtok_cli.codec.resample import GridResampler

BLOCK_FRAMES = 300  # 4 s at 75 frames/s: context overhead of about 10-20 % per block


class StreamingEncoder:
    """push() source-rate mono samples in any chunks; get (frames, levels) uint16 codes back."""

    def __init__(self, codec, source_rate: int, levels: int):
        self.codec = codec
        self.config = codec.config
        self.levels = levels
        self.resampler = GridResampler(source_rate, self.config.sample_rate)
        self.context = self.config.encoder_context()
        hop = self.config.hop
        self.margin = (self.context + 1) * hop  # samples needed beyond a block on each side
        self.buffer = np.zeros(self.margin, dtype=np.float32)
        self.buffer_start = -self.margin  # 48 kHz sample index of buffer[0]
        self.next_block = 0
        self.total = 0  # 48 kHz samples seen

    def _encode_block(self, j: int, source: np.ndarray, frames: int) -> np.ndarray:
        hop, start = self.config.hop, j * BLOCK_FRAMES * self.config.hop - self.margin - self.buffer_start
        segment = source[start : start + BLOCK_FRAMES * hop + 2 * self.margin]
        codes = self.codec.encode_segment(segment, self.context, self.levels)
        return codes[:frames]

    def _drain(self, final: bool) -> np.ndarray:
        hop = self.config.hop
        block_samples = BLOCK_FRAMES * hop
        out = []
        end = self.buffer_start + len(self.buffer)
        if final:
            total_frames = math.ceil(self.total / hop)
            last = math.ceil(total_frames / BLOCK_FRAMES)
            need_end = last * block_samples + self.margin
            source = np.concatenate([self.buffer, np.zeros(max(0, need_end - end), dtype=np.float32)])
            while self.next_block < last:
                frames = min(BLOCK_FRAMES, total_frames - self.next_block * BLOCK_FRAMES)
                out.append(self._encode_block(self.next_block, source, frames))
                self.next_block += 1
        else:
            while (self.next_block + 1) * block_samples + self.margin <= end:
                out.append(self._encode_block(self.next_block, self.buffer, BLOCK_FRAMES))
                self.next_block += 1
            keep_from = self.next_block * block_samples - self.margin - self.buffer_start
            if keep_from > 0:
                self.buffer = self.buffer[keep_from:]
                self.buffer_start += keep_from
        if not out:
            return np.zeros((0, self.levels), dtype=np.uint16)
        return np.concatenate(out)

    def _append(self, samples: np.ndarray) -> None:
        self.total += len(samples)
        self.buffer = np.concatenate([self.buffer, samples])

    def push(self, samples: np.ndarray) -> np.ndarray:
        self._append(self.resampler.push(samples))
        return self._drain(final=False)

    def finish(self) -> np.ndarray:
        self._append(self.resampler.finish())
        return self._drain(final=True)


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
