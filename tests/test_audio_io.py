"""soundtok_cli.io.audio: reading every format, stdin, bad inputs, content hashes, writing, resampling.

All test audio is generated here (numpy + soundfile, sox, ffmpeg, opusenc) in tmp_path.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest
import soundfile

from soundtok_cli.errors import InputError, SoundtokError, UsageError
from soundtok_cli.io import audio
from soundtok_cli.io.audio import (
    AudioWriter,
    PcmHasher,
    StreamResampler,
    content_hash,
    open_audio,
    resample,
    write_audio,
)

from factories import PipeSink

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
needs_sox = pytest.mark.skipif(shutil.which("sox") is None, reason="sox not installed")
needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")


def sine(sample_rate: int, seconds: float = 0.25, channels: int = 1) -> np.ndarray:
    """(n, channels) float32: channel c is a sine at 220 * (c + 1) Hz, amplitude 0.5."""
    t = np.arange(int(sample_rate * seconds)) / sample_rate
    freqs = 220.0 * (np.arange(channels) + 1)
    return (0.5 * np.sin(2 * np.pi * t[:, None] * freqs)).astype(np.float32)


def read_all(source: str, block_frames: int = 4096) -> np.ndarray:
    with open_audio(source) as reader:
        blocks = list(reader.blocks(block_frames))
    return np.concatenate(blocks) if blocks else np.zeros((0, 1), np.float32)


def peak_frequency(x: np.ndarray, sample_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / sample_rate)[np.argmax(spectrum)])


def run(*cmd: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, capture_output=True, env=ENV, timeout=60, **kwargs)


@functools.cache
def lame_available() -> bool:
    if shutil.which("ffmpeg") is None:
        return False
    return b"libmp3lame" in run("ffmpeg", "-hide_banner", "-encoders").stdout


def make_mp3(path, x: np.ndarray, sample_rate: int, xing: bool = True) -> None:
    """MP3 via ffmpeg/LAME (with or without the Xing/Info length header), else soundfile's writer."""
    if lame_available():
        wav = str(path) + ".src.wav"
        soundfile.write(wav, x, sample_rate, subtype="PCM_16")
        flags = [] if xing else ["-write_xing", "0"]
        run("ffmpeg", "-v", "error", "-y", "-i", wav, "-c:a", "libmp3lame", *flags, str(path))
        os.unlink(wav)
    else:
        if not xing:
            pytest.skip("MP3 without a Xing header needs ffmpeg with libmp3lame")
        soundfile.write(str(path), x, sample_rate, format="MP3", subtype="MPEG_LAYER_III")


# --- reading every format ---------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 2, 6])
@pytest.mark.parametrize(
    "subtype, tolerance",
    [("PCM_16", 2**-15), ("PCM_24", 2**-23), ("PCM_32", 2**-31), ("FLOAT", 0.0)],
)
def test_wav_subtypes_and_channels(tmp_path, subtype, tolerance, channels):
    x = sine(44100, 0.1, channels)
    path = str(tmp_path / "x.wav")
    soundfile.write(path, x, 44100, subtype=subtype)
    with open_audio(path) as reader:
        assert (reader.source, reader.sample_rate, reader.channels) == (path, 44100, channels)
        assert reader.format in ("WAV", "WAVEX") and reader.subtype == subtype
        assert reader.frames == len(x) and reader.duration == pytest.approx(0.1)
        y = np.concatenate(list(reader.blocks(1000)))
    assert y.dtype == np.float32 and y.shape == x.shape
    assert np.abs(y - x).max() <= tolerance


@pytest.mark.parametrize("sample_rate", [8000, 44100, 48000, 96000, 192000])
@pytest.mark.parametrize("ext", ["wav", "flac"])
def test_lossless_sample_rates(tmp_path, sample_rate, ext):
    x = sine(sample_rate, 0.1, 2)
    path = str(tmp_path / f"x.{ext}")
    soundfile.write(path, x, sample_rate, subtype="PCM_24")
    with open_audio(path) as reader:
        assert reader.format == ext.upper() and reader.sample_rate == sample_rate
        assert reader.frames == len(x)
    assert np.abs(read_all(path) - x).max() <= 2**-23


@pytest.mark.parametrize("sample_rate", [8000, 44100, 48000, 96000, 192000])
def test_ogg_vorbis(tmp_path, sample_rate):
    x = sine(sample_rate, 0.25, 2)
    path = str(tmp_path / "x.ogg")
    soundfile.write(path, x, sample_rate, format="OGG", subtype="VORBIS")
    with open_audio(path) as reader:
        assert (reader.format, reader.subtype) == ("OGG", "VORBIS")
        assert (reader.sample_rate, reader.channels, reader.frames) == (sample_rate, 2, len(x))
    y = read_all(path)
    assert y.shape == x.shape
    assert peak_frequency(y[:, 0], sample_rate) == pytest.approx(220, abs=8)
    assert peak_frequency(y[:, 1], sample_rate) == pytest.approx(440, abs=8)


def test_six_channel_flac_and_ogg(tmp_path):
    x = sine(48000, 0.25, 6)
    for name, kwargs in [("x.flac", {}), ("x.ogg", {"subtype": "VORBIS"})]:
        path = str(tmp_path / name)
        soundfile.write(path, x, 48000, **kwargs)
        y = read_all(path)
        assert y.shape == (len(x), 6)
        # In Vorbis 5.1 the sixth channel is the LFE, band-limited by the encoder.
        for c in range(6 if name.endswith("flac") else 5):
            assert peak_frequency(y[:, c], 48000) == pytest.approx(220 * (c + 1), abs=8)


def test_opus_written_by_soundfile(tmp_path):
    x = sine(48000, 0.25, 2)
    path = str(tmp_path / "x.opus")
    soundfile.write(path, x, 48000, format="OGG", subtype="OPUS")
    with open_audio(path) as reader:
        assert (reader.format, reader.subtype, reader.sample_rate) == ("OGG", "OPUS", 48000)
        assert reader.frames == len(x)
    y = read_all(path)
    assert peak_frequency(y[:, 1], 48000) == pytest.approx(440, abs=8)


@pytest.mark.skipif(shutil.which("opusenc") is None, reason="opusenc not installed")
def test_opus_from_opusenc_decodes_at_48k(tmp_path):
    wav, opus = str(tmp_path / "x.wav"), str(tmp_path / "x.opus")
    soundfile.write(wav, sine(44100, 0.5, 1), 44100, subtype="PCM_16")
    run("opusenc", "--quiet", wav, opus)
    with open_audio(opus) as reader:
        assert (reader.subtype, reader.sample_rate, reader.channels) == ("OPUS", 48000, 1)
        assert reader.frames == 24000
    assert peak_frequency(read_all(opus)[:, 0], 48000) == pytest.approx(220, abs=8)


@pytest.mark.parametrize("sample_rate", [8000, 44100, 48000])
def test_mp3(tmp_path, sample_rate):
    x = sine(sample_rate, 0.5, 2)
    path = str(tmp_path / "x.mp3")
    make_mp3(path, x, sample_rate)
    with open_audio(path) as reader:
        assert (reader.format, reader.subtype) == ("MP3", "MPEG_LAYER_III")
        assert (reader.sample_rate, reader.channels) == (sample_rate, 2)
        assert reader.frames == len(x)  # the LAME/Xing header gives the exact length
    y = read_all(path)
    assert len(y) == len(x)
    assert peak_frequency(y[:, 0], sample_rate) == pytest.approx(220, abs=8)


def test_other_containers(tmp_path):
    x = sine(22050, 0.1, 2)
    for name, fmt in [("x.aiff", "AIFF"), ("x.w64", "W64"), ("x.rf64", "RF64")]:
        path = str(tmp_path / name)
        soundfile.write(path, x, 22050, format=fmt, subtype="PCM_16")
        with open_audio(path) as reader:
            assert reader.format == fmt
        assert np.abs(read_all(path) - x).max() <= 2**-15


def test_blocks_equal_whole_read_for_every_format(tmp_path):
    x = sine(44100, 0.3, 2)
    paths = []
    for name, kwargs in [
        ("a.wav", {"subtype": "PCM_16"}),
        ("a.flac", {}),
        ("a.ogg", {"subtype": "VORBIS"}),
        ("a.opus", {"format": "OGG", "subtype": "OPUS"}),
    ]:
        paths.append(str(tmp_path / name))
        rate = 48000 if name.endswith("opus") else 44100
        soundfile.write(paths[-1], x, rate, **kwargs)
    paths.append(str(tmp_path / "a.mp3"))
    make_mp3(paths[-1], x, 44100)
    for path in paths:
        whole, _ = soundfile.read(path, dtype="float32", always_2d=True)
        with open_audio(path) as reader:
            for block_frames in (7, 4096, 10**6):
                blocks = list(reader.blocks(block_frames))
                assert all(b.dtype == np.float32 and b.shape[1] == 2 for b in blocks)
                assert all(len(b) == block_frames for b in blocks[:-1])
                np.testing.assert_array_equal(np.concatenate(blocks), whole, err_msg=path)


def test_blocks_stop_early_then_restart(tmp_path):
    path = str(tmp_path / "x.flac")
    x = sine(16000, 0.5, 1)
    soundfile.write(path, x, 16000)
    with open_audio(path) as reader:
        first = next(reader.blocks(100))
        again = np.concatenate(list(reader.blocks(1000)))
    np.testing.assert_array_equal(first, again[:100])
    assert len(again) == len(x)


# --- stdin --------------------------------------------------------------------------------------


class _Stdin:
    """Stands in for sys.stdin with a binary stream as .buffer."""

    def __init__(self, buffer, tty: bool = False):
        self.buffer = buffer
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


def read_stdin_from(monkeypatch, producer: list[str], stdin_bytes: bytes | None = None):
    """Run `producer` with its stdout as our sys.stdin (a real pipe); return (reader facts, audio)."""
    proc = subprocess.Popen(
        producer, stdin=subprocess.PIPE if stdin_bytes else subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=ENV,
    )  # fmt: skip
    if stdin_bytes:  # small inputs: the pipe buffer holds them
        proc.stdin.write(stdin_bytes)
        proc.stdin.close()
    monkeypatch.setattr(sys, "stdin", _Stdin(proc.stdout))
    try:
        with open_audio("-") as reader:
            facts = (reader.source, reader.format, reader.sample_rate, reader.channels, reader.frames)
            y = np.concatenate(list(reader.blocks(4096)))
    finally:
        proc.stdout.close()
        proc.wait(timeout=30)
    return facts, y


@needs_sox
def test_stdin_wav_from_sox_with_unknown_length(monkeypatch, tmp_path):
    """sox reading raw audio from a pipe cannot know the length: its WAV header says ~2 GiB."""
    x = sine(44100, 0.5, 2)
    raw = (np.clip(x, -1, 1 - 2**-15) * 32768).astype("<i2").tobytes()
    producer = ["sox", "-t", "raw", "-r", "44100", "-c", "2", "-e", "signed", "-b", "16", "-",
                "-t", "wav", "-"]  # fmt: skip
    head = run(*producer, input=raw).stdout[:44]
    assert struct.unpack("<I", head[40:44])[0] > 10 * len(raw)  # oversized data chunk
    facts, y = read_stdin_from(monkeypatch, producer, stdin_bytes=raw)
    assert facts == ("-", "WAV", 44100, 2, len(x))
    assert np.abs(y - x).max() <= 2**-15


@needs_ffmpeg
def test_stdin_wav_and_flac_from_ffmpeg_pipe(monkeypatch, tmp_path):
    """ffmpeg writing to a pipe leaves lengths out: 0xFFFFFFFF in WAV, 0 samples in FLAC."""
    src = str(tmp_path / "src.wav")
    x = sine(48000, 0.5, 2)
    soundfile.write(src, x, 48000, subtype="PCM_24")
    for fmt, major in [("wav", "WAVEX"), ("flac", "FLAC")]:  # 24-bit: WAVE_FORMAT_EXTENSIBLE
        codec = ["-c:a", "pcm_s24le"] if fmt == "wav" else []
        producer = ["ffmpeg", "-v", "error", "-i", src, *codec, "-f", fmt, "-"]
        facts, y = read_stdin_from(monkeypatch, producer)
        assert facts == ("-", major, 48000, 2, len(x)), fmt
        assert np.abs(y - x).max() <= 2**-23, fmt


@needs_sox
def test_stdin_ogg_and_flac_from_sox(monkeypatch, tmp_path):
    for fmt, major in [("ogg", "OGG"), ("flac", "FLAC")]:
        producer = ["sox", "-n", "-r", "32000", "-c", "1", "-t", fmt, "-", "synth", "0.5", "sine", "1000"]
        facts, y = read_stdin_from(monkeypatch, producer)
        assert facts == ("-", major, 32000, 1, 16000)
        assert peak_frequency(y[:, 0], 32000) == pytest.approx(1000, abs=8)


@needs_sox
def test_stdin_end_to_end_in_a_subprocess(tmp_path):
    """`sox ... -t wav - | python reader`: the real stdin of a real process."""
    reader = (
        "import json; from soundtok_cli.io.audio import open_audio, PcmHasher\n"
        "with open_audio('-') as r:\n"
        "    h = PcmHasher(); n = 0\n"
        "    for b in r.blocks(1000): h.update(b[:, 0]); n += len(b)\n"
        "    print(json.dumps([r.format, r.sample_rate, r.channels, r.frames, n, h.hexdigest()]))\n"
    )
    sox = subprocess.Popen(
        ["sox", "-n", "-r", "16000", "-c", "1", "-b", "16", "-t", "wav", "-", "synth", "1", "sine", "440"],
        stdout=subprocess.PIPE, env=ENV,
    )  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-c", reader], stdin=sox.stdout, capture_output=True, env=ENV, timeout=60
    )
    sox.stdout.close()
    sox.wait(timeout=30)
    assert out.returncode == 0, out.stderr.decode()
    fmt, rate, channels, frames, n, digest = json.loads(out.stdout)
    assert (fmt, rate, channels, frames, n) == ("WAV", 16000, 1, 16000, 16000)
    assert digest.startswith("sha256:") and len(digest) == 7 + 64


def test_stdin_is_spooled_to_disk(monkeypatch, tmp_path):
    data = io.BytesIO()
    soundfile.write(data, sine(8000, 0.2), 8000, format="WAV", subtype="PCM_16")
    monkeypatch.setattr(sys, "stdin", _Stdin(io.BytesIO(data.getvalue())))
    with open_audio("-") as reader:
        assert os.fstat(reader._handle.fileno()).st_size == len(data.getvalue())
        assert reader.frames == 1600


def test_stdin_empty_and_terminal(monkeypatch):
    monkeypatch.setattr(sys, "stdin", _Stdin(io.BytesIO(b"")))
    with pytest.raises(InputError) as error:
        open_audio("-")
    assert str(error.value) == "-: empty file"
    monkeypatch.setattr(sys, "stdin", _Stdin(io.BytesIO(b""), tty=True))
    with pytest.raises(UsageError, match="refusing to read audio from a terminal"):
        open_audio("-")


# --- bad inputs ---------------------------------------------------------------------------------


def _empty(path):
    open(path, "wb").close()


def _text(path):
    with open(path, "w") as f:
        f.write("this is not audio\n" * 20)


def _truncated_header(path):
    soundfile.write(path, sine(8000), 8000, subtype="PCM_16")
    with open(path, "r+b") as f:
        f.truncate(30)


def _zero_length(path):
    soundfile.write(path, np.zeros((0, 1), np.float32), 8000, subtype="PCM_16")


def _rate_4k(path):
    soundfile.write(path, sine(4000), 4000, subtype="PCM_16")


def _rate_384k(path):
    soundfile.write(path, sine(384000, 0.01), 384000, subtype="PCM_16")


@pytest.mark.parametrize(
    "make, message",
    [
        (_empty, "empty file"),
        (_text, "not an audio file or unsupported format"),
        (_truncated_header, "truncated or corrupt audio data"),
        (_zero_length, "no audio (zero length)"),
        (_rate_4k, "sample rate 4000 Hz is outside 8000..192000 Hz"),
        (_rate_384k, "sample rate 384000 Hz is outside 8000..192000 Hz"),
        (None, "no such file"),
    ],
)
def test_bad_input_fails_on_open(tmp_path, make, message):
    path = str(tmp_path / "bad.wav")
    if make:
        make(path)
    with pytest.raises(InputError) as error:
        open_audio(path)
    assert str(error.value) == f"{path}: {message}"


def test_directory_and_text_named_mp3(tmp_path, capfd):
    with pytest.raises(InputError, match="is a directory"):
        open_audio(str(tmp_path))
    path = str(tmp_path / "notes.mp3")
    _text(path)
    capfd.readouterr()
    with pytest.raises(InputError) as error:
        open_audio(path)
    assert str(error.value) == f"{path}: not an audio file or unsupported format"
    assert capfd.readouterr().err == ""  # opened by fd, libsndfile does not try mpg123 on it


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_in_float_wav_fails_in_blocks(tmp_path, bad):
    x = sine(8000, 1.0)
    x[6000, 0] = bad
    path = str(tmp_path / "nan.wav")
    soundfile.write(path, x, 8000, subtype="FLOAT")
    with open_audio(path) as reader:
        blocks = reader.blocks(4000)
        assert len(next(blocks)) == 4000  # the first block is clean
        with pytest.raises(InputError) as error:
            next(blocks)
    assert str(error.value) == f"{path}: contains NaN or infinite samples"


# --- truncated files: what libsndfile does, and what the user sees ----------------------------


def _truncate(path: str, fraction: float) -> None:
    with open(path, "r+b") as f:
        f.truncate(int(os.path.getsize(path) * fraction))


def test_truncated_wav_reads_what_is_there(tmp_path):
    """libsndfile trims a WAV's declared length to the data present: shorter, no error.

    (Streams from pipes routinely declare more than they hold, so this cannot be an error.)
    """
    path = str(tmp_path / "x.wav")
    soundfile.write(path, sine(8000, 1.0, 2), 8000, subtype="PCM_16")
    _truncate(path, 0.5)
    with open_audio(path) as reader:
        assert reader.frames == (os.path.getsize(path) - 44) // 4
        assert sum(len(b) for b in reader.blocks(1000)) == reader.frames


@pytest.mark.parametrize("fraction", [0.5, 0.9, 0.99])
def test_truncated_flac_fails_while_reading(tmp_path, fraction):
    """The FLAC decoder loses sync at the cut: the blocks before it arrive, then InputError."""
    path = str(tmp_path / "x.flac")
    soundfile.write(path, sine(44100, 2.0, 2), 44100)
    _truncate(path, fraction)
    with open_audio(path) as reader:
        assert reader.frames == 88200  # STREAMINFO still promises everything
        with pytest.raises(InputError) as error:
            for _ in reader.blocks(4096):
                pass
    assert str(error.value) == f"{path}: truncated or corrupt audio data"


@pytest.mark.parametrize("subtype, rate", [("VORBIS", 44100), ("OPUS", 48000)])
@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.95])
def test_truncated_ogg_fails_on_open(tmp_path, subtype, rate, fraction):
    """libsndfile would silently drop the cut-off pages (or report 0 frames); the page walk
    catches the cut."""
    path = str(tmp_path / "x.ogg")
    soundfile.write(path, sine(rate, 2.0, 2), rate, format="OGG", subtype=subtype)
    _truncate(path, fraction)
    with pytest.raises(InputError) as error:
        open_audio(path)
    assert str(error.value) == f"{path}: truncated or corrupt audio data"


@pytest.mark.parametrize("fraction", [0.5, 0.99])
def test_truncated_mp3_with_length_header_fails_at_the_end(tmp_path, fraction):
    """mpg123 decodes what is there without complaint; the Xing/Info header's frame count shows
    what is missing."""
    path = str(tmp_path / "x.mp3")
    make_mp3(path, sine(44100, 2.0, 2), 44100)
    _truncate(path, fraction)
    with open_audio(path) as reader:
        assert reader.frames == 88200
        with pytest.raises(InputError) as error:
            for _ in reader.blocks(4096):
                pass
    assert str(error.value) == f"{path}: truncated or corrupt audio data"


def test_truncated_mp3_without_length_header_reads_what_is_there(tmp_path):
    """Without a Xing header libsndfile estimates the length from the file size, as for WAV:
    a cut file just decodes shorter."""
    path = str(tmp_path / "x.mp3")
    make_mp3(path, sine(44100, 2.0, 2), 44100, xing=False)
    _truncate(path, 0.5)
    with open_audio(path) as reader:
        estimate = reader.frames
        decoded = sum(len(b) for b in reader.blocks(4096))
        assert 0.45 * 88200 < decoded < 0.55 * 88200
        assert abs(estimate - decoded) < 0.05 * decoded
        assert reader.frames == decoded  # updated to the truth once read


# --- content hash -------------------------------------------------------------------------------


def test_pcm_hasher_incremental_equals_whole(tmp_path):
    x = sine(16000, 0.5, 2)
    path = str(tmp_path / "x.wav")
    soundfile.write(path, x, 16000, subtype="FLOAT")
    hashers = [PcmHasher(), PcmHasher()]
    with open_audio(path) as reader:
        for block in reader.blocks(333):
            for c, hasher in enumerate(hashers):
                hasher.update(block[:, c])
    for c in range(2):
        expected = "sha256:" + hashlib.sha256(x[:, c].astype("<f4").tobytes()).hexdigest()
        assert hashers[c].hexdigest() == expected == content_hash(x[:, c])
    assert hashers[0].hexdigest() != hashers[1].hexdigest()
    assert content_hash(x[:, :1]) == content_hash(x[:, 0])  # (n, 1) is one channel too
    assert content_hash(x[:, 0].astype(np.float64)) == content_hash(x[:, 0])
    with pytest.raises(ValueError):
        PcmHasher().update(x)


# --- writing ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, major, subtype", [
    ("out.wav", "WAV", "PCM_24"), ("out.flac", "FLAC", "PCM_24"), ("out.ogg", "OGG", "VORBIS"),
])  # fmt: skip
def test_write_audio_round_trip(tmp_path, name, major, subtype):
    x = sine(48000, 0.5, 2)
    path = str(tmp_path / name)
    write_audio(path, x, 48000)
    info = soundfile.info(path)
    assert (info.format, info.subtype, info.samplerate, info.channels) == (major, subtype, 48000, 2)
    y, _ = soundfile.read(path, dtype="float32", always_2d=True)
    assert y.shape == x.shape
    if major == "OGG":
        assert peak_frequency(y[:, 1], 48000) == pytest.approx(440, abs=8)
    else:
        assert np.abs(y - x).max() <= 2**-23
    assert os.listdir(tmp_path) == [name]  # no temporary file left behind


def test_write_audio_explicit_format_mono_and_clipping(tmp_path):
    path = str(tmp_path / "out.bin")
    x = np.array([1.5, 1.0, 0.25, -1.0, -1.5], np.float32)
    write_audio(path, x, 8000, fmt="flac")
    y, _ = soundfile.read(path, dtype="float32")
    assert soundfile.info(path).format == "FLAC"
    np.testing.assert_allclose(y, [1 - 2**-23, 1 - 2**-23, 0.25, -1.0, -1.0], atol=2**-24)


def test_writer_counts_what_it_clips(tmp_path):
    with AudioWriter(str(tmp_path / "a.wav"), 8000, 1) as writer:
        writer.write(np.array([0.5, -0.9, 1.0], np.float32))
        assert writer.clipping() is None and writer.peak == pytest.approx(1.0)
        assert writer.reduction_to_fit_db() == 1      # full scale is 1 dB over -1 dBFS
        writer.write(np.array([2.0, -1.5, 0.1, 1.25], np.float32))
    assert writer.clipped == 3 and writer.peak == pytest.approx(2.0)
    assert writer.clipping() == "3 samples clipped at full scale (peak +6.0 dBFS)"
    assert writer.reduction_to_fit_db() == 8          # +6.02 dBFS down to -1 dBFS or below: 7.02 -> 8 whole dB


def test_write_audio_refuses_unknown_format_and_reports_os_errors(tmp_path):
    x = sine(8000)
    with pytest.raises(UsageError, match="cannot tell the audio format"):
        write_audio(str(tmp_path / "out.mp4"), x, 8000)
    with pytest.raises(UsageError, match="unknown audio format 'mp3'"):
        write_audio(str(tmp_path / "out.wav"), x, 8000, fmt="mp3")
    with pytest.raises(SoundtokError) as error:
        write_audio(str(tmp_path / "missing-dir" / "out.wav"), x, 8000)
    assert "cannot write (no such file or directory)" in str(error.value)
    assert sorted(os.listdir(tmp_path)) == []


def test_audio_writer_is_atomic(tmp_path):
    path = tmp_path / "out.flac"
    x = sine(16000, 1.0, 2)
    with AudioWriter(str(path), 16000, 2) as writer:
        for start in range(0, len(x), 1000):
            writer.write(x[start : start + 1000])
            assert not path.exists()  # only the temporary name exists until close
            (tmp,) = os.listdir(tmp_path)
            assert tmp.startswith(".out.flac.") and tmp.endswith(".tmp")
    np.testing.assert_allclose(soundfile.read(str(path), dtype="float32")[0], x, atol=2**-23)
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


def test_audio_writer_abort_leaves_old_file_alone(tmp_path):
    path = str(tmp_path / "out.wav")
    write_audio(path, sine(8000, 0.1), 8000)
    before = open(path, "rb").read()
    with pytest.raises(RuntimeError):
        with AudioWriter(path, 8000, 1) as writer:
            writer.write(sine(8000, 0.5))
            raise RuntimeError("interrupted")
    assert open(path, "rb").read() == before
    assert os.listdir(tmp_path) == ["out.wav"]
    writer = AudioWriter(path, 8000, 1)
    writer.write(sine(8000, 0.5))
    writer.abort()
    assert os.listdir(tmp_path) == ["out.wav"]


def test_audio_writer_checks_shape_and_values(tmp_path):
    with AudioWriter(str(tmp_path / "x.wav"), 8000, 2) as writer:
        with pytest.raises(ValueError, match="expected"):
            writer.write(np.zeros((10, 3), np.float32))
        with pytest.raises(ValueError, match="NaN"):
            writer.write(np.full((10, 2), np.nan, np.float32))
        writer.write(np.zeros((10, 2), np.float32))
    assert soundfile.info(str(tmp_path / "x.wav")).frames == 10


def test_wav_over_4_gib_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(audio, "_WAV_MAX_DATA_BYTES", 3000)  # stands in for 4 GiB
    path = str(tmp_path / "big.wav")
    with pytest.raises(SoundtokError, match="too long for WAV"):
        write_audio(path, sine(8000, 0.2), 8000)  # 1600 frames * 3 bytes
    assert os.listdir(tmp_path) == []
    with pytest.raises(UsageError, match="too long for a WAV stream"):
        audio._wav_header(1600, 1, 8000)


class _Stdout:
    def __init__(self, tty: bool = False):
        self.buffer = PipeSink()
        self._tty = tty

    def isatty(self):
        return self._tty


@pytest.mark.parametrize("frames, channels", [(8000, 2), (801, 1), (999, 6)])
def test_write_wav_to_non_seekable_stdout(monkeypatch, frames, channels):
    stdout = _Stdout()
    monkeypatch.setattr(sys, "stdout", stdout)
    x = (np.random.default_rng(0).uniform(-1, 1, (frames, channels))).astype(np.float32)
    with AudioWriter("-", 22050, channels, frames=frames) as writer:
        for start in range(0, frames, 500):
            writer.write(x[start : start + 500])
    data = bytes(stdout.buffer.data)
    riff, riff_size, wave = struct.unpack("<4sI4s", data[:12])
    data_size = struct.unpack("<I", data[40:44])[0]
    assert (riff, wave, data[36:40]) == (b"RIFF", b"WAVE", b"data")
    assert data_size == frames * channels * 3
    assert riff_size == len(data) - 8 and len(data) % 2 == 0
    y, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    assert rate == 22050 and soundfile.info(io.BytesIO(data)).subtype == "PCM_24"
    assert np.abs(y - np.clip(x, -1, 1 - 2**-23)).max() <= 2**-24


def test_write_to_stdout_rules(monkeypatch):
    monkeypatch.setattr(sys, "stdout", _Stdout())
    with pytest.raises(ValueError, match="frame count"):
        AudioWriter("-", 8000, 1)
    with pytest.raises(UsageError, match="only WAV"):
        AudioWriter("-", 8000, 1, fmt="flac", frames=10)
    writer = AudioWriter("-", 8000, 1, frames=10)
    with pytest.raises(ValueError, match="more than the 10 frames"):
        writer.write(np.zeros(11, np.float32))
    writer.write(np.zeros(5, np.float32))
    with pytest.raises(ValueError, match="wrote 5 of the 10 frames"):
        writer.close()
    monkeypatch.setattr(sys, "stdout", _Stdout(tty=True))
    with pytest.raises(UsageError, match="refusing to write a binary WAV stream to a terminal"):
        write_audio("-", np.zeros(10, np.float32), 8000)


def test_write_wav_to_a_real_pipe():
    """write_audio("-") in a subprocess whose stdout is a pipe; the bytes parse back."""
    writer = (
        "import numpy as np; from soundtok_cli.io.audio import write_audio\n"
        "t = np.arange(24000) / 24000\n"
        "x = np.stack([0.5 * np.sin(2 * np.pi * 300 * t), 0.25 * np.sin(2 * np.pi * 600 * t)], 1)\n"
        "write_audio('-', x.astype(np.float32), 24000)\n"
    )
    out = run(sys.executable, "-c", writer).stdout
    y, rate = soundfile.read(io.BytesIO(out), dtype="float32", always_2d=True)
    assert rate == 24000 and y.shape == (24000, 2)
    assert peak_frequency(y[:, 0], 24000) == pytest.approx(300, abs=2)
    assert np.abs(y).max(axis=0) == pytest.approx([0.5, 0.25], abs=1e-3)


# --- resampling ---------------------------------------------------------------------------------


def test_resample_keeps_pitch_and_length():
    x = sine(44100, 1.0, 2)
    y = resample(x, 44100, 48000)
    assert y.dtype == np.float32 and y.shape == (48000, 2)
    assert peak_frequency(y[:, 0], 48000) == pytest.approx(220, abs=2)
    assert peak_frequency(y[:, 1], 48000) == pytest.approx(440, abs=2)
    mono = resample(x[:, 0], 44100, 16000)
    assert mono.shape == (16000,)
    assert resample(x, 44100, 44100) is not None and np.array_equal(resample(x, 44100, 44100), x)


@pytest.mark.parametrize("channels", [1, 2])
def test_stream_resampler_matches_one_shot(channels):
    x = sine(44100, 1.0, channels)
    one_shot = resample(x, 44100, 48000)
    stream = StreamResampler(44100, 48000, channels)
    blocks = [stream.process(x[i : i + 4000]) for i in range(0, len(x), 4000)]
    blocks.append(stream.process(np.zeros((0, channels), np.float32), last=True))
    streamed = np.concatenate(blocks)
    assert streamed.shape == one_shot.shape
    np.testing.assert_allclose(streamed, one_shot, atol=1e-6)
    same = StreamResampler(8000, 8000, channels)
    np.testing.assert_array_equal(same.process(x[:100]), x[:100])
