"""Placement text: ``--at`` positions and ``--path`` movements, in numbers or in plain words.

Numbers: ``az=135 el=0 dist=0.5`` (also azimuth=, elevation=, distance=; spaces or commas between;
missing keys default to el=0, dist=1). Azimuth counter-clockwise from the front (left = 90),
elevation upwards, distance in metres from the centre of the head.

Words (VOCABULARY): directions add up, so "behind left" is az=135 and "front right" az=-45.

  front, ahead        az=0               left         az=90
  behind, back, rear  az=180             right        az=-90
  above, up           el=45              below, down, under   el=-45
  overhead            el=90 (straight up)
  near, close         0.5 m              far, distant   10 m       (very near 0.25 m, very far 30 m)
  ear                 0.2 m, at the left or right ear (say which)
  2m, 2 m, 2 metres   that distance
  filler words are ignored: your, the, a, an, of, at, in, on, my, to, side, away, and, you, me, head

Paths (``--path``): ``from PLACE to PLACE [via PLACE] [overhead] [over 5s]``, or
``around [clockwise] [PLACE words for elevation and distance] [over 4s]`` (a full circle from the
front; counter-clockwise, i.e. through the left, unless clockwise). "overhead" after the destination
means the path passes straight over the head ("from right to left overhead"). The duration is
``over 5s``, ``in 5 s``, ``for 5 seconds``; without one the path takes the length of the sound.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from soundtok_cli.errors import InputError
from soundtok_cli.spatial.geometry import check_position, to_cartesian, to_spherical
from soundtok_cli.spatial.trajectory import Trajectory

HORIZONTAL = {
    "front": (1.0, 0.0), "ahead": (1.0, 0.0),
    "behind": (-1.0, 0.0), "back": (-1.0, 0.0), "rear": (-1.0, 0.0),
    "left": (0.0, 1.0), "right": (0.0, -1.0),
}
VERTICAL = {"above": 45.0, "up": 45.0, "overhead": 90.0, "below": -45.0, "down": -45.0, "under": -45.0}
DISTANCE = {"near": 0.5, "close": 0.5, "far": 10.0, "distant": 10.0}
VERY = {"near": 0.25, "close": 0.25, "far": 30.0, "distant": 30.0}
EAR_DISTANCE = 0.2
FILLER = {"your", "the", "a", "an", "of", "at", "in", "on", "my", "to", "side", "away", "and", "very", "you", "me", "head"}
METRES = {"m", "metre", "metres", "meter", "meters"}
SECONDS = {"s", "sec", "secs", "second", "seconds"}
KEYS = {"az": 0, "azimuth": 0, "el": 1, "elevation": 1, "dist": 2, "distance": 2}
DEFAULT_DISTANCE = 1.0

VOCABULARY_WORDS = sorted(set(HORIZONTAL) | set(VERTICAL) | set(DISTANCE) | {"ear", "very"})
VOCABULARY = ("front/ahead, behind/back/rear, left, right, above/up, below/down/under, overhead, "
              "near/close, far/distant, very, ear, distances like 2m or '3 metres'")

_NUMBER_UNIT = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))([a-z]+)$")


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    for raw in re.split(r"[\s,;]+", text.strip().lower()):
        if not raw:
            continue
        match = _NUMBER_UNIT.match(raw)
        if match:
            out.extend([match.group(1), match.group(2)])
        else:
            out.append(raw)
    # "over your head" / "over head" -> overhead
    joined: list[str] = []
    i = 0
    while i < len(out):
        if out[i] == "over" and out[i + 1 : i + 3] == ["your", "head"]:
            joined.append("overhead")
            i += 3
        elif out[i] == "over" and out[i + 1 : i + 2] == ["head"]:
            joined.append("overhead")
            i += 2
        else:
            joined.append(out[i])
            i += 1
    return joined


def _number(token: str) -> float | None:
    try:
        value = float(token)
    except ValueError:
        return None
    return value


def parse_at(text: str, subject: str = "--at") -> tuple[float, float, float]:
    """az, el, dist from ``--at`` text: numbers (``az=135 el=0 dist=0.5``) or words."""
    if not text or not text.strip():
        raise InputError(f"empty placement; give numbers (az=90 el=0 dist=1) or words ({VOCABULARY})", subject)
    if "=" in text:
        return _parse_numbers(text, subject)
    return _parse_words(_tokens(text), subject, text)


def _parse_numbers(text: str, subject: str) -> tuple[float, float, float]:
    values = [None, 0.0, DEFAULT_DISTANCE]
    seen: set[int] = set()
    for part in re.split(r"[\s,;]+", text.strip()):
        if not part:
            continue
        key, sep, raw = part.partition("=")
        slot = KEYS.get(key.strip().lower())
        if not sep or slot is None:
            raise InputError(f"cannot read {part!r}: expected az=DEG el=DEG dist=M", subject)
        if slot in seen:
            raise InputError(f"{key} given twice", subject)
        seen.add(slot)
        raw = raw.strip().lower().removesuffix("m") if slot == 2 else raw.strip()
        try:
            value = float(raw)
        except ValueError:
            raise InputError(f"{key}={raw!r} is not a number", subject) from None
        values[slot] = value
    if values[0] is None:
        if 0 in seen:
            raise InputError("az must be a number", subject)
        values[0] = 0.0
    return check_position(values[0], values[1], values[2], subject)


def _parse_words(tokens: list[str], subject: str, text: str) -> tuple[float, float, float]:
    x = y = 0.0
    horizontal = False
    elevation: float | None = None
    distance: float | None = None
    ear = False
    i = 0
    while i < len(tokens):
        word = tokens[i]
        number = _number(word)
        if number is not None:
            unit = tokens[i + 1] if i + 1 < len(tokens) else ""
            if unit not in METRES:
                raise InputError(f"'{word}' needs a unit: a distance like '{word} m' (words: {VOCABULARY})", subject)
            if not math.isfinite(number) or number <= 0:
                raise InputError(f"distance must be positive, not {word} m", subject)
            distance = number
            i += 2
            continue
        if word in HORIZONTAL:
            dx, dy = HORIZONTAL[word]
            x, y, horizontal = x + dx, y + dy, True
        elif word in VERTICAL:
            elevation = VERTICAL[word] if elevation is None or abs(VERTICAL[word]) > abs(elevation) else elevation
        elif word in DISTANCE:
            very = i > 0 and tokens[i - 1] == "very"
            distance = (VERY if very else DISTANCE)[word] if distance is None else distance
        elif word == "ear":
            ear = True
        elif word in FILLER:
            pass
        else:
            raise InputError(f"unknown word '{word}' in {text.strip()!r}; the vocabulary is: {VOCABULARY}", subject)
        i += 1
    if ear:
        if y == 0:
            raise InputError("which ear? say 'left ear' or 'right ear'", subject)
        distance = EAR_DISTANCE if distance is None else distance
    if horizontal and x == 0 and y == 0:
        raise InputError(f"contradictory directions in {text.strip()!r} (they cancel out)", subject)
    if not horizontal and elevation is None and distance is None:
        raise InputError(f"no placement in {text.strip()!r}; the vocabulary is: {VOCABULARY}", subject)
    az = math.degrees(math.atan2(y, x)) if horizontal else 0.0
    return check_position(az, 0.0 if elevation is None else elevation, DEFAULT_DISTANCE if distance is None else distance, subject)


@dataclass(frozen=True)
class Path:
    """A parsed ``--path``: the trajectory, and whether it still has to be stretched to the sound."""

    trajectory: Trajectory
    duration: float | None  # seconds, as written; None: the length of the sound

    def for_duration(self, seconds: float) -> Trajectory:
        return self.trajectory if self.duration is not None else self.trajectory.scaled(seconds)


def _take_duration(tokens: list[str], subject: str) -> tuple[list[str], float | None]:
    for i, word in enumerate(tokens):
        if word in ("over", "in", "for") and i + 1 < len(tokens) and _number(tokens[i + 1]) is not None:
            value = float(tokens[i + 1])
            unit = tokens[i + 2] if i + 2 < len(tokens) else ""
            if unit not in SECONDS:
                raise InputError(f"'{word} {tokens[i + 1]}' needs a unit of time, like '{word} {tokens[i + 1]}s'", subject)
            if not math.isfinite(value) or value <= 0:
                raise InputError(f"the duration must be positive, not {tokens[i + 1]} s", subject)
            rest = tokens[:i] + tokens[i + 3 :]
            if any(w in ("over", "for") and j + 1 < len(rest) and _number(rest[j + 1]) is not None for j, w in enumerate(rest)):
                raise InputError("two durations", subject)
            return rest, value
    return tokens, None


def parse_path(text: str, subject: str = "--path") -> Path:
    """A movement from ``--path`` text (see the module doc)."""
    tokens, duration = _take_duration(_tokens(text or ""), subject)
    if not tokens:
        raise InputError("empty path; say 'from right to left over 5s' or 'around over 4s'", subject)
    if "around" in tokens:
        return Path(_around(tokens, subject, text, duration or 1.0), duration)
    if "from" not in tokens or "to" not in tokens or tokens.index("from") > tokens.index("to"):
        raise InputError("a path reads 'from PLACE to PLACE [via PLACE] [overhead] [over 5s]' "
                         "or 'around [clockwise] [over 4s]'", subject)
    start, to = tokens.index("from"), tokens.index("to")
    if any(t for t in tokens[:start] if t not in FILLER):
        raise InputError(f"unexpected words before 'from' in {text.strip()!r}", subject)
    first = tokens[start + 1 : to]
    rest = tokens[to + 1 :]
    via: list[str] = []
    for key in ("via", "through"):
        if key in first:  # from A via B to C
            k = first.index(key)
            first, via = first[:k], first[k + 1 :]
            break
        if key in rest:  # from A to C via B
            k = rest.index(key)
            rest, via = rest[:k], rest[k + 1 :]
            break
    over_head = False
    if "overhead" in rest and any(w != "overhead" and w not in FILLER for w in rest):
        rest = [w for w in rest if w != "overhead"]
        over_head = True
    if "overhead" in via and any(w != "overhead" and w not in FILLER for w in via):
        via = [w for w in via if w != "overhead"]
        over_head = True
    if not first or not rest:
        raise InputError("a path needs a place after 'from' and after 'to'", subject)
    a = _parse_words(first, subject, " ".join(first))
    b = _parse_words(rest, subject, " ".join(rest))
    points = [a]
    if via:
        points.append(_parse_words(via, subject, " ".join(via)))
    elif over_head:
        points.append((0.5 * (a[0] + b[0]), 90.0, 0.5 * (a[2] + b[2])))
    points.append(b)
    return Path(_timed(points, duration or 1.0, subject), duration)


def _around(tokens: list[str], subject: str, text: str, seconds: float) -> Trajectory:
    clockwise = "clockwise" in tokens
    words = [t for t in tokens if t not in ("around", "clockwise", "counterclockwise", "anticlockwise", "you", "me", "head")]
    el, dist = 0.0, DEFAULT_DISTANCE
    if any(w not in FILLER for w in words):
        az, el, dist = _parse_words(words, subject, " ".join(words))
    step = -90.0 if clockwise else 90.0
    points = [(step * k, el, dist) for k in range(5)]
    return _timed(points, seconds, subject)


def _timed(points, seconds: float, subject: str) -> Trajectory:
    """Keypoints at times proportional to the angle (plus log-distance change) between them."""
    positions = np.array(points, dtype=np.float64)
    xyz = to_cartesian(positions[:, 0], positions[:, 1], 1.0)
    angles = np.arccos(np.clip(np.einsum("ij,ij->i", xyz[:-1], xyz[1:]), -1.0, 1.0))
    weights = angles + np.abs(np.diff(np.log(positions[:, 2])))
    if weights.sum() <= 1e-9:
        raise InputError("the path does not move: start and end are the same place", subject)
    weights = np.maximum(weights, 1e-6)
    times = np.concatenate([[0.0], np.cumsum(weights) / weights.sum() * seconds])
    return Trajectory.from_positions(times, positions, subject)


def describe(position) -> str:
    az, el, dist = (float(v) for v in np.asarray(position).reshape(3))
    return f"az={az:g} el={el:g} dist={dist:g}"


__all__ = ["parse_at", "parse_path", "Path", "VOCABULARY", "describe", "to_spherical"]
