"""Separation and restoration: what `soundtok separate` removes from a recording.

This version removes what signal processing removes well, each from its own module:
mains hum (`hum`), clicks and crackle (`clicks`) and stationary hiss (`hiss`), streamed through
`stream.Chunked` in overlapping chunks (`restore` runs a whole file). Separating sources by a
description ("keep speech", "remove crowd chatter") needs a query-conditioned separation model,
which this version does not have.
"""

from __future__ import annotations

from soundtok_cli.errors import UsageError

# Applied in this order whatever the order on the command line: hum first (its harmonics would
# otherwise raise the hiss floor), then clicks (before hiss, whose smoothing would spread them).
REMOVABLE = ("hum", "clicks", "hiss")

_ALIASES = {"click": "clicks", "crackle": "clicks", "clicks": "clicks", "hum": "hum", "mains hum": "hum",
            "hiss": "hiss", "noise": "hiss", "hum and harmonics": "hum"}

MODEL_NEEDED = ("this version removes hum, clicks and hiss (signal processing); separating sources by "
                "description needs the query-conditioned separation model, which is not in this version")


def parse_removals(values: list[str]) -> list[str]:
    """`--remove` values (repeatable, comma-separated) -> the things to remove, in REMOVABLE order.

    Anything else is a description only the separation model could act on: a UsageError saying so.
    """
    wanted = set()
    for value in values:
        for part in value.split(","):
            name = " ".join(part.lower().split())
            if not name:
                continue
            if name not in _ALIASES:
                raise UsageError(f"cannot remove {part.strip()!r}: {MODEL_NEEDED}", "--remove")
            wanted.add(_ALIASES[name])
    if not wanted:
        raise UsageError("say what to remove: hum, clicks or hiss (e.g. --remove hum,clicks)", "--remove")
    return [name for name in REMOVABLE if name in wanted]
