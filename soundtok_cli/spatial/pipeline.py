"""What `soundtok spatialize` and `soundtok decode --render` call: placements and scene files,
inputs (audio files or token stores) to placed sounds, and placed sounds to a spatial store or to
rendered audio.

Scene files (TOML, or JSON with the same structure)::

    room = "small"                    # optional: small, hall or outdoor

    [[source]]
    file = "whisper.wav"              # audio file or token store; relative to the scene file
    at = "behind your left ear"       # one of: at, path, trajectory (a CSV file)
    start = 0.5                       # optional: seconds into the scene (default 0)
    gain_db = -3                      # optional (default 0)

    [[source]]
    file = "jet.flac"
    path = "from right to left overhead over 5s"

Each source is mixed down to mono (the mean of its channels) and placed as one point source.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from soundtok_cli.errors import InputError, UsageError
from soundtok_cli.spatial.phrases import parse_at, parse_path
from soundtok_cli.spatial.trajectory import Trajectory, read_csv_trajectory

SCENE_KEYS = {"room", "source"}
SOURCE_KEYS = {"file", "at", "path", "trajectory", "start", "gain_db"}
MAX_SCENE_BYTES = 1 << 20
MAX_SOURCES = 1024
STORE_SUFFIXES = (".zarr", ".zarr.zip", ".zarr/")


# --------------------------------------------------------------------------------------------
# Placements


@dataclass(frozen=True)
class Placement:
    """Where a sound goes: a trajectory, stretched to the sound's length for a path phrase given
    without a duration."""

    trajectory: Trajectory
    stretch: bool
    text: str

    def for_seconds(self, seconds: float) -> Trajectory:
        return self.trajectory.scaled(seconds) if self.stretch else self.trajectory


def placement(at: str | None = None, path: str | None = None, trajectory: str | None = None,
              subject: str | None = None) -> Placement:
    given = [(name, value) for name, value in (("at", at), ("path", path), ("trajectory", trajectory)) if value is not None]
    if len(given) != 1:
        names = " or ".join(f"--{n}" for n in ("at", "path", "trajectory"))
        raise UsageError(f"give one of {names}" + (f", not {len(given)}" if given else ""), subject)
    name, value = given[0]
    if not isinstance(value, str):
        raise InputError(f"{name} must be text, not {type(value).__name__}", subject)
    if name == "at":
        az, el, dist = parse_at(value, subject or "--at")
        return Placement(Trajectory.fixed(az, el, dist), False, value)
    if name == "path":
        parsed = parse_path(value, subject or "--path")
        return Placement(parsed.trajectory, parsed.duration is None, value)
    return Placement(read_csv_trajectory(value), False, value)


# --------------------------------------------------------------------------------------------
# Scenes


@dataclass
class SceneEntry:
    input: str
    placement: Placement
    start: float = 0.0
    gain_db: float = 0.0


@dataclass
class Scene:
    entries: list[SceneEntry]
    room: str | None = None


def read_scene(path: str) -> Scene:
    """A scene file (TOML, or JSON when it ends in .json); see the module doc."""
    return _scene(read_scene_document(path, "scene file"), path)


def read_scene_document(path: str, what: str) -> dict:
    """The parsed contents of a TOML (or, for a .json name, JSON) scene file; an InputError names
    the file for anything unreadable. `what` names the kind of file in errors."""
    from soundtok_cli.io.inputs import read_small_input

    data = read_small_input(path, MAX_SCENE_BYTES, what)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"not a {what} (not UTF-8 text)", path) from None
    if path.lower().endswith(".json"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise InputError(f"not valid JSON (line {error.lineno}: {error.msg})", path) from None
    try:
        import tomllib
    except ImportError:  # Python 3.10
        raise InputError(f"TOML {what}s need Python 3.11 or later; write the scene as JSON", path) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise InputError(f"not valid TOML ({error})", path) from None


def entry_placement(entry: dict, where: str, base: str) -> Placement:
    """The placement of a scene table from its at, path or trajectory key (one of them; a
    trajectory file is relative to the scene file's folder `base`)."""
    trajectory = entry.get("trajectory")
    if isinstance(trajectory, str):
        trajectory = os.path.join(base, trajectory)
    try:
        return placement(entry.get("at"), entry.get("path"), trajectory, where)
    except UsageError as error:
        raise InputError(error.message.replace("--", ""), where) from None


def scene_room(doc: dict, path: str) -> str | None:
    """A scene's optional ``room`` (small, hall or outdoor)."""
    from soundtok_cli.spatial.room import NAMES

    room = doc.get("room")
    if room is not None and room not in NAMES:
        raise InputError(f"unknown room {room!r} ({', '.join(NAMES)})", path)
    return room


def _scene(doc, path: str) -> Scene:
    if not isinstance(doc, dict):
        raise InputError("a scene is a table with [[source]] entries", path)
    unknown = set(doc) - SCENE_KEYS
    if unknown:
        raise InputError(f"unknown key {sorted(unknown)[0]!r} (a scene has: {', '.join(sorted(SCENE_KEYS))})", path)
    room = scene_room(doc, path)
    sources = doc.get("source")
    if not isinstance(sources, list) or not sources:
        raise InputError("no sources: add [[source]] entries with file and at, path or trajectory", path)
    if len(sources) > MAX_SOURCES:
        raise InputError(f"more than {MAX_SOURCES} sources", path)
    base = os.path.dirname(os.path.abspath(path))
    entries = []
    for i, entry in enumerate(sources, start=1):
        where = f"{path}: source {i}"
        if not isinstance(entry, dict):
            raise InputError("each source is a table", where)
        unknown = set(entry) - SOURCE_KEYS
        if unknown:
            raise InputError(f"unknown key {sorted(unknown)[0]!r} (a source has: {', '.join(sorted(SOURCE_KEYS))})", where)
        file = entry.get("file")
        if not isinstance(file, str) or not file:
            raise InputError("needs file = \"sound.wav\"", where)
        place = entry_placement(entry, where, base)
        start, gain = entry.get("start", 0.0), entry.get("gain_db", 0.0)
        for name, value in (("start", start), ("gain_db", gain)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise InputError(f"{name} must be a number", where)
        if start < 0:
            raise InputError("start must not be negative", where)
        if not -120 <= gain <= 40:
            raise InputError("gain_db must lie between -120 and 40", where)
        entries.append(SceneEntry(os.path.join(base, file), place, float(start), float(gain)))
    return Scene(entries, room)


# --------------------------------------------------------------------------------------------
# Inputs


def is_store(name: str) -> bool:
    """A token store or stream rather than audio: a .zarr/.zarr.zip name, a directory with
    zarr.json, a file starting with a zip header, or stdin starting with one."""
    if name == "-":
        stdin = getattr(sys.stdin, "buffer", None)
        if stdin is None or sys.stdin.isatty():
            return False
        try:
            head = stdin.peek(1)[:1]
        except (AttributeError, OSError, ValueError):
            return False
        return head == b"P"  # "PK\3\4": no audio format starts with P
    if name.rstrip("/").endswith((".zarr", ".zarr.zip")):
        return True
    if os.path.isdir(name):
        return os.path.isfile(os.path.join(name, "zarr.json"))
    try:
        with open(name, "rb") as f:
            return f.read(4) == b"PK\x03\x04"
    except OSError:
        return False


@dataclass
class Placed:
    """One sound with its placement, as audio (mono) or as codes (per channel)."""

    source: str
    sample_rate: int
    duration: float
    trajectory: Trajectory
    start: float = 0.0
    gain_db: float = 0.0
    mono: np.ndarray | None = None
    codes: list[np.ndarray] | None = None
    hashes: list[str] | None = None
    attrs: dict | None = None  # the store's attributes (codes from a store)
    positions: np.ndarray | None = None  # per frame, from a spatial store


def read_mono(source: str) -> tuple[np.ndarray, int]:
    """A whole audio input as mono float32 (the mean of its channels) and its rate."""
    from soundtok_cli.io.audio import open_audio

    with open_audio(source) as reader:
        parts = [block.mean(axis=1) if block.shape[1] > 1 else block[:, 0] for block in reader.blocks(1 << 18)]
        rate = reader.sample_rate
    return np.concatenate(parts).astype(np.float32), rate


def trajectory_from_track(positions: np.ndarray, frame_rate: float, subject: str) -> Trajectory:
    """A store's per-frame position track as a trajectory (fixed when it never moves)."""
    from soundtok_cli.spatial.geometry import check_positions

    positions = check_positions(np.asarray(positions, dtype=np.float64), subject)
    if not len(positions):
        raise InputError("empty position track", subject)
    if (positions == positions[0]).all():
        return Trajectory.fixed(*positions[0])
    return Trajectory.from_positions(np.arange(len(positions)) / float(frame_rate), positions, subject)


def store_sources(name: str, *, kinds=("tokens", "spatial")) -> Iterator[Placed]:
    """The sources (items of one source grouped, channels in order) of a tokens or spatial store;
    `trajectory` is filled in from the position track of a spatial store, else left fixed in
    front (the caller places it)."""
    from soundtok_cli.io.stream import read_batches

    current: Placed | None = None
    channels: list[int] = []
    for batch in read_batches(name):
        if batch.kind not in kinds:
            raise InputError(f"is a {batch.kind} store, expected {' or '.join(kinds)}", name)
        frame_rate = float(batch.codec["frame_rate"])
        for i in range(len(batch)):
            item = batch.item(i)
            source = str(item["source"])
            if current is not None and (source != current.source or int(item["channel"]) in channels):
                yield _ordered(current, channels, frame_rate, name)
                current = None
            if current is None:
                current = Placed(source, int(item["sample_rate"]), float(item["duration"]), Trajectory.fixed(0, 0, 1),
                                 float(item.get("scene_start", 0.0)), float(item.get("gain_db", 0.0)),
                                 codes=[], hashes=[], attrs=batch.attrs)
                channels = []
                if batch.kind == "spatial":
                    current.positions = np.asarray(batch.item_array(i, "positions"))
            current.codes.append(batch.item_codes(i))
            current.hashes.append(str(item["content_hash"]))
            channels.append(int(item["channel"]))
    if current is not None:
        yield _ordered(current, channels, frame_rate, name)


def _ordered(placed: Placed, channels: list[int], frame_rate: float, name: str) -> Placed:
    order = np.argsort(channels)
    placed.codes = [placed.codes[i] for i in order]
    placed.hashes = [placed.hashes[i] for i in order]
    if placed.positions is not None:
        placed.trajectory = trajectory_from_track(placed.positions, frame_rate, f"{name}: {placed.source}")
    return placed


def decode_mono(codec, placed: Placed) -> np.ndarray:
    """A store source's codes decoded to mono audio at its own sample rate."""
    from soundtok_cli.codec.files import decode_channels, plan_decode

    plan = plan_decode(placed.duration, codec.config.frame_rate, placed.sample_rate)
    blocks = [b.mean(axis=1) for b in decode_channels(codec, placed.codes, plan)]
    return np.concatenate(blocks).astype(np.float32) if blocks else np.zeros(0, np.float32)


# --------------------------------------------------------------------------------------------
# Rendering




@dataclass
class RenderJob:
    target: str
    output: str
    fmt: str
    rate: int | None = None
    hrtf: str | None = None
    room: str | None = None
    doppler: bool = True
    via: str | None = None
    written: list[str] = field(default_factory=list)
    clipped: list[tuple[str, int]] = field(default_factory=list)  # ("path: what clipped", dB to lower by)


def check_render_options(target: str, via: str | None, room: str | None, hrtf: str | None) -> None:
    from soundtok_cli.spatial.render import TARGETS, VIA
    from soundtok_cli.spatial.room import NAMES

    if target not in TARGETS:
        raise UsageError(f"unknown target '{target}' ({', '.join(TARGETS)})", "--render")
    if via is not None:
        if via not in VIA:
            raise UsageError(f"unknown ambisonic order '{via}' ({', '.join(VIA)})", "--via")
        if target not in ("binaural", "stereo", "5.1", "7.1.4"):
            raise UsageError("renders binaural, stereo, 5.1 or 7.1.4 through ambisonics; "
                             f"{target} is already ambisonics", "--via")
    if room is not None and room not in NAMES:
        raise UsageError(f"unknown room '{room}' ({', '.join(NAMES)})", "--room")
    if hrtf is not None and target != "binaural":
        raise UsageError("an HRTF is used only with --render binaural", "--hrtf")


def render_placed(job: RenderJob, placed: list[tuple[Placed, np.ndarray]], output: str) -> float:
    """Render (placed, mono) pairs into one audio file; returns the seconds rendered."""
    from soundtok_cli.io.audio import AudioWriter, resample
    from soundtok_cli.spatial.render import RenderOptions, SceneRenderer, SpatialSource

    rate = job.rate or max(p.sample_rate for p, _ in placed)
    sources = []
    for p, mono in placed:
        signal = resample(mono, p.sample_rate, rate) if p.sample_rate != rate else mono
        sources.append(SpatialSource(p.source, signal, p.trajectory, int(round(p.start * rate)), 10 ** (p.gain_db / 20)))
    renderer = SceneRenderer(sources, RenderOptions(job.target, rate, job.hrtf, job.room, job.doppler, job.via))
    if job.fmt == "flac" and renderer.channels > 8:
        raise UsageError(f"FLAC holds at most 8 channels, {job.target} has {renderer.channels}; write .wav", output)
    if output != "-" and os.path.dirname(output):
        os.makedirs(os.path.dirname(output), exist_ok=True)
    with AudioWriter(output, rate, renderer.channels, job.fmt, frames=renderer.frames) as writer:
        for chunk in renderer.chunks():
            writer.write(chunk)
    job.written.append(output)
    if clipping := writer.clipping():
        job.clipped.append((f"{output}: {clipping}", writer.reduction_to_fit_db()))
    return renderer.frames / rate


def render_all(job: RenderJob, items: Iterator[tuple[Placed, np.ndarray] | InputError],
               on_error: Callable[[InputError], None]) -> tuple[int, float]:
    """One file for all sources (a scene), or one per source when the output is a template with
    {stem}, {name}, {dir}, {index} or {ext}. Returns (sources rendered, seconds written)."""
    from soundtok_cli.codec.sources import output_path

    templated = "{" in job.output
    done, seconds = 0, 0.0
    gathered: list[tuple[Placed, np.ndarray]] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        if isinstance(item, InputError):
            on_error(item)
            continue
        if not templated:
            gathered.append(item)
            continue
        path = output_path(job.output, item[0].source, index, job.fmt)
        if path in seen:
            on_error(InputError(f"output {path} would be written twice (give the template {{index}} or {{dir}})", item[0].source))
            continue
        seen.add(path)
        seconds += render_placed(job, [item], path)
        done += 1
    if gathered:
        seconds += render_placed(job, gathered, job.output)
        done += len(gathered)
    return done, seconds


# --------------------------------------------------------------------------------------------
# From inputs to placed sounds


def expand_inputs(args: list[str] | None) -> Iterator[str | InputError]:
    """Stores (kept whole) and audio inputs (files, directories, globs, @lists, -)."""
    from soundtok_cli.io.inputs import expand_audio_inputs

    for arg in args or ["-"]:
        if arg != "-" and not arg.startswith("@") and is_store(arg):
            yield arg
        elif arg == "-" and is_store("-"):
            yield "-"
        else:
            yield from expand_audio_inputs([arg])


class CodecCache:
    """Loads the codec once, on first use (rendering audio files directly needs none)."""

    def __init__(self, name: str, device: str):
        self.name, self.device = name, device
        self.codec = None

    def for_store(self, attrs: dict, subject: str):
        """The codec that made a store (refused, naming both, when this soundtok lacks it)."""
        from soundtok_cli.models.registry import codec_for_store

        wanted = attrs["codec"].get("weights_sha256")
        if self.codec is None:
            self.codec = codec_for_store(attrs, self.device, subject)
        elif wanted != self.codec.describe(1).get("weights_sha256"):
            codec_for_store(attrs, self.device, subject)  # raises, naming both versions
        return self.codec

    def get(self):
        from soundtok_cli.models.registry import load_codec
        from soundtok_cli.threads import configure_torch_threads

        if self.codec is None:
            configure_torch_threads()
            self.codec = load_codec(self.name, self.device)
        return self.codec


def placed_inputs(entries: list[SceneEntry], codecs: CodecCache, *, audio: bool, levels: int | None = None
                  ) -> Iterator[Placed | InputError]:
    """Each entry's sounds, placed: as mono audio (``audio=True``, for rendering) or as codes (for
    a spatial store; audio inputs are encoded with ``levels`` levels)."""
    for entry in entries:
        try:
            if is_store(entry.input):
                for placed in store_sources(entry.input):
                    if entry.placement is not None:
                        placed.trajectory = entry.placement.for_seconds(placed.duration)
                        placed.start, placed.gain_db = entry.start, entry.gain_db
                    if audio:
                        placed.mono = decode_mono(codecs.for_store(placed.attrs, entry.input), placed)
                    yield placed
            elif audio:
                mono, rate = read_mono(entry.input)
                seconds = len(mono) / rate
                yield Placed(entry.input, rate, seconds, entry.placement.for_seconds(seconds), entry.start,
                             entry.gain_db, mono=mono)
            else:
                from soundtok_cli.codec.files import encode_audio
                from soundtok_cli.io.audio import open_audio

                codec = codecs.get()
                with open_audio(entry.input) as reader:
                    encoded = encode_audio(codec, reader, levels or 8)
                yield Placed(entry.input, encoded.sample_rate, encoded.duration,
                             entry.placement.for_seconds(encoded.duration), entry.start, entry.gain_db,
                             codes=encoded.channels, hashes=encoded.hashes, attrs={"codec": codec.describe(levels or 8)})
        except InputError as error:
            yield error


def spatial_rows(placed: Placed) -> list[dict]:
    """The items of one placed sound in a spatial store (its position track on every channel)."""
    frame_rate = float(placed.attrs["codec"]["frame_rate"])
    frames = len(placed.codes[0])
    positions = placed.trajectory.sample(np.arange(frames) / frame_rate).astype(np.float32)
    return [{"source": placed.source, "channel": ch, "sample_rate": placed.sample_rate, "duration": placed.duration,
             "content_hash": placed.hashes[ch], "codes": codes, "positions": positions,
             "scene_start": placed.start, "gain_db": placed.gain_db}
            for ch, codes in enumerate(placed.codes)]


def with_audio(items: Iterator[Placed | InputError]) -> Iterator[tuple[Placed, np.ndarray] | InputError]:
    for item in items:
        yield item if isinstance(item, InputError) else (item, item.mono)


def decode_render(store: str, output: str, target: str, *, hrtf: str | None, room: str | None, rate: int | None,
                  fmt: str | None, device: str, reporter) -> int:
    """`soundtok decode --render`: a spatial store's sources rendered at their positions, mixed
    into OUT (a scene), or one file each with a template. Returns the exit status."""
    import time

    from soundtok_cli.errors import EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE
    from soundtok_cli.io.audio import output_format
    from soundtok_cli.progress import format_speed
    from soundtok_cli.io.inputs import refuse_binary_to_terminal

    check_render_options(target, None, room, hrtf)
    job = RenderJob(target, output, output_format(output, fmt), rate, hrtf, room)
    if output == "-":
        refuse_binary_to_terminal("audio")
    codecs = CodecCache("soundtok-codec", device)
    started = time.monotonic()

    def items() -> Iterator[tuple[Placed, np.ndarray] | InputError]:
        for placed in store_sources(store, kinds=("spatial",)):
            if job.room is None and placed.attrs.get("spatial", {}).get("room"):
                job.room = placed.attrs["spatial"]["room"]
            try:
                yield placed, decode_mono(codecs.for_store(placed.attrs, store), placed)
            except InputError as error:
                yield error

    done, seconds = render_all(job, items(), reporter.error)
    for clipping, reduction in job.clipped:
        reporter.warn(f"{clipping}; lower the level by {reduction} dB where the store was made (spatialize --gain)")
    if done == 0 and not reporter.failures:
        raise InputError("holds no items", store)
    elapsed = max(time.monotonic() - started, 1e-9)
    if done == 0:  # the error lines said it all
        return EXIT_USAGE
    reporter.note(f"rendered {done} source{'' if done == 1 else 's'} {target} ({seconds:.1f} s) to "
                  f"{', '.join(job.written) or 'nothing'} at {format_speed(seconds, elapsed)}"
                  + (f"; {reporter.failures} failed" if reporter.failures else ""))
    return EXIT_USAGE if done == 0 else EXIT_SOME_FAILED if reporter.failures else EXIT_OK
