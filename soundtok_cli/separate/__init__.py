"""Separation and restoration: what `soundtok separate` keeps or removes from a recording.

Two kinds of work, each from its own modules. Restoration, by signal processing where it is the
right tool: mains hum (`hum`), clicks and crackle (`clicks`) and stationary hiss (`hiss`); and a
room's reverberation by a small sub-band network (`dereverb`).
Separation by description ("keep speech", "remove crowd chatter", stems): the query-conditioned
network (`model`), run over long signals by `neural`, its queries grounded by `concepts`.
Both stream through `stream.Chunked` in overlapping chunks; `restore` runs a whole file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from soundtok_cli.errors import UsageError

if TYPE_CHECKING:
    from soundtok_cli.separate.noiseprint import NoiseFrom

# Applied in this order whatever the order on the command line: hum first (its harmonics would
# otherwise raise the hiss floor), then clicks (before hiss, whose smoothing would spread them),
# then reverb (its network reads decays, which a steady floor of hiss would fill).
REMOVABLE = ("hum", "clicks", "hiss", "reverb")

_ALIASES = {"click": "clicks", "crackle": "clicks", "clicks": "clicks", "hum": "hum", "mains hum": "hum",
            "hiss": "hiss", "noise": "hiss", "hum and harmonics": "hum", "reverb": "reverb",
            "reverberation": "reverb", "room reverb": "reverb"}


@dataclass(frozen=True)
class Settings:
    """How the steps of one run go: the hiss removal's strength and where it learns the noise, and
    how far what is removed is turned down (None: taken out entirely)."""
    strength: float = 1.0
    noise_from: NoiseFrom | None = None
    reduction_db: float | None = None

    def blend(self) -> float:
        """The share of what is removed that stays in the output: 10^(-reduction/20), or 0."""
        return 0.0 if self.reduction_db is None else 10 ** (-self.reduction_db / 20)


def parse_removals(values: list[str]) -> tuple[list[str], list[str]]:
    """`--remove` values (repeatable, comma-separated) -> (the restoration steps, in REMOVABLE
    order; the descriptions left for the separation model, in the order given)."""
    steps, descriptions = set(), []
    for value in values:
        for part in value.split(","):
            name = " ".join(part.lower().split())
            if not name:
                continue
            if name in _ALIASES:
                steps.add(_ALIASES[name])
            elif name not in descriptions:
                descriptions.append(name)
    if not steps and not descriptions:
        raise UsageError("say what to remove: hum, clicks, hiss or a description (e.g. --remove hum,clicks "
                         "or --remove 'crowd chatter')", "--remove")
    return [name for name in REMOVABLE if name in steps], descriptions


def split_descriptions(values: list[str]) -> list[str]:
    """Comma-separated, repeatable descriptions (--keep, --stems) -> their list, blanks dropped."""
    return [" ".join(part.split()) for value in values for part in value.split(",") if part.strip()]
