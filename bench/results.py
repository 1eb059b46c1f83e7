"""Benchmark results files: one JSON document per run, written atomically; what machine it ran on."""

from __future__ import annotations

import json
import os
import platform


def write_json(path: str, payload: dict) -> None:
    """Write `payload` to `path` (indented JSON and a final newline), creating its directory; a
    temporary file is renamed into place, so a reader never sees a half-written file."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)


def cpu_name() -> str:
    """The processor's model name (from /proc/cpuinfo where there is one), for the environment record."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()
