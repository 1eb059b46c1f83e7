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
    decoder = FrameDecoder(codec, start, end)
    decoder.push(codes)
    decoder.finish()
    yield from decoder.blocks()


class FrameDecoder:
    """`decode_frames` for codes that arrive in pieces: `push` them as they come, `finish` when
    the item is complete, and take from `blocks` what can be decoded so far.

    Block j (frames [j*BLOCK_FRAMES, (j+1)*BLOCK_FRAMES)) decodes from its codes and `context`
    frames on each side, so it is ready once the codes up to its right context have arrived (or
    the item is complete); it then gives exactly the samples the whole item decodes to there.
    Memory holds the codes from the next block's left context on: one block and a bit, when
    blocks are taken after each push.
    """

    def __init__(self, codec, start: int = 0, end: int | None = None):
        self.codec = codec
        self.hop = codec.config.hop
        self.context = codec.config.decoder_context() + 1
        self.start, self.end = start, end
        self.block = start // BLOCK_FRAMES  # the next block to decode
        self.codes: np.ndarray | None = None  # frames [offset, arrived) of the item
        self.offset = 0
        self.arrived = 0
        self.complete = False

    def push(self, codes: np.ndarray) -> None:
        """Append the item's next codes (frames, levels)."""
        if self.complete:
            raise ValueError("push after finish")
        self.arrived += len(codes)
        if self.exhausted():
            self.codes, self.offset = None, self.arrived  # the range asked for is decoded
            return
        self.codes = codes if self.codes is None else np.concatenate([self.codes, codes])
        self._trim()

    def finish(self) -> None:
        """No more codes: the item's length is what has arrived."""
        self.complete = True

    def exhausted(self) -> bool:
        """True when every block of the range has been decoded."""
        end = self.end if not self.complete else self.arrived if self.end is None else min(self.end, self.arrived)
        return end is not None and self.block >= math.ceil(end / BLOCK_FRAMES)

    def ready(self) -> bool:
        """True when the next block can be decoded now."""
        if self.exhausted():
            return False
        return self.complete or self.arrived >= (self.block + 1) * BLOCK_FRAMES + self.context

    def decode_next(self) -> np.ndarray:
        """The next block's samples (call when `ready`)."""
        j, total = self.block, self.arrived  # an incomplete item reaches past this block's context
        lo, hi = j * BLOCK_FRAMES - self.context, (j + 1) * BLOCK_FRAMES + self.context
        window = self.codes[max(lo, 0) - self.offset : min(hi, total) - self.offset]
        audio = self.codec.decode_segment(window, pad_before=max(0, -lo), pad_after=max(0, hi - total),
                                          context=self.context)
        end = total if self.end is None else min(self.end, total)
        first, last = max(self.start, j * BLOCK_FRAMES), min(end, (j + 1) * BLOCK_FRAMES)
        self.block += 1
        self._trim()
        return audio[(first - j * BLOCK_FRAMES) * self.hop : (last - j * BLOCK_FRAMES) * self.hop]

    def blocks(self) -> Iterator[np.ndarray]:
        """The blocks that can be decoded now, in order."""
        while self.ready():
            yield self.decode_next()

    def _trim(self) -> None:
        keep = max(0, self.block * BLOCK_FRAMES - self.context)  # the next block's first frame needed
        if self.codes is not None and keep > self.offset:
            drop = min(keep - self.offset, len(self.codes))
            self.codes, self.offset = self.codes[drop:], self.offset + drop


def to_tensor(x: np.ndarray, device: str) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x)).to(device)
