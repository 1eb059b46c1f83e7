"""User-facing errors and the exit codes every command documents.

A `SoundtokError` is a problem with the user's input or request, never a bug: commands print it as
one line (``soundtok encode: song.wav: not an audio file``) and exit with its code, no traceback.
"""

EXIT_OK = 0
EXIT_SOME_FAILED = 1  # some inputs failed; the others were processed and written
EXIT_USAGE = 2  # usage error, or nothing could be done


class SoundtokError(Exception):
    """A problem the user can fix; `subject` names the input it is about (a path, "-", an option)."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, subject: str | None = None):
        super().__init__(message)
        self.message = message
        self.subject = subject

    def __str__(self) -> str:
        return f"{self.subject}: {self.message}" if self.subject else self.message


class InputError(SoundtokError):
    """One input (audio file, store, stream batch) cannot be read; batch work goes on past it."""


class UsageError(SoundtokError):
    """The command line asks for something impossible (conflicting options, terminal as output)."""
