"""Progress for batch work on stderr: files, hours of audio, x real time and ETA.

Shown only when stderr is a terminal and -q is not given; pipelines and logs stay clean.
"""

from __future__ import annotations

import time

from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from soundtok_cli.console import Reporter


class AudioProgress:
    def __init__(self, reporter: Reporter, total_files: int | None, verb: str):
        self.started = time.monotonic()
        self.audio_seconds = 0.0
        self.files = 0
        self._progress = None
        if reporter.interactive:
            self._progress = Progress(
                TextColumn(f"{verb} " + "{task.completed:.0f}/{task.total:.0f} files"),
                BarColumn(),
                TextColumn("{task.fields[audio]}"),
                TextColumn("{task.fields[speed]}"),
                TimeRemainingColumn(),
                console=reporter.console,
                transient=True,
            )
            self._task = self._progress.add_task(verb, total=total_files, audio="", speed="")
            self._progress.start()

    @property
    def speed(self) -> float:
        """Seconds of audio processed per second of wall time (x real time)."""
        return self.audio_seconds / max(time.monotonic() - self.started, 1e-9)

    def advance(self, audio_seconds: float) -> None:
        self.files += 1
        self.audio_seconds += audio_seconds
        if self._progress is not None:
            self._progress.update(self._task, advance=1, audio=format_hours(self.audio_seconds),
                                  speed=format_speed(self.speed, 1.0))

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()


def format_speed(audio_seconds: float, wall_seconds: float) -> str:
    """"25x real time"; one decimal below 10x, so a slow run (a pipe feeding it slowly) does not
    read as 0x."""
    speed = audio_seconds / max(wall_seconds, 1e-9)
    return f"{speed:.0f}x real time" if speed >= 10 else f"{speed:.1f}x real time"


def format_hours(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d} of audio"
