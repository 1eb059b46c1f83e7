"""Checks shared by the command-line tests: how a refused input must look to a user."""

from __future__ import annotations

import subprocess


def one_line_error(result: subprocess.CompletedProcess, code: int, *needles: str) -> str:
    """The command exited with `code` and said one line on stderr (no traceback) holding every
    needle; that line is returned."""
    err = result.stderr.decode()
    assert result.returncode == code, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]
