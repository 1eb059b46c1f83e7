"""Scenes for `soundtok generate --scene`: a bed and events, made into one spatial stream.

A scene file (TOML, or JSON with the same structure)::

    description = "a rainforest at dawn"   # what the scene is; elements that do not fit it are dropped
    duration = "10m"                       # 90s, 10m, 1h30m, 2:30 (--duration overrides)
    seed = 7                               # optional (--seed overrides)
    room = "outdoor"                       # optional: small, hall or outdoor

    [bed]                                  # one [bed] table, or several [[bed]] layers
    prompt = "dawn chorus in a tropical rainforest"
    level_db = -6                          # optional, dB (default 0)
    at = "front far"                       # optional: at, path or trajectory (default: in front, 1 m)

    [[event]]                              # any number of these
    prompt = "a toucan calling"
    density = 4                            # occurrences per minute, on average
    length = "3s"                          # of one occurrence (default 3s)
    level_db = -3
    path = "from left to right"            # a path without a duration takes the occurrence's length
    jitter = 40                            # optional: each occurrence turned by up to +-40 degrees of azimuth

Positions and paths are spatialize's (soundtok_cli/spatial/phrases.py); a trajectory CSV is
relative to the scene file.

What comes out is a spatial store (soundtok_cli/spatial/kind.py) for `soundtok decode --render`:

- each bed layer is one item spanning the whole scene, made and written chunk by chunk (items
  continued across batches, soundtok_cli/io/parts.py), so memory stays small and a reader
  downstream of a pipe gets the scene as it is made;
- each occurrence of an event is an item of its own, at a random time: occurrences follow a
  Poisson process of the event's density (seeded, so the same seed gives the same scene), are
  made several at a time (one row each of a sampler batch) and written one batch per minute of
  scene. An occurrence starts from silence (the model first reads half a second of the codec's
  silence frames, so the sound has its own onset) and its item begins and ends with silence
  frames, which the decoder turns into exact zeros with a fade of about 10 ms into and out of the
  sound: the renderer, which adds items as they are, never cuts a sound off mid-wave.

Elements whose prompt does not fit the description are reported and left out (mismatch.py).
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from soundtok_cli.errors import InputError
from soundtok_cli.generate.durations import parse_duration
from soundtok_cli.spatial.pipeline import Placement, entry_placement, read_scene_document, scene_room
from soundtok_cli.spatial.trajectory import Trajectory

SCENE_KEYS = ("bed", "description", "duration", "event", "room", "seed")
BED_KEYS = ("at", "level_db", "path", "prompt", "trajectory")
EVENT_KEYS = ("at", "density", "jitter", "length", "level_db", "path", "prompt", "trajectory")
MAX_BEDS = 16
MAX_EVENTS = 256
MAX_DENSITY = 600.0            # occurrences per minute
MAX_EVENT_SECONDS = 600.0
DEFAULT_EVENT_SECONDS = 3.0
WINDOW_SECONDS = 60.0          # events are written one batch per this much scene
PRIME_SILENCE_SECONDS = 0.5    # silence the model reads before an occurrence
LEAD_IN_FRAMES = 2             # silence frames before an occurrence's sound ...
FADE_FRAMES = 4                # ... and after it (the decoder fades out into them)
MIN_EVENT_FRAMES = 8           # an occurrence cut shorter than this by the scene's end is left out


@dataclass(frozen=True)
class Element:
    """A bed layer or an event of a scene."""

    label: str                 # "bed", "bed 2", "event 3": how errors and reports name it
    prompt: str
    level_db: float
    placement: Placement
    density: float = 0.0       # events: occurrences per minute
    length: float = 0.0        # events: seconds of one occurrence
    jitter: float = 0.0        # events: degrees of azimuth either way


@dataclass(frozen=True)
class GenerationScene:
    path: str
    description: str
    duration: float
    beds: tuple[Element, ...]
    events: tuple[Element, ...]
    seed: int | None = None
    room: str | None = None

    @property
    def elements(self) -> tuple[Element, ...]:
        return self.beds + self.events


# --------------------------------------------------------------------------------------------
# Reading


def read_generation_scene(path: str) -> GenerationScene:
    """A scene file for `soundtok generate --scene` (see the module doc); every problem is one
    InputError naming the file, the table and the key."""
    doc = read_scene_document(path, "scene file")
    if not isinstance(doc, dict):
        raise InputError("a scene is a table with a description, a duration, a [bed] and [[event]] tables", path)
    _check_keys(doc, SCENE_KEYS, "a scene", path)
    description = doc.get("description")
    if not isinstance(description, str) or not description.strip():
        raise InputError('needs description = "what the scene is" (e.g. "a rainforest at dawn"); '
                         "elements that do not fit it are left out", path)
    if "duration" not in doc:
        raise InputError('needs duration = "10m" (or 90s, 1h30m, 2:30)', path)
    duration = parse_duration(doc["duration"], f"{path}: duration")
    seed = doc.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63):
        raise InputError(f"seed must be a whole number of 0 or more, not {seed!r}", path)
    room = scene_room(doc, path)
    base = os.path.dirname(os.path.abspath(path))
    beds = [_bed_layer(entry, where, base) for entry, where in _tables(doc, "bed", path, MAX_BEDS)]
    events = [_event(entry, where, base) for entry, where in _tables(doc, "event", path, MAX_EVENTS)]
    if not beds and not events:
        raise InputError("nothing to generate: add a [bed] table or [[event]] tables, each with a prompt", path)
    return GenerationScene(path, description.strip(), duration, tuple(beds), tuple(events), seed, room)


def _check_keys(table: dict, allowed: tuple[str, ...], what: str, where: str) -> None:
    unknown = sorted(str(key) for key in table if key not in allowed)
    if unknown:
        raise InputError(f"unknown key {unknown[0]!r} ({what} has: {', '.join(allowed)})", where)


def _tables(doc: dict, key: str, path: str, most: int) -> list[tuple[dict, str]]:
    """The [key] table or [[key]] tables, each with the name errors give it."""
    value = doc.get(key)
    if value is None:
        return []
    if isinstance(value, dict):
        return [(value, f"{path}: {key}")]
    if not isinstance(value, list) or not all(isinstance(entry, dict) for entry in value):
        raise InputError(f"{key} must be a table ([{key}]) or tables ([[{key}]])", path)
    if len(value) > most:
        raise InputError(f"more than {most} {key} tables", path)
    return [(entry, f"{path}: {key} {i}") for i, entry in enumerate(value, start=1)]


def _number(entry: dict, key: str, where: str, default: float, low: float, high: float, unit: str = "") -> float:
    value = entry.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{key} must be a number{unit}, not {value!r}", where)
    if not low <= value <= high:
        raise InputError(f"{key} must lie between {low:g} and {high:g}{unit}, not {value:g}", where)
    return float(value)


def _element(entry: dict, where: str, base: str, **extra) -> Element:
    prompt = entry.get("prompt")
    if not isinstance(prompt, str):
        raise InputError('needs prompt = "what it sounds like" (e.g. "rain on leaves")'
                         + ("" if prompt is None else f", not {prompt!r}"), where)
    if not prompt.strip():
        raise InputError("prompt is empty; describe the sound (e.g. \"rain on leaves\")", where)
    level = _number(entry, "level_db", where, 0.0, -120.0, 40.0, " dB")
    if any(k in entry for k in ("at", "path", "trajectory")):
        place = entry_placement(entry, where, base)
    else:
        place = Placement(Trajectory.fixed(0.0, 0.0, 1.0), False, "front")
    label = where.rsplit(": ", 1)[-1]
    return Element(label, prompt.strip(), level, place, **extra)


def _bed_layer(entry: dict, where: str, base: str) -> Element:
    _check_keys(entry, BED_KEYS, "a bed", where)
    return _element(entry, where, base)


def _event(entry: dict, where: str, base: str) -> Element:
    _check_keys(entry, EVENT_KEYS, "an event", where)
    if "density" not in entry:
        raise InputError("needs density = occurrences per minute (e.g. density = 4)", where)
    density = _number(entry, "density", where, 0.0, 0.0, MAX_DENSITY, " occurrences per minute")
    length = parse_duration(entry.get("length", DEFAULT_EVENT_SECONDS), f"{where}: length", maximum=MAX_EVENT_SECONDS)
    jitter = _number(entry, "jitter", where, 0.0, 0.0, 180.0, " degrees")
    return _element(entry, where, base, density=density, length=length, jitter=jitter)


# --------------------------------------------------------------------------------------------
# Scheduling


def occurrence_times(density: float, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Start times (seconds, increasing, in [0, seconds)) of a Poisson process with `density`
    occurrences per minute: exponential gaps of mean 60/density."""
    if density <= 0:
        return np.zeros(0)
    mean_gap = 60.0 / density
    times: list[np.ndarray] = []
    t = 0.0
    block = max(16, int(seconds / mean_gap * 1.2) + 16)
    while True:
        starts = t + np.cumsum(rng.exponential(mean_gap, block))
        times.append(starts[starts < seconds])
        if starts[-1] >= seconds:
            return np.concatenate(times)
        t = float(starts[-1])


def _rng(seed: int, *path: int) -> np.random.Generator:
    """A random stream of its own for each use (schedules, jitter, sampler seeds), so that adding
    an event leaves the others' times and sounds as they were."""
    return np.random.default_rng([seed, *path])


def _sampler_seed(seed: int, *path: int) -> int:
    return int(_rng(seed, *path).integers(2**31))


# --------------------------------------------------------------------------------------------
# Generation


def select_elements(scene: GenerationScene, allow_mismatch: bool, reporter, judge=None) -> list[Element]:
    """The elements that fit the scene's description (all of them with `allow_mismatch`); each
    misfit is reported on one line (an error when it is left out, a note when kept)."""
    from soundtok_cli.generate.mismatch import FitJudge

    elements = list(scene.elements)
    fits = (judge or FitJudge()).judge(scene.description, [e.prompt for e in elements])
    kept = []
    for element, fit in zip(elements, fits):
        subject = f"{scene.path}: {element.label}"
        if fit.fits:
            kept.append(element)
        elif allow_mismatch:
            reporter.note(f"{subject}: {fit.describe()}; kept (--allow-mismatch)")
            kept.append(element)
        else:
            reporter.error(InputError(f"{fit.describe()}; left out (--allow-mismatch keeps it)", subject))
    if not kept:
        raise InputError("nothing left to generate: no element fits the description "
                         "(--allow-mismatch keeps them)", scene.path)
    return kept


def silence_frame(device: str) -> np.ndarray:
    """The codec's codes (all levels) for digital silence: what it encodes zeros to."""
    from soundtok_cli.models.registry import load_codec

    codec = load_codec(device=device)
    encoder = codec.encoder(codec.config.sample_rate, codec.config.levels)
    codes = np.concatenate([encoder.push(np.zeros(codec.config.sample_rate, np.float32)), encoder.finish()])
    return codes[len(codes) // 2]


def render_scene(scene: GenerationScene, generator, *, seconds: float | None, settings, allow_mismatch: bool,
                 reporter, device: str = "cpu", judge=None) -> Iterator:
    """The scene as spatial batches: the bed layers (each one item, in continued parts), then
    the events' occurrences, one batch per minute of scene. `seconds` overrides the scene's
    duration; `settings` (soundtok_cli.generate.run.Settings) gives the seed and the sampling."""
    from soundtok_cli.embed.text import encode_queries

    duration = scene.duration if seconds is None else seconds
    kept = {element.label for element in select_elements(scene, allow_mismatch, reporter, judge)}
    prompts = sorted({e.prompt for e in scene.elements if e.label in kept})
    vectors = dict(zip(prompts, encode_queries(prompts)))
    name = os.path.splitext(os.path.basename(scene.path))[0] or "scene"
    written = 0
    for index, element in enumerate(scene.beds):
        if element.label in kept:
            reporter.detail(f"{element.label}: {element.prompt!r}, {duration:g} s")
            for batch in _bed(generator, element, vectors[element.prompt], duration, settings,
                              _sampler_seed(settings.seed, 0, index), f"{name}/{_slug(element)}", scene.room):
                written += 1
                yield batch
    events = [(index, e) for index, e in enumerate(scene.events) if e.label in kept]
    if events:
        for batch in _events(generator, events, vectors, duration, settings, silence_frame(device), name,
                             scene.room, reporter):
            written += 1
            yield batch
    if not written:
        raise InputError(f"nothing to generate: no event happens in the scene's {duration:g} s (density is "
                         "occurrences per minute); make it longer, raise a density or add a [bed]", scene.path)


def _slug(element: Element) -> str:
    from soundtok_cli.generate.run import slug

    return f"{element.label.replace(' ', '')}-{slug(element.prompt, 40)}"


def _row(generator, source: str, codes: np.ndarray, positions: np.ndarray, start: float, element: Element,
         content_hash: str, seconds: float) -> dict:
    return {"source": source, "channel": 0, "sample_rate": int(generator.codec["sample_rate"]), "duration": seconds,
            "content_hash": content_hash, "codes": codes, "positions": positions, "scene_start": start,
            "gain_db": element.level_db}


def _bed(generator, element: Element, vector: np.ndarray, duration: float, settings, seed: int, source: str,
         room: str | None) -> Iterator:
    """One bed layer, one item over the whole scene, written part by part as it is made."""
    from soundtok_cli.io.parts import mark_continued
    from soundtok_cli.spatial.kind import spatial_batch

    frames = max(1, round(duration * generator.frame_rate))
    seconds = frames / generator.frame_rate
    trajectory = element.placement.for_seconds(seconds)
    digest = hashlib.sha256()
    made = 0
    for chunk in generator.stream(vector[None], frames, seed=seed, temperature=settings.temperature,
                                  top_k=settings.top_k, guidance=settings.guidance):
        codes = chunk[0]
        positions = trajectory.sample((made + np.arange(len(codes))) / generator.frame_rate)
        made += len(codes)
        digest.update(codes.tobytes())
        row = _row(generator, source, codes, positions, 0.0, element, "generated:" + digest.hexdigest(), seconds)
        batch = spatial_batch(generator.codec, "generate", rows=[row], room=room)
        yield batch if made == frames else mark_continued(batch)


def _events(generator, events: list[tuple[int, Element]], vectors: dict, duration: float, settings,
            silence: np.ndarray, name: str, room: str | None, reporter) -> Iterator:
    """Every occurrence of every event, one batch per WINDOW_SECONDS of scene."""
    from soundtok_cli.spatial.kind import spatial_batch

    rate = generator.frame_rate
    levels = generator.levels
    silence = np.asarray(silence[:levels], np.uint16)
    prime = np.tile(silence, (round(PRIME_SILENCE_SECONDS * rate), 1))
    scene_frames = round(duration * rate)
    schedules = []
    for index, element in events:
        rng = _rng(settings.seed, 1, index)
        times = occurrence_times(element.density, duration, rng)
        turns = rng.uniform(-element.jitter, element.jitter, len(times)) if element.jitter else np.zeros(len(times))
        schedules.append((times, turns))
        reporter.detail(f"{element.label}: {element.prompt!r}, {len(times)} occurrence"
                        f"{'' if len(times) == 1 else 's'} of {element.length:g} s")
    for window, start in enumerate(np.arange(0.0, duration, WINDOW_SECONDS)):
        rows = []
        for (index, element), (times, turns) in zip(events, schedules):
            chosen = np.flatnonzero((times >= start) & (times < start + WINDOW_SECONDS))
            onsets = [round(times[i] * rate) for i in chosen]
            wanted = max(1, round(element.length * rate))
            lengths = [min(wanted, scene_frames - onset - LEAD_IN_FRAMES - FADE_FRAMES) for onset in onsets]
            chosen = [i for i, n in zip(chosen, lengths) if n >= MIN_EVENT_FRAMES]
            lengths = [n for n in lengths if n >= MIN_EVENT_FRAMES]
            if not chosen:
                continue
            made = np.concatenate(list(generator.stream(
                np.repeat(vectors[element.prompt][None], len(chosen), axis=0), max(lengths),
                seed=_sampler_seed(settings.seed, 2, index, window), temperature=settings.temperature,
                top_k=settings.top_k, guidance=settings.guidance, prime=prime, chunk_frames=max(lengths))), axis=1)
            for row, (i, n) in enumerate(zip(chosen, lengths)):
                codes = np.concatenate([np.tile(silence, (LEAD_IN_FRAMES, 1)), made[row, :n],
                                        np.tile(silence, (FADE_FRAMES, 1))])
                rows.append(_row(generator, f"{name}/{_slug(element)}-{int(i) + 1:05d}", codes,
                                 _positions(element, len(codes), rate, turns[i]), times[i], element,
                                 "generated:" + hashlib.sha256(codes.tobytes()).hexdigest(), len(codes) / rate))
        if rows:
            rows.sort(key=lambda row: row["scene_start"])
            yield spatial_batch(generator.codec, "generate", rows=rows, room=room)


def _positions(element: Element, frames: int, rate: float, turn: float) -> np.ndarray:
    """Per-frame az/el/dist of one occurrence: its path over the sound's length, turned by `turn`
    degrees of azimuth (jitter)."""
    sound = (frames - LEAD_IN_FRAMES - FADE_FRAMES) / rate
    t = np.clip((np.arange(frames) - LEAD_IN_FRAMES) / rate, 0.0, None)
    positions = element.placement.for_seconds(sound).sample(t)
    if turn:
        positions[:, 0] = (positions[:, 0] + turn + 180.0) % 360.0 - 180.0
    return positions
