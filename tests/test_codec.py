"""Codec behaviour that does not depend on how well it was trained: shapes, seams, seeking."""

import numpy as np
import pytest
import torch

from soundtok_cli.codec.codec import NeuralCodec
from soundtok_cli.codec.config import CodecConfig
from soundtok_cli.codec.dsp import frames_stft, overlap_add
from soundtok_cli.codec.model import CodecModel
from soundtok_cli.codec.resample import GridResampler
from soundtok_cli.codec.streaming import BLOCK_FRAMES

TINY = CodecConfig(dim=32, encoder_blocks=2, decoder_blocks=2, levels=4, codebook_size=16)


@pytest.fixture(scope="module")
def codec():
    torch.manual_seed(0)
    return NeuralCodec(CodecModel(TINY), "tiny", "0", "0" * 64)


def encode(codec, x, rate, levels=4, chunks=None):
    encoder = codec.encoder(rate, levels)
    if chunks is None:
        return np.concatenate([encoder.push(x), encoder.finish()])
    parts, i = [], 0
    for n in chunks:
        parts.append(encoder.push(x[i : i + n]))
        i += n
    parts.append(encoder.push(x[i:]))
    parts.append(encoder.finish())
    return np.concatenate(parts)


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000, 96000])
def test_frame_count_follows_duration(codec, rate):
    x = np.random.default_rng(0).standard_normal(int(rate * 2.5)).astype(np.float32) * 0.1
    codes = encode(codec, x, rate)
    assert codes.dtype == np.uint16
    assert codes.shape == (int(np.ceil(len(x) * 48000 / rate / 640)), 4)
    assert codes.max() < TINY.codebook_size


@pytest.mark.parametrize("rate", [44100, 48000, 16000])
def test_chunked_encoding_gives_the_same_codes_as_whole(codec, rate):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(int(rate * 7.3)).astype(np.float32) * 0.1
    whole = encode(codec, x, rate)
    for chunks in ([1, 2, 3, 1000, 4096], list(rng.integers(1, rate, 40)), [rate * 2] * 3):
        assert np.array_equal(whole, encode(codec, x, rate, chunks=chunks))


def test_batched_clips_give_the_streaming_codes(codec):
    """encode_clips (many equal-length clips in one pass, for GPUs) agrees with the streaming
    encoder clip by clip, also for clips longer than a block and not a whole number of frames."""
    rng = np.random.default_rng(3)
    clips = rng.standard_normal((3, 640 * (BLOCK_FRAMES + 17) + 101)).astype(np.float32) * 0.1
    batched = codec.encode_clips(clips, 3)
    assert batched.dtype == np.uint16
    assert np.array_equal(batched, np.stack([encode(codec, clip, 48000, levels=3) for clip in clips]))


def test_codes_are_local_so_time_ranges_can_be_sought(codec):
    """Changing audio at the end of a file leaves the codes of its start untouched."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal(48000 * 8).astype(np.float32) * 0.1
    y = x.copy()
    y[48000 * 6 :] = 0
    a, b = encode(codec, x, 48000), encode(codec, y, 48000)
    assert np.array_equal(a[: 75 * 6 - 20], b[: 75 * 6 - 20])
    assert not np.array_equal(a, b)


def test_decoding_a_range_equals_the_same_range_of_a_whole_decode(codec):
    codes = encode(codec, np.random.default_rng(3).standard_normal(48000 * 9).astype(np.float32) * 0.1, 48000)
    whole = np.concatenate(list(codec.decode(codes)))
    assert whole.shape == (len(codes) * 640,)
    for start, end in [(0, 10), (BLOCK_FRAMES - 1, BLOCK_FRAMES + 1), (200, 460), (500, len(codes))]:
        part = np.concatenate(list(codec.decode(codes, start, end)))
        assert np.array_equal(part, whole[start * 640 : end * 640])


def test_fewer_levels_decode(codec):
    codes = encode(codec, np.random.default_rng(4).standard_normal(48000).astype(np.float32) * 0.1, 48000)
    for levels in (1, 2, 4):
        audio = np.concatenate(list(codec.decode(codes[:, :levels])))
        assert audio.shape == (len(codes) * 640,) and np.isfinite(audio).all()


def test_stft_and_overlap_add_reconstruct_exactly():
    hop, n_fft = TINY.hop, TINY.n_fft
    frames = 20
    x = torch.randn(1, (frames + 2) * hop, dtype=torch.float64)
    y = overlap_add(frames_stft(x, n_fft, hop), n_fft, hop)
    inner = slice(2 * hop, frames * hop)
    assert torch.allclose(y[:, inner], x[:, inner], atol=1e-9)


@pytest.mark.parametrize("rate", [8000, 44100, 11025, 192000])
def test_grid_resampler_is_chunk_independent_and_accurate(rate):
    t = np.arange(int(rate * 4.7)) / rate
    x = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    whole = GridResampler(rate, 48000)
    a = np.concatenate([whole.push(x), whole.finish()])
    chunked = GridResampler(rate, 48000)
    parts = [chunked.push(x[i : i + 3001]) for i in range(0, len(x), 3001)] + [chunked.finish()]
    b = np.concatenate(parts)
    assert np.array_equal(a, b)
    assert len(a) == int(np.ceil(len(x) * 48000 / rate))
    ref = 0.5 * np.sin(2 * np.pi * 440 * np.arange(len(a)) / 48000)
    inner = slice(4800, len(a) - 4800)
    assert np.max(np.abs(a[inner] - ref[inner])) < 1e-3  # no seams at the 2 s block edges


def test_files_longer_than_a_block_are_covered():
    """The tests above use files of several blocks, so seams between blocks are exercised."""
    assert 7.3 * 75 > 1.5 * BLOCK_FRAMES
