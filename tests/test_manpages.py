"""man/ holds one page per command, generated from the CLI; the checked-in pages must be current."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAN = os.path.join(ROOT, "man")
STALE = "man/ is out of date with the CLI; run `make man` and commit man/"


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("man")
    result = subprocess.run([sys.executable, "-m", "soundtok_cli.manpages", str(out)],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return str(out)


def _pages(directory: str) -> dict[str, bytes]:
    names = sorted(n for n in os.listdir(directory) if n.endswith(".1"))
    return {n: open(os.path.join(directory, n), "rb").read() for n in names}


def test_checked_in_pages_match_the_cli(regenerated):
    fresh, stored = _pages(regenerated), _pages(MAN)
    assert sorted(fresh) == sorted(stored), f"{STALE} (pages differ: {sorted(set(fresh) ^ set(stored))})"
    stale = [name for name in fresh if fresh[name] != stored[name]]
    assert not stale, f"{STALE} (changed: {', '.join(stale)})"


def test_every_command_has_a_page():
    import typer.main

    from soundtok_cli.app import COMMANDS, app

    group = typer.main.get_command(app)
    names = set(group.commands) | set(COMMANDS)
    assert names, "no commands registered"
    expected = {"soundtok.1"} | {f"soundtok-{name}.1" for name in names}
    missing = expected - set(os.listdir(MAN))
    assert not missing, f"no man page for: {', '.join(sorted(missing))}; run `make man`"
    root = open(os.path.join(MAN, "soundtok.1"), encoding="utf-8").read()
    for name in names:
        page = open(os.path.join(MAN, f"soundtok-{name}.1"), encoding="utf-8").read()
        for section in (".SH NAME", ".SH SYNOPSIS", ".SH DESCRIPTION", ".SH OPTIONS", ".SH EXIT STATUS"):
            assert section in page, f"soundtok-{name}.1 lacks {section}"
        assert f"\\fB{name}\\fR" in root, f"soundtok.1 does not list {name}"


def test_pages_hold_options_examples_and_exit_codes():
    page = open(os.path.join(MAN, "soundtok-encode.1"), encoding="utf-8").read()
    assert "\\fB\\-l\\fR, \\fB\\-\\-levels\\fR \\fILEVELS\\fR" in page
    assert ".SH EXAMPLES" in page and "soundtok encode sounds/" in page
    exit_section = page.split(".SH EXIT STATUS", 1)[1]
    for code in ("0", "1", "2"):
        assert f".B {code}\n" in exit_section


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff is not installed")
def test_pages_render_without_warnings():
    pages = [os.path.join(MAN, n) for n in sorted(os.listdir(MAN)) if n.endswith(".1")]
    result = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", *pages],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
