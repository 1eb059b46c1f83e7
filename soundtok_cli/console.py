"""Everything for people goes to stderr; data goes to stdout.

Progress bars appear only when stderr is a terminal; `-q` silences notes, `-v` adds detail.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from rich.console import Console


@dataclass
class Reporter:
    command: str
    quiet: bool = False
    verbose: bool = False

    def __post_init__(self) -> None:
        self.console = Console(stderr=True, highlight=False, soft_wrap=True)
        self.failures = 0

    @property
    def interactive(self) -> bool:
        return sys.stderr.isatty() and not self.quiet

    def note(self, message: str) -> None:
        if not self.quiet:
            self.console.print(message, markup=False)

    def detail(self, message: str) -> None:
        if self.verbose and not self.quiet:
            self.console.print(message, markup=False)

    def warn(self, message: str) -> None:
        """One line about something done but not as asked (not a failure; silenced by -q)."""
        if not self.quiet:
            sys.stderr.write(f"soundtok {self.command}: warning: {message}\n")
            sys.stderr.flush()

    def error(self, error: Exception | str) -> None:
        """One line naming the input and the problem; counted for the summary and exit code."""
        self.failures += 1
        sys.stderr.write(f"soundtok {self.command}: {error}\n")
        sys.stderr.flush()
