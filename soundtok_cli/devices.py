"""The --device option's values, checked without importing torch (commands check it before any
work; `soundtok search` keeps torch and the model registry off its start-up path)."""

from __future__ import annotations

from soundtok_cli.errors import UsageError


def check_device(device: str) -> None:
    """A UsageError for anything but auto, cpu or cuda."""
    if device not in ("auto", "cpu", "cuda"):
        raise UsageError(f"unknown device '{device}' (auto, cpu or cuda)", "--device")
