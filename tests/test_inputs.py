"""soundtok_cli.io.inputs: expanding files, directories, globs and @lists; stdout guards."""

from __future__ import annotations

import io
import os
import sys

import pytest

from soundtok_cli.errors import InputError, UsageError
from soundtok_cli.io.inputs import (
    expand_audio_inputs,
    is_terminal_stdout,
    refuse_binary_to_terminal,
)


def touch(root, *names):
    for name in names:
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "wb").close()


def expand(*args) -> list:
    """Paths as strings; errors as ("error", subject, message)."""
    return [
        ("error", item.subject, item.message) if isinstance(item, InputError) else item
        for item in expand_audio_inputs(list(args))
    ]


@pytest.fixture
def library(tmp_path, monkeypatch):
    """A small sound library; the tests run from inside it and use relative paths."""
    touch(
        tmp_path,
        "lib/b.wav", "lib/a.FLAC", "lib/notes.txt", "lib/c.opus", "lib/.hidden.wav",
        "lib/._a.wav", "lib/.cache/x.wav", "lib/rain/z.mp3", "lib/rain/heavy/1.ogg",
        "lib/rain/heavy/2.oga", "lib/thunder/far.aiff", "lib/thunder/near.aif",
        "lib/thunder/x.w64", "lib/thunder/y.rf64", "lib/thunder/z.wave", "lib/thunder/readme.md",
        "lib/empty/cover.jpg", "other/q.wav", "other/r.wav",
    )  # fmt: skip
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_directory_is_recursive_sorted_and_audio_only(library):
    assert expand("lib") == [
        "lib/a.FLAC", "lib/b.wav", "lib/c.opus",
        "lib/rain/heavy/1.ogg", "lib/rain/heavy/2.oga", "lib/rain/z.mp3",
        "lib/thunder/far.aiff", "lib/thunder/near.aif", "lib/thunder/x.w64",
        "lib/thunder/y.rf64", "lib/thunder/z.wave",
    ]  # fmt: skip


def test_directory_without_audio_is_an_error(library):
    assert expand("lib/empty") == [("error", "lib/empty", "no audio files found")]


def test_symlinked_directories_are_not_followed(library):
    os.symlink("..", "lib/rain/loop")
    os.symlink("../other/q.wav", "lib/rain/linked.wav")
    assert expand("lib/rain") == [
        "lib/rain/heavy/1.ogg", "lib/rain/heavy/2.oga", "lib/rain/linked.wav", "lib/rain/z.mp3",
    ]  # fmt: skip


def test_files_are_taken_as_given_in_order(library):
    assert expand("other/r.wav", "lib/notes.txt", "other/q.wav") == [
        "other/r.wav", "lib/notes.txt", "other/q.wav",
    ]  # fmt: skip


def test_missing_inputs_are_yielded_not_raised(library):
    assert expand("other/q.wav", "nope.wav", "other/r.wav") == [
        "other/q.wav", ("error", "nope.wav", "no such file or directory"), "other/r.wav",
    ]  # fmt: skip


def test_globs(library):
    assert expand("other/*.wav") == ["other/q.wav", "other/r.wav"]
    assert expand("lib/**/*.o*") == [
        "lib/c.opus", "lib/rain/heavy/1.ogg", "lib/rain/heavy/2.oga",
    ]  # fmt: skip
    assert expand("lib/thunder/[xy].*") == ["lib/thunder/x.w64", "lib/thunder/y.rf64"]
    assert expand("*.flac") == [("error", "*.flac", "no files match")]


def test_glob_matching_directories_expands_them_once(library):
    assert expand("lib/rai?", "lib/rain/**") == [
        "lib/rain/heavy/1.ogg", "lib/rain/heavy/2.oga", "lib/rain/z.mp3",
        "lib/rain/heavy/1.ogg", "lib/rain/heavy/2.oga", "lib/rain/z.mp3",
    ]  # fmt: skip
    assert expand("lib/emp*") == [("error", "lib/emp*", "no audio files found")]


def test_existing_name_with_glob_characters_is_a_file(library):
    touch(library, "take[1].wav")
    assert expand("take[1].wav") == ["take[1].wav"]


def test_list_file(library):
    os.makedirs("lists")
    with open("lists/batch.txt", "w") as f:
        f.write(
            "# thunder first\n"
            "../lib/thunder/far.aiff\n"
            "\n"
            "   ../other/q.wav   \n"
            f"{library / 'other' / 'r.wav'}\n"
            "../lib/rain/heavy\n"
            "../lib/*.wav\n"
            "gone.wav\n"
        )
    assert expand("@lists/batch.txt") == [
        "lists/../lib/thunder/far.aiff",
        "lists/../other/q.wav",
        str(library / "other" / "r.wav"),
        "lists/../lib/rain/heavy/1.ogg",
        "lists/../lib/rain/heavy/2.oga",
        "lists/../lib/b.wav",
        ("error", "lists/gone.wav", "no such file or directory"),
    ]


def test_missing_list(library):
    assert expand("@missing.txt", "other/q.wav") == [
        ("error", "@missing.txt", "no such file or directory"), "other/q.wav",
    ]  # fmt: skip


def test_list_that_is_a_directory(library):
    assert expand("@lib") == [("error", "@lib", "is a directory")]


def test_list_from_stdin_is_relative_to_cwd(library, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("other/q.wav\n# skip\nlib/rain\n"))
    assert expand("@-") == [
        "other/q.wav", "lib/rain/heavy/1.ogg", "lib/rain/heavy/2.oga", "lib/rain/z.mp3",
    ]  # fmt: skip


def test_stdin_audio():
    assert expand() == ["-"]
    assert expand("-") == ["-"]
    assert expand("-", "-") == ["-", "-"]


def test_unreadable_directory(library):
    if os.geteuid() == 0:
        pytest.skip("root reads everything")
    os.chmod("lib/rain", 0)
    try:
        assert expand("lib/rain")[0] == ("error", "lib/rain", "permission denied")
    finally:
        os.chmod("lib/rain", 0o755)


class _Stdout:
    def __init__(self, tty: bool):
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


def test_terminal_guard(monkeypatch):
    monkeypatch.setattr(sys, "stdout", _Stdout(tty=False))
    assert not is_terminal_stdout()
    refuse_binary_to_terminal("token stream")  # a pipe or file: fine
    monkeypatch.setattr(sys, "stdout", _Stdout(tty=True))
    assert is_terminal_stdout()
    with pytest.raises(UsageError) as error:
        refuse_binary_to_terminal("token stream")
    assert str(error.value) == (
        "refusing to write a binary token stream to a terminal; use -o FILE or a pipe"
    )
    monkeypatch.setattr(sys, "stdout", None)
    assert not is_terminal_stdout()
