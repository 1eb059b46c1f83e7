"""Durations as people write them: ``10m``, ``90s``, ``1h30m``, ``2:30``, ``1:02:03``, ``45``.

Units: h (also hr, hour, hours), m (min, mins, minute, minutes), s (sec, secs, second, seconds),
ms; several may follow each other, largest first ("1h30m", "2m 15s", "1.5s"). A bare number is
seconds. Clock form: ``M:SS`` or ``H:MM:SS`` (seconds may have a fraction, "2:30.5"; the fields
after the first are below 60). A duration is positive and at most 24 hours.
"""

from __future__ import annotations

import math
import re

from soundtok_cli.errors import InputError

MAX_SECONDS = 24 * 3600.0
UNITS = {
    "h": 3600.0, "hr": 3600.0, "hrs": 3600.0, "hour": 3600.0, "hours": 3600.0,
    "m": 60.0, "min": 60.0, "mins": 60.0, "minute": 60.0, "minutes": 60.0,
    "s": 1.0, "sec": 1.0, "secs": 1.0, "second": 1.0, "seconds": 1.0,
    "ms": 0.001,
}
EXAMPLES = "e.g. 90s, 10m, 1h30m, 2:30, 1.5s, 500ms"

_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_PART = re.compile(rf"\s*({_NUMBER})\s*([a-z]+)")
_CLOCK = re.compile(r"^\d+(?::\d\d?)?:\d\d?(?:\.\d*)?$")


def parse_duration(text, subject: str, *, maximum: float = MAX_SECONDS) -> float:
    """Seconds from `text` (a str, or an int/float of seconds, as TOML and JSON give them).

    Anything else raises InputError naming `subject` (the option or the file and key) and the
    text: ``--duration: '10 parsecs' is not a duration (e.g. 90s, 10m, ...)``."""
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise InputError(f"{text!r} is not a duration ({EXAMPLES})", subject)
    seconds = float(text) if not isinstance(text, str) else _seconds(text.strip().lower())
    if seconds is None or not math.isfinite(seconds):
        raise InputError(f"{text!r} is not a duration ({EXAMPLES})", subject)
    if seconds <= 0:
        raise InputError(f"{text!r}: a duration must be longer than zero", subject)
    if seconds > maximum:
        raise InputError(f"{text!r} is longer than the most allowed, {_plain(maximum)}", subject)
    return seconds


def _seconds(text: str) -> float | None:
    if re.fullmatch(_NUMBER, text):
        return float(text)
    if _CLOCK.match(text):                   # M:SS or H:MM:SS
        *whole, last = text.split(":")
        fields = [int(f) for f in whole] + [float(last)]
        if any(f >= 60 for f in fields[1:]):
            return None
        return sum(f * 60 ** i for i, f in enumerate(reversed(fields)))
    total, position, previous = 0.0, 0, math.inf
    while position < len(text):
        part = _PART.match(text, position)
        if part is None or part.group(2) not in UNITS:
            return None
        scale = UNITS[part.group(2)]
        if scale >= previous:                # "30s 1m", "1m 1m": not a duration
            return None
        total += float(part.group(1)) * scale
        previous, position = scale, part.end()
    return total if position else None


def _plain(seconds: float) -> str:
    return f"{seconds / 3600:g} h" if seconds >= 3600 else f"{seconds:g} s"
