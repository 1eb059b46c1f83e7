"""Test data shared by the store, stream, info/cat and audio tests: codec attributes, token
batches of random codes, streams of them, and a pipe-like byte sink."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np

from soundtok_cli.io.store import Batch
from soundtok_cli.io.stream import write_stream

_TEST_CODEC = {
    "name": "test-codec",
    "version": "1.0",
    "weights_sha256": "ab" * 32,
    "sample_rate": 48000,
    "frame_rate": 75,
    "levels": 8,
    "codebook_size": 1024,
}


def codec_attrs(**changes) -> dict:
    """The attributes of a made-up codec (a new dict each call), with `changes` applied."""
    return dict(_TEST_CODEC, **changes)


def token_batch(
    n: int,
    seed: int,
    codec: dict,
    *,
    source: Callable[[int], str],
    channel: Callable[[int], int],
    sample_rate: Callable[[int], int],
    content_hash: Callable[[int], str],
    min_len: int = 0,
    max_len: int,
) -> Batch:
    """A tokens batch of `n` items of random codes, the same for the same arguments: lengths
    (frames) drawn from [min_len, max_len) by a generator seeded with `seed`, durations to match at
    the codec's frame rate. The other per-item fields are functions of the item's index."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(min_len, max_len, n)
    return Batch.tokens(
        codec,
        "test",
        source=[source(i) for i in range(n)],
        channel=[channel(i) for i in range(n)],
        sample_rate=[sample_rate(i) for i in range(n)],
        duration=[float(length) / codec["frame_rate"] for length in lengths],
        content_hash=[content_hash(i) for i in range(n)],
        codes=[rng.integers(0, codec["codebook_size"], (length, codec["levels"])) for length in lengths],
    )


def stream_bytes(*batches: Batch) -> bytes:
    """The batches as a stream, as `soundtok encode` writes it to a pipe."""
    out = io.BytesIO()
    write_stream(batches, out)
    return out.getvalue()


class PipeSink(io.RawIOBase):
    """A write-only, non-seekable byte sink, like a pipe; what was written is in `data`."""

    def __init__(self):
        self.data = bytearray()

    def writable(self):
        return True

    def write(self, b):
        self.data += b
        return len(b)
