"""Audio inputs as users name them (files, directories, globs, @lists, "-"), and stdout guards.

Problems with one input are yielded as `InputError`s rather than raised, so a batch command can
report each one and go on with the rest.
"""

from __future__ import annotations

import glob
import os
import sys
from collections.abc import Iterator
from typing import IO

from soundtok_cli.errors import InputError, UsageError

AUDIO_EXTENSIONS = frozenset(
    {".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".w64", ".rf64"}
)
_GLOB_CHARS = frozenset("*?[")


def expand_audio_inputs(args: list[str]) -> Iterator[str | InputError]:
    """Yield audio sources ("-" for stdin) in order, or an InputError for each input that fails.

    An argument is a file (taken as given, whatever its extension), a directory (searched
    recursively in sorted order for files with audio extensions, skipping hidden names), a glob
    pattern, "@list.txt" (one input per line; blank lines and #-comments skipped; relative paths
    are relative to the list's directory), "@-" (the list on stdin) or "-" (audio on stdin).
    No arguments at all means "-".
    """
    if not args:
        yield "-"
        return
    for arg in args:
        if arg == "-":
            yield "-"
        elif arg.startswith("@"):
            yield from _expand_list(arg)
        else:
            yield from _expand_path(arg)


def _expand_path(arg: str) -> Iterator[str | InputError]:
    if os.path.isdir(arg):
        yield from _expand_directory(arg)
    elif os.path.lexists(arg):
        yield arg
    elif _GLOB_CHARS & set(arg):
        yield from _expand_glob(arg)
    else:
        yield InputError("no such file or directory", arg)


def _expand_glob(pattern: str) -> Iterator[str | InputError]:
    matches = sorted(glob.glob(pattern, recursive=True))
    if not matches:
        yield InputError("no files match", pattern)
        return
    seen: set[str] = set()  # "**" matches a directory and also the files inside it
    for match in matches:
        for item in _walk(match) if os.path.isdir(match) else [match]:
            if isinstance(item, str):
                if item in seen:
                    continue
                seen.add(item)
            yield item
    if not seen:
        yield InputError("no audio files found", pattern)


def _expand_directory(directory: str) -> Iterator[str | InputError]:
    found = False
    for item in _walk(directory):
        found = found or isinstance(item, str)
        yield item
    if not found:
        yield InputError("no audio files found", directory)


def _walk(directory: str) -> Iterator[str | InputError]:
    """Depth-first in name order; symlinked directories are not followed (no loops)."""
    try:
        with os.scandir(directory) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
    except OSError as error:
        yield InputError(_os_message(error), directory)
        return
    for entry in entries:
        if entry.name.startswith("."):  # .DS_Store, ._foo.wav from macOS, our own temp files
            continue
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(entry.path)
        elif os.path.splitext(entry.name)[1].lower() in AUDIO_EXTENSIONS:
            yield entry.path


def _expand_list(arg: str) -> Iterator[str | InputError]:
    name = arg[1:]
    if name == "-":
        if sys.stdin is None:
            yield InputError("no standard input", arg)
            return
        lines, base = sys.stdin.read().splitlines(), ""
    else:
        try:
            with open(name, encoding=sys.getfilesystemencoding(), errors="surrogateescape") as f:
                lines = f.read().splitlines()
        except OSError as error:
            yield InputError(_os_message(error), arg)
            return
        base = os.path.dirname(name)
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line == "-":
            yield "-"
        else:
            yield from _expand_path(os.path.join(base, os.path.expanduser(line)))


def open_input(path: str) -> IO[bytes]:
    """A local input file opened for reading; an InputError naming it when it cannot be."""
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise InputError("no such file", path) from None
    except IsADirectoryError:
        raise InputError("is a directory", path) from None
    except OSError as error:
        raise InputError(f"cannot open ({_os_message(error)})", path) from None


def read_small_input(path: str, limit: int, what: str) -> bytes:
    """The bytes of a small input file (a scene, a trajectory), refusing one over `limit` bytes."""
    with open_input(path) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise InputError(f"{what} larger than {limit >> 20} MB", path)
    return data


def _os_message(error: OSError) -> str:
    if isinstance(error, FileNotFoundError):
        return "no such file or directory"
    return (error.strerror or str(error)).lower()


def is_terminal_stdout() -> bool:
    try:
        return sys.stdout is not None and sys.stdout.isatty()
    except ValueError:  # closed
        return False


def refuse_binary_to_terminal(what: str) -> None:
    """Raise UsageError when stdout is a terminal: binary data there garbles the screen."""
    if is_terminal_stdout():
        raise UsageError(f"refusing to write a binary {what} to a terminal; use -o FILE or a pipe")
