"""Whole sources through the codec: an audio file to per-channel codes, and codes back to audio.

Both directions stream: audio is read, and written, a block at a time, so memory holds the codes
of one source and a few seconds of audio, whatever the length of the file.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from soundtok_cli.io.audio import AudioReader, PcmHasher, StreamResampler

READ_BLOCK_SECONDS = 2


@dataclass
class EncodedSource:
    source: str
    sample_rate: int
    duration: float  # seconds
    channels: list[np.ndarray]  # per channel (frames, levels) uint16
    hashes: list[str]


def encode_audio(codec, reader: AudioReader, levels: int) -> EncodedSource:
    """Encode every channel of an open audio input; each becomes one item of a tokens store."""
    encoders = [codec.encoder(reader.sample_rate, levels) for _ in range(reader.channels)]
    hashers = [PcmHasher() for _ in range(reader.channels)]
    codes: list[list[np.ndarray]] = [[] for _ in range(reader.channels)]
    frames = 0
    for block in reader.blocks(READ_BLOCK_SECONDS * reader.sample_rate):
        frames += len(block)
        for ch, encoder in enumerate(encoders):
            hashers[ch].update(block[:, ch])
            codes[ch].append(encoder.push(block[:, ch]))
    for ch, encoder in enumerate(encoders):
        codes[ch].append(encoder.finish())
    return EncodedSource(
        source=reader.source,
        sample_rate=reader.sample_rate,
        duration=frames / reader.sample_rate,
        channels=[np.concatenate(c) for c in codes],
        hashes=[h.hexdigest() for h in hashers],
    )


class TokenBatcher:
    """Collects encoded sources into store batches and hands them to a sink.

    A batch goes out after about 10 minutes of audio, 256 items or 5 s of wall time, whichever
    comes first: memory stays bounded and a reader downstream of a pipe starts work early.
    """

    MAX_FRAMES = 75 * 600
    MAX_ITEMS = 256
    MAX_SECONDS = 5.0

    def __init__(self, sink, codec_attrs: dict, command: str = "encode"):
        self.sink, self.codec_attrs, self.command = sink, codec_attrs, command
        self.pending: list[EncodedSource] = []
        self.last_flush = time.monotonic()

    def add(self, encoded: EncodedSource) -> None:
        self.pending.append(encoded)
        frames = sum(len(c) for s in self.pending for c in s.channels)
        items = sum(len(s.channels) for s in self.pending)
        if frames >= self.MAX_FRAMES or items >= self.MAX_ITEMS or time.monotonic() - self.last_flush >= self.MAX_SECONDS:
            self.flush()

    def flush(self) -> None:
        from soundtok_cli.io.store import Batch

        self.last_flush = time.monotonic()
        if not self.pending:
            return
        items = [(s, ch) for s in self.pending for ch in range(len(s.channels))]
        self.sink.write(Batch.tokens(
            self.codec_attrs, self.command,
            source=[s.source for s, _ in items],
            channel=[ch for _, ch in items],
            sample_rate=[s.sample_rate for s, _ in items],
            duration=[s.duration for s, _ in items],
            content_hash=[s.hashes[ch] for s, ch in items],
            codes=[s.channels[ch] for s, ch in items],
        ))
        self.pending.clear()


@dataclass
class DecodePlan:
    """Which frames of a source to decode and how many output samples that makes."""

    first_frame: int
    last_frame: int
    skip: int  # output samples to drop at the start (the range starts inside a frame)
    frames_out: int  # output samples to deliver
    rate: int


def plan_decode(duration: float, frame_rate: float, rate: int, start: float = 0.0, end: float | None = None) -> DecodePlan:
    end = duration if end is None else min(end, duration)
    start = min(max(start, 0.0), end)
    first = int(math.floor(start * frame_rate))
    last = int(math.ceil(end * frame_rate))
    frames_out = int(round((end - start) * rate))
    skip = int(round((start - first / frame_rate) * rate))
    return DecodePlan(first, last, skip, frames_out, rate)


def decode_channels(codec, channels: list[np.ndarray], plan: DecodePlan) -> Iterator[np.ndarray]:
    """Yield (n, channels) float32 blocks at plan.rate; exactly plan.frames_out samples in all."""
    decoder = SourceDecoder(codec, len(channels), plan)
    for channel, codes in enumerate(channels):
        decoder.push(channel, codes)
        decoder.finish(channel)
    yield from decoder.blocks()


def decode_source(codec, group, plan: DecodePlan, levels: int) -> Iterator[np.ndarray]:
    """`decode_channels` for one source of `group_sources` (its ``levels`` coarsest levels).

    A source whose last channel still arrives in parts (``group.rest``) is decoded as the parts
    are read: each block of audio comes as soon as the codes it depends on are there, and memory
    holds a window of that channel's codes. The audio is the same as for the joined source.
    """
    decoder = SourceDecoder(codec, len(group.channels), plan)
    for channel, codes in enumerate(group.channels):
        decoder.push(channel, codes[:, :levels])
        if channel != group.streaming:
            decoder.finish(channel)
    yield from decoder.blocks()
    if group.streaming is None:
        return
    for codes in group.rest:
        if decoder.done:  # the range asked for is written; group_sources skips the rest
            return
        decoder.push(group.streaming, codes[:, :levels])
        yield from decoder.blocks()
    decoder.finish(group.streaming)
    yield from decoder.blocks()


class SourceDecoder:
    """`decode_channels` for codes that arrive in pieces: `push` each channel's codes as they
    come, `finish` a channel when its codes are complete, and take from `blocks` the audio ready
    so far (after each push). The blocks are the ones `decode_channels` gives for the whole codes.
    """

    def __init__(self, codec, channels: int, plan: DecodePlan):
        self.frames = [codec.frame_decoder(plan.first_frame, plan.last_frame) for _ in range(channels)]
        self.resampler = StreamResampler(codec.config.sample_rate, plan.rate, channels)
        self.to_skip, self.remaining = plan.skip, plan.frames_out
        self.flushed = False

    @property
    def done(self) -> bool:
        """True when all plan.frames_out samples have been delivered."""
        return self.remaining <= 0

    def push(self, channel: int, codes: np.ndarray) -> None:
        self.frames[channel].push(codes)

    def finish(self, channel: int) -> None:
        self.frames[channel].finish()

    def blocks(self) -> Iterator[np.ndarray]:
        """Yield (n, channels) float32 blocks at plan.rate as far as the codes so far allow."""
        channels = len(self.frames)
        while self.remaining > 0:
            if self.frames[0].exhausted():
                if self.flushed:  # decoded audio ends up to a frame short of the recorded duration
                    yield np.zeros((self.remaining, channels), np.float32)
                    self.remaining = 0
                    return
                block = self.resampler.process(np.zeros((0, channels), np.float32), last=True)
                self.flushed = True
            elif all(frames.ready() for frames in self.frames):
                block = self.resampler.process(np.stack([f.decode_next() for f in self.frames], axis=1))
            else:
                return  # waiting for codes
            if self.to_skip:
                dropped = min(self.to_skip, len(block))
                block, self.to_skip = block[dropped:], self.to_skip - dropped
            block = block[: self.remaining]
            self.remaining -= len(block)
            if len(block):
                yield block
