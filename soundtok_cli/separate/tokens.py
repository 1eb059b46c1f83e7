"""Token stores through `soundtok separate`: each source of a tokens store (or stream) is decoded
with the codec the store records, restored and separated exactly as an audio file is, and comes
out as audio or, re-encoded with the same codec at the same number of levels, as tokens.

The work on each source is `restore.restore_file` itself, over a temporary file: restoration
reads its input once per analysing step (hum, hiss floor) and once more to write, so the source
is decoded once, block by block, into a float32 file on disk, and every pass reads that. Memory
holds the codes of one source and a few blocks of audio, whatever the length. For tokens out,
the outputs go to temporary files too and are encoded from there (`codec.files.encode_audio`,
block by block); each item keeps its source name, channel and sample rate, and gets the content
hash and duration of its new audio.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from soundtok_cli.errors import InputError
from soundtok_cli.separate import Settings

STORE_SUFFIXES = (".zarr", ".zarr.zip")


@dataclass
class Input:
    """One input of the command line: an audio file (or "-"), or a token store or stream."""

    name: str
    store: bool


def expand_inputs(args: list[str] | None) -> Iterator[Input | InputError]:
    """Token stores (kept whole: a .zarr/.zarr.zip name, a directory with zarr.json, a file or
    stdin starting with a zip header) and audio inputs (files, directories, globs, @lists, -)."""
    import glob

    from soundtok_cli.io.inputs import expand_audio_inputs
    from soundtok_cli.spatial.pipeline import is_store  # the test spatialize uses too

    for arg in args or ["-"]:
        names, pattern = [arg], not os.path.lexists(arg) and bool(set("*?[") & set(arg))
        if pattern:  # a glob: its matches may be stores (none: "no files match", as for audio)
            names = sorted(glob.glob(arg, recursive=True)) or [arg]
        for name in names:
            if not name.startswith("@") and not (pattern and name == arg) and is_store(name):
                yield Input(name, store=True)
                continue
            for audio in expand_audio_inputs([name]):
                yield audio if isinstance(audio, InputError) else Input(audio, store=False)


def is_store_name(path: str | None) -> bool:
    """An output named as a token store (x.zarr, x.zarr.zip)."""
    return path is not None and path.rstrip("/").endswith(STORE_SUFFIXES)


@dataclass
class StoreSource:
    """One source of a tokens store: its items (one per channel), channels in order."""

    store: str  # the input as given
    source: str  # items/source
    sample_rate: int
    duration: float
    channels: list[int]
    codes: list[np.ndarray]  # (frames, levels) uint16 per channel
    attrs: dict  # the store's soundtok attributes

    @property
    def label(self) -> str:
        """How messages name it: the store, then the source inside it."""
        return f"{self.store}: {self.source}"

    @property
    def levels(self) -> int:
        return int(self.codes[0].shape[1])


def store_sources(name: str) -> Iterator[StoreSource]:
    """The sources of a tokens store or stream, in order (a source's items are consecutive, as
    encode writes them; one split across batches is joined). Another kind of store, or a store
    that cannot be read, is an InputError naming it."""
    from soundtok_cli.io.stream import read_batches

    current: StoreSource | None = None
    for batch in read_batches(name):
        if batch.kind != "tokens":
            article = "an" if batch.kind[:1] in "aeiou" else "a"
            hint = " (render it to audio first: soundtok decode --render)" if batch.kind == "spatial" else ""
            raise InputError(f"is {article} {batch.kind} store, expected tokens or audio{hint}", name)
        for i in range(len(batch)):
            item = batch.item(i)
            source, channel = str(item["source"]), int(item["channel"])
            if current is not None and (source != current.source or channel in current.channels):
                yield _ordered(current)
                current = None
            if current is None:
                current = StoreSource(name, source, int(item["sample_rate"]), float(item["duration"]), [], [],
                                      batch.attrs)
            current.channels.append(channel)
            current.codes.append(batch.item_codes(i))
    if current is not None:
        yield _ordered(current)


def _ordered(src: StoreSource) -> StoreSource:
    order = np.argsort(src.channels, kind="stable")
    src.channels = [src.channels[i] for i in order]
    src.codes = [src.codes[i] for i in order]
    return src


class Codecs:
    """The codec each store was made with, loaded once (a store made with weights this soundtok
    lacks is refused by `codec_for_store`, naming both). With ``threads``, torch's threads are
    set on the first load (when nothing else has set them: the separation model does)."""

    def __init__(self, device: str = "auto", threads: bool = True):
        self.device, self.threads = device, threads
        self._loaded: dict[str, object] = {}

    def for_store(self, attrs: dict, subject: str):
        from soundtok_cli.models.registry import codec_for_store

        key = repr(sorted((k, v) for k, v in attrs["codec"].items() if k != "levels"))
        if key not in self._loaded:
            self._loaded[key] = codec_for_store(attrs, self.device, subject)  # checked before torch is imported
            if self.threads:
                from soundtok_cli.threads import configure_torch_threads

                configure_torch_threads()
                self.threads = False
        return self._loaded[key]


def decode_to_file(codec, src: StoreSource, path: str) -> None:
    """Decode a source, block by block, to a float32 Wave64 file at its own sample rate and
    length (what `soundtok decode` gives, before 24-bit rounding)."""
    import soundfile

    from soundtok_cli.codec.files import decode_channels, plan_decode

    frame_rate = float(codec.config.frame_rate)
    frames = min(len(c) for c in src.codes)
    if not np.isfinite(src.duration) or src.duration < 0 or src.duration * frame_rate > frames + frame_rate:
        raise InputError(f"its duration ({src.duration:g} s) does not match its codes ({frames / frame_rate:g} s)",
                         src.label)
    plan = plan_decode(src.duration, frame_rate, src.sample_rate)
    try:
        with soundfile.SoundFile(path, "w", src.sample_rate, len(src.codes), "FLOAT", format="W64") as f:
            for block in decode_channels(codec, src.codes, plan):
                f.write(block)
    except (OSError, soundfile.LibsndfileError) as error:  # a full or unwritable temporary directory
        raise InputError(f"cannot decode into a temporary file in {os.path.dirname(path)} ({error})", src.label) from None


def separate_source(codec, src: StoreSource, remove: list[str], output: str | list[str], residual: str | None,
                    fmt: str | None, residual_fmt: str | None, settings: Settings = Settings(),
                    separation: Callable[[int], object] | None = None):
    """`restore.restore_file` for one source of a store, writing audio (`output`: a path or "-", one path
    per stem for stems; `residual` the same way). The report (`restore.Restored`) names the source."""
    with tempfile.TemporaryDirectory(prefix="soundtok-separate-") as tmp:
        return _restore_decoded(codec, src, tmp, remove, output, residual, fmt, residual_fmt, settings, separation)


def separate_to_tokens(codec, src: StoreSource, remove: list[str], outputs: int, residual: bool,
                       settings: Settings = Settings(), separation: Callable[[int], object] | None = None
                       ) -> tuple[object, list, object | None]:
    """Separate one source of a store and encode the result with the same codec at the same
    levels: (report, one tokens Batch per output (`outputs` > 1 for stems), the residual's
    Batch or None). `report.output`/`residual` are left for the caller to name."""
    from soundtok_cli.codec.files import encode_audio
    from soundtok_cli.io.audio import open_audio
    from soundtok_cli.io.store import Batch

    with tempfile.TemporaryDirectory(prefix="soundtok-separate-") as tmp:
        out_paths = [os.path.join(tmp, f"out{k}.wav") for k in range(outputs)]
        res_path = os.path.join(tmp, "residual.wav") if residual else None
        # 24-bit WAV, or FLAC past WAV's 4 GiB (about 4 hours of 48 kHz stereo)
        kind = "wav" if src.duration * src.sample_rate * len(src.channels) * 3 < 0xFFFF0000 else "flac"
        report = _restore_decoded(codec, src, tmp, remove, out_paths if outputs > 1 else out_paths[0], res_path,
                                  kind, kind, settings, separation)
        codec_attrs = codec.describe(src.levels)
        batches = []
        for path in out_paths + ([res_path] if res_path else []):
            try:
                with open_audio(path) as reader:
                    encoded = encode_audio(codec, reader, src.levels)
            except InputError as error:
                raise _renamed(error, path, src.label) from None
            batches.append(Batch.tokens(
                codec_attrs, "separate",
                source=[src.source] * len(src.channels),
                channel=src.channels,
                sample_rate=[src.sample_rate] * len(src.channels),
                duration=[encoded.duration] * len(src.channels),
                content_hash=encoded.hashes,
                codes=encoded.channels,
            ))
    return report, batches[:outputs], (batches[outputs] if residual else None)


def _restore_decoded(codec, src: StoreSource, tmp: str, remove: list[str], output: str | list[str],
                     residual: str | None, fmt: str | None, residual_fmt: str | None, settings: Settings,
                     separation: Callable[[int], object] | None):
    """Decode the source into `tmp` and run `restore.restore_file` on it; the report and any error
    name the source, not the temporary file."""
    from soundtok_cli.separate.restore import restore_file

    decoded = os.path.join(tmp, "decoded.w64")
    decode_to_file(codec, src, decoded)
    try:
        report = restore_file(decoded, remove, output, residual, fmt, residual_fmt, settings, separation=separation)
    except InputError as error:
        raise _renamed(error, decoded, src.label) from None
    report.source = src.source
    return report


def _renamed(error: InputError, path: str, label: str) -> InputError:
    """An error about a temporary file, about the source it holds instead."""
    return InputError(error.message, label) if error.subject == path else error
