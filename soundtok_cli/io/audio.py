"""Audio decoding and encoding: read any file libsndfile knows block by block, write WAV/FLAC/OGG.

Everything a user can get wrong (a missing file, a text file named .wav, a truncated download, a
sample rate we cannot use) becomes an `InputError` naming the input; libsndfile's own messages never
reach the user. Memory stays bounded: files are read and written one block at a time, and audio on
stdin is spooled to a temporary file on disk, not held in memory.
"""

from __future__ import annotations

import hashlib
import math
import os
import secrets
import shutil
import struct
import sys
import tempfile
from collections.abc import Iterator
from typing import IO

import numpy as np
import soundfile
from soundfile import _ffi, _snd  # raw libsndfile reads; see _read_into

from soundtok_cli.errors import InputError, SoundtokError, UsageError
from soundtok_cli.io.inputs import open_input

MIN_SAMPLE_RATE = 8_000
MAX_SAMPLE_RATE = 192_000
_UNKNOWN_LENGTH = 2**63 - 1  # libsndfile's frame count for a FLAC stream with no length in its header
_MAX_24 = 1.0 - 2.0**-23  # largest 24-bit PCM sample, as a float
_WAV_MAX_DATA_BYTES = 0xFFFFFFFF - 64  # RIFF sizes are 32-bit
_WRITE_FORMATS = {  # fmt -> (libsndfile format, subtype)
    "wav": ("WAV", "PCM_24"),
    "flac": ("FLAC", "PCM_24"),
    "ogg": ("OGG", "VORBIS"),
}
_EXTENSION_FORMATS = {".wav": "wav", ".wave": "wav", ".flac": "flac", ".ogg": "ogg", ".oga": "ogg"}



def output_format(path: str, fmt: str | None, option: str = "--format", subject: str = "-o") -> str:
    """The format an output path is written in: `fmt` when given, WAV for stdout ("-"), else the
    file's extension; a UsageError (naming `option`, or `subject` for the path) when none tells."""
    if fmt:
        if fmt not in _WRITE_FORMATS:
            raise UsageError(f"unknown format '{fmt}' ({', '.join(_WRITE_FORMATS)})", option)
        return fmt
    if path == "-":
        return "wav"
    found = _EXTENSION_FORMATS.get(os.path.splitext(path)[1].lower())
    if found is None:
        raise UsageError(f"cannot tell the audio format from '{path}'; end it in .wav, .flac or .ogg "
                         f"or give {option}", subject)
    return found


EMPTY = "empty file"
NOT_AUDIO = "not an audio file or unsupported format"
CORRUPT = "truncated or corrupt audio data"
NOT_FINITE = "contains NaN or infinite samples"
ZERO_LENGTH = "no audio (zero length)"


class _ReadError(Exception):
    """libsndfile reported an error while decoding."""


class AudioReader:
    """An open audio input. Use `open_audio`; read with `blocks`; close (or use `with`).

    `frames` is the length the file declares: exact for WAV, FLAC, OGG and for MP3 with a
    Xing/Info header, an estimate from the file size for other MP3. Once `blocks` has run to the
    end it is the number of frames actually decoded.
    """

    def __init__(self, source: str, handle: IO[bytes]):
        self.source = source
        self._handle = handle  # the file (or stdin's spool), read by libsndfile through its fd
        self._sf: soundfile.SoundFile | None = None
        self._position = 0
        self._open_sf()
        sf = self._sf
        self.sample_rate = int(sf.samplerate)
        self.channels = int(sf.channels)
        self.format = str(sf.format)
        self.subtype = str(sf.subtype)
        self.frames = int(sf.frames)
        # Formats whose declared length is exact, so that decoding fewer frames means damage.
        # (libsndfile trims WAV-like lengths to the data present; OGG is checked page by page.)
        self._exact_length = self.format == "FLAC" or (
            self.format == "MP3" and _mp3_declares_length(handle.fileno())
        )

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate

    def _open_sf(self) -> None:
        """(Re)open libsndfile on our fd from the start of the file."""
        if self._sf is not None:
            self._sf.close()
            self._sf = None
        fd = self._handle.fileno()
        os.lseek(fd, 0, os.SEEK_SET)
        try:
            self._sf = soundfile.SoundFile(fd, closefd=False)
        except soundfile.LibsndfileError as error:
            raise InputError(_open_error_message(error), self.source) from None
        self._position = 0

    def _validate(self) -> None:
        if self.format == "OGG" and not _ogg_pages_complete(self._handle.fileno()):
            raise InputError(CORRUPT, self.source)
        if not MIN_SAMPLE_RATE <= self.sample_rate <= MAX_SAMPLE_RATE:
            raise InputError(
                f"sample rate {self.sample_rate} Hz is outside "
                f"{MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz",
                self.source,
            )
        if self.frames >= _UNKNOWN_LENGTH:
            # A FLAC stream written to a pipe leaves its length out; count it once.
            self.frames = sum(len(block) for block in self._decode(1 << 16, check=False))
            self._open_sf()
        if self.frames == 0:
            raise InputError(ZERO_LENGTH, self.source)

    def blocks(self, block_frames: int = 65536) -> Iterator[np.ndarray]:
        """Yield float32 arrays shaped (n, channels), n <= block_frames, from the start of the file.

        Raises InputError for NaN/Inf samples and for data that ends early or cannot be decoded.
        """
        if block_frames < 1:
            raise ValueError("block_frames must be positive")
        if self._position:
            self._open_sf()
        decoded = 0
        for block in self._decode(block_frames, check=True):
            decoded += len(block)
            yield block
        if self._exact_length and decoded < self.frames:
            raise InputError(CORRUPT, self.source)
        self.frames = decoded

    def _decode(self, block_frames: int, check: bool) -> Iterator[np.ndarray]:
        while True:
            block = np.empty((block_frames, self.channels), dtype=np.float32)
            try:
                n = _read_into(self._sf, block)
            except _ReadError:
                raise InputError(CORRUPT, self.source) from None
            if n == 0:
                return
            self._position += n
            block = block[:n]
            if check and not np.isfinite(block).all():
                raise InputError(NOT_FINITE, self.source)
            yield block

    def close(self) -> None:
        if self._sf is not None:
            self._sf.close()
            self._sf = None
        self._handle.close()

    def __enter__(self) -> AudioReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"AudioReader({self.source!r}, {self.format}/{self.subtype}, {self.sample_rate} Hz, "
            f"{self.channels} ch, {self.frames} frames)"
        )


def open_audio(source: str) -> AudioReader:
    """Open a file path, or "-" for a WAV/FLAC/OGG/... stream on stdin, and validate it."""
    handle = _spool_stdin() if source == "-" else open_input(source)
    try:
        if os.fstat(handle.fileno()).st_size == 0:
            raise InputError(EMPTY, source)
        reader = AudioReader(source, handle)
    except BaseException:
        handle.close()
        raise
    try:
        reader._validate()
    except BaseException:
        reader.close()
        raise
    return reader



def _spool_stdin() -> IO[bytes]:
    """Copy stdin to an unnamed temporary file: libsndfile needs to seek, and a pipe cannot.

    This also makes streams whose WAV header gives an unknown or oversized length readable:
    libsndfile trims the length to the data actually present in the file.
    """
    if sys.stdin is None:
        raise InputError("no standard input", "-")
    if sys.stdin.isatty():
        raise UsageError("refusing to read audio from a terminal; give input files or pipe audio in", "-")
    spool = tempfile.TemporaryFile(prefix="soundtok-stdin-")
    try:
        shutil.copyfileobj(getattr(sys.stdin, "buffer", sys.stdin), spool, 1 << 20)
        spool.flush()
    except BaseException:
        spool.close()
        raise
    return spool


def _read_into(sf: soundfile.SoundFile, out: np.ndarray) -> int:
    """Decode up to len(out) frames into the C-contiguous float32 array `out`; return the count.

    Calls libsndfile directly: SoundFile.read() seeks after every read, which fails at the end of a
    FLAC stream without a length in its header (what ffmpeg or sox write to a pipe) and loses the
    last block.
    """
    pointer = _ffi.cast("float *", _ffi.from_buffer(out))
    n = _snd.sf_readf_float(sf._file, pointer, len(out))
    if _snd.sf_error(sf._file):
        raise _ReadError(_ffi.string(_snd.sf_strerror(sf._file)).decode(errors="replace"))
    return int(n)


def _open_error_message(error: soundfile.LibsndfileError) -> str:
    # 1: format not recognised; 7 (mpg123 found no MPEG frame) and 18 (unimplemented format) are
    # what a non-audio or exotic file gets; the rest (malformed, no data chunk, ...) mean damage.
    if error.code in (1, 4, 7, 18):
        return NOT_AUDIO
    return CORRUPT


def _ogg_pages_complete(fd: int) -> bool:
    """Walk the Ogg pages: a cut-off file ends inside a page or without an end-of-stream flag.

    libsndfile cannot tell: it takes the length from the last page it can find and drops the rest.
    """
    size = os.fstat(fd).st_size
    position, flags = 0, 0
    while position < size:
        header = os.pread(fd, 27, position)
        if len(header) < 27 or header[:4] != b"OggS":
            return False
        flags, segments = header[5], header[26]
        table = os.pread(fd, segments, position + 27)
        if len(table) < segments:
            return False
        position += 27 + segments + sum(table)
    return position == size and bool(flags & 0x04)


def _mp3_declares_length(fd: int) -> bool:
    """True if the MP3 has a Xing/Info/VBRI header, which gives libsndfile the exact length."""
    head = os.pread(fd, 1 << 16, 0)
    start = 0
    if head[:3] == b"ID3" and len(head) >= 10:  # skip an ID3v2 tag: syncsafe 28-bit size
        size = (head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9]
        start = 10 + size + (10 if head[5] & 0x10 else 0)
        if start + 64 > len(head):
            head = os.pread(fd, 4096, start)
            start = 0
    sync = head.find(b"\xff", start)
    while sync != -1 and sync + 1 < len(head):
        if head[sync + 1] & 0xE0 == 0xE0:  # first frame sync; the tag sits in that frame's data
            frame = head[sync : sync + 64]
            for tag in (b"Xing", b"Info"):
                at = frame.find(tag, 4, 44)
                if at != -1 and len(frame) >= at + 12:
                    flags, count = struct.unpack(">II", frame[at + 4 : at + 12])
                    return bool(flags & 1) and count > 0  # flag 1: the frame count is present
            return frame.find(b"VBRI", 4, 44) != -1
        sync = head.find(b"\xff", sync + 1)
    return False


class PcmHasher:
    """Incremental content hash of one channel: sha256 over its float32 little-endian samples.

    Feed it `block[:, channel]` for each block from `AudioReader.blocks`.
    """

    def __init__(self) -> None:
        self._sha = hashlib.sha256()

    def update(self, samples: np.ndarray) -> PcmHasher:
        samples = np.asarray(samples)
        if samples.ndim == 2 and samples.shape[1] == 1:
            samples = samples[:, 0]
        if samples.ndim != 1:
            raise ValueError(f"PcmHasher hashes one channel; got shape {samples.shape}")
        self._sha.update(np.ascontiguousarray(samples, dtype="<f4").tobytes())
        return self

    def hexdigest(self) -> str:
        return "sha256:" + self._sha.hexdigest()


def content_hash(samples: np.ndarray) -> str:
    """The `PcmHasher` digest of one channel's samples, in one call."""
    return PcmHasher().update(samples).hexdigest()


class AudioWriter:
    """Write audio block by block: a file atomically, or "-" as a 24-bit WAV stream to stdout.

    Files are written under a temporary name in the target directory and renamed on `close`;
    `abort` (or an exception inside `with`) deletes them, leaving any old file untouched.
    For "-", `frames` must be given: the WAV header goes first, so stdout can be a pipe.
    """

    def __init__(
        self,
        path: str,
        sample_rate: int,
        channels: int,
        fmt: str | None = None,
        frames: int | None = None,
    ):
        self.path = path
        self.channels = channels
        self.frames_written = 0
        self.peak = 0.0  # the highest absolute sample asked for, before clipping
        self.clipped = 0  # samples beyond full scale, written as full scale
        self._frames = frames
        self._sf: soundfile.SoundFile | None = None
        self._tmp: str | None = None
        self._stream: IO[bytes] | None = None
        self._closed = False
        if channels < 1:
            raise ValueError("channels must be positive")
        if path == "-":
            self._open_stream(sample_rate, fmt, frames)
        else:
            self._open_file(sample_rate, fmt)

    def _open_stream(self, sample_rate: int, fmt: str | None, frames: int | None) -> None:
        from soundtok_cli.io.inputs import refuse_binary_to_terminal

        if fmt not in (None, "wav"):
            raise UsageError(f"only WAV can be written to stdout, not {fmt}", "-")
        if frames is None:
            raise ValueError("writing to stdout needs the frame count up front")
        refuse_binary_to_terminal("WAV stream")
        self._stream = sys.stdout.buffer
        self._stream.write(_wav_header(frames, self.channels, sample_rate))

    def _open_file(self, sample_rate: int, fmt: str | None) -> None:
        fmt = fmt or _EXTENSION_FORMATS.get(os.path.splitext(self.path)[1].lower())
        if fmt not in _WRITE_FORMATS:
            raise UsageError(
                "cannot tell the audio format from the file name; use .wav, .flac or .ogg"
                if fmt is None
                else f"unknown audio format {fmt!r}; use wav, flac or ogg",
                self.path,
            )
        self._format = fmt
        directory, name = os.path.split(os.path.abspath(self.path))
        self._tmp = os.path.join(directory, f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            # O_EXCL: never follow a planted name; mode 0o666 so the umask applies as usual.
            os.close(os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            major, subtype = _WRITE_FORMATS[fmt]
            self._sf = soundfile.SoundFile(
                self._tmp, "w", sample_rate, self.channels, subtype, format=major
            )
        except (OSError, soundfile.LibsndfileError) as error:
            self._tmp = self._tmp if os.path.exists(self._tmp) else None
            self.abort()
            raise SoundtokError(f"cannot write ({_os_message(error)})", self.path) from None

    def write(self, block: np.ndarray) -> None:
        """Append float32 samples shaped (n, channels) (or (n,) for mono), clipped to [-1, 1)."""
        if self._closed:
            raise ValueError("write to a closed AudioWriter")
        block = np.asarray(block, dtype=np.float32)
        if block.ndim == 1:
            block = block[:, None]
        if block.ndim != 2 or block.shape[1] != self.channels:
            raise ValueError(f"expected (n, {self.channels}) samples, got shape {block.shape}")
        if not np.isfinite(block).all():
            raise ValueError("samples contain NaN or infinite values")
        magnitude = np.abs(block)
        self.peak = max(self.peak, float(magnitude.max(initial=0.0)))
        self.clipped += int(np.count_nonzero(magnitude > 1.0))
        block = np.clip(block, -1.0, _MAX_24)
        total = self.frames_written + len(block)
        if self._stream is not None:
            if total > self._frames:
                raise ValueError(f"more than the {self._frames} frames promised in the WAV header")
            self._stream.write(_pcm24_bytes(block))
            self._stream.flush()  # a reader downstream of the pipe gets each block as it is made
        else:
            if self._format == "wav" and total * self.channels * 3 > _WAV_MAX_DATA_BYTES:
                self.abort()
                raise SoundtokError("too long for WAV (over 4 GiB of samples); use .flac", self.path)
            try:
                self._sf.write(block)
            except (OSError, soundfile.LibsndfileError) as error:
                self.abort()
                raise SoundtokError(f"cannot write ({_os_message(error)})", self.path) from None
        self.frames_written = total

    def clipping(self) -> str | None:
        """What clipped, for a warning (None when nothing did): integer formats hold nothing
        beyond full scale, so louder samples were written at full scale."""
        if not self.clipped:
            return None
        return f"{self.clipped:,} sample{'' if self.clipped == 1 else 's'} clipped at full scale (peak {20 * np.log10(self.peak):+.1f} dBFS)"

    def reduction_to_fit_db(self) -> int:
        """The whole dB by which to lower the level so the peak asked for is at most -1 dBFS (0 when
        it already is): what a clipping warning suggests."""
        return max(0, math.ceil(20 * math.log10(max(self.peak, 1e-12)) + 1.0))

    def close(self) -> None:
        """Finish: rename the file into place, or flush the stream."""
        if self._closed:
            return
        if self._stream is not None:
            self._closed = True
            if self.frames_written != self._frames:
                raise ValueError(
                    f"wrote {self.frames_written} of the {self._frames} frames in the WAV header"
                )
            if self.frames_written * self.channels * 3 % 2:
                self._stream.write(b"\0")  # RIFF pads chunks to an even size
            self._stream.flush()
            return
        try:
            self._sf.close()
            os.replace(self._tmp, self.path)
        except (OSError, soundfile.LibsndfileError) as error:
            self.abort()
            raise SoundtokError(f"cannot write ({_os_message(error)})", self.path) from None
        self._closed = True

    def abort(self) -> None:
        """Give up: delete the temporary file (the stream, already sent, just stops)."""
        self._closed = True
        if self._sf is not None:
            try:
                self._sf.close()
            except Exception:
                pass
            self._sf = None
        if self._tmp is not None:
            try:
                os.unlink(self._tmp)
            except FileNotFoundError:
                pass
            self._tmp = None

    def __enter__(self) -> AudioWriter:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_audio(path: str, samples: np.ndarray, sample_rate: int, fmt: str | None = None) -> None:
    """Write (n, channels) float32 samples to `path` (wav/flac/ogg, from the extension unless
    `fmt` says), or to stdout as WAV when path is "-". Atomic for files."""
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim == 1:
        samples = samples[:, None]
    with AudioWriter(path, sample_rate, samples.shape[1], fmt, frames=len(samples)) as writer:
        for start in range(0, len(samples), 1 << 16):
            writer.write(samples[start : start + (1 << 16)])


def _wav_header(frames: int, channels: int, sample_rate: int) -> bytes:
    """A 44-byte RIFF/WAVE header for 24-bit PCM with the sizes filled in."""
    block_align = channels * 3
    data_bytes = frames * block_align
    if data_bytes > _WAV_MAX_DATA_BYTES:
        raise UsageError("too long for a WAV stream (over 4 GiB); write a .flac file with -o", "-")
    riff_bytes = 4 + (8 + 16) + (8 + data_bytes + data_bytes % 2)
    fmt_chunk = struct.pack(
        "<HHIIHH", 1, channels, sample_rate, sample_rate * block_align, block_align, 24
    )
    return (
        struct.pack("<4sI4s", b"RIFF", riff_bytes, b"WAVE")
        + struct.pack("<4sI", b"fmt ", len(fmt_chunk)) + fmt_chunk
        + struct.pack("<4sI", b"data", data_bytes)
    )


def _pcm24_bytes(block: np.ndarray) -> bytes:
    """Interleaved little-endian 24-bit PCM for (n, channels) samples already clipped to [-1, 1)."""
    ints = np.rint(block * np.float32(2**23)).astype("<i4")
    return ints.view(np.uint8).reshape(-1, 4)[:, :3].tobytes()


def _os_message(error: Exception) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower()
    return "the audio library failed"


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample (n,) or (n, channels) float32 samples with soxr's high-quality filter."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if sr_in == sr_out:
        return x
    import soxr

    return soxr.resample(x, sr_in, sr_out, quality="HQ")


class StreamResampler:
    """`resample` for a sequence of (n, channels) blocks, without seams between them.

    Call `process(block)` for each block and `process(empty, last=True)` (or the last block with
    last=True) to flush the filter's tail.
    """

    def __init__(self, sr_in: int, sr_out: int, channels: int):
        self.channels = channels
        self._stream = None
        if sr_in != sr_out:
            import soxr

            self._stream = soxr.ResampleStream(sr_in, sr_out, channels, dtype="float32", quality="HQ")

    def process(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        block = np.ascontiguousarray(block, dtype=np.float32).reshape(-1, self.channels)
        if self._stream is None:
            return block
        return self._stream.resample_chunk(block, last=last).reshape(-1, self.channels)
