"""The `soundtok` command: a typer app that registers one subcommand per module in commands/.

Command modules import only light modules at import time (typer, numpy-free helpers), so that
`soundtok --help` stays instant; torch, zarr and the models load inside the commands that use them.
"""

from __future__ import annotations

import sys

import typer

from soundtok_cli.errors import EXIT_USAGE, SoundtokError

app = typer.Typer(
    name="soundtok",
    help="Sound as learned tokens: encode, decode and inspect token stores, composable through pipes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# One module per subcommand; each exposes `register(app)`.
COMMANDS = ["encode", "decode", "embed", "index", "search", "generate", "info", "cat", "models", "spatialize", "separate"]


def _register_commands() -> None:
    import importlib

    for name in COMMANDS:
        module = importlib.import_module(f"soundtok_cli.commands.{name}")
        module.register(app)
    for command in app.registered_commands:
        command.epilog = reflowed(command.epilog)


def reflowed(epilog: str | None) -> str | None:
    """The epilog with each prose paragraph on one line, for the help renderer to wrap at the
    terminal's width: it keeps the source's line breaks, so at 80 columns each ~95-character source
    line wrapped into a long line and a short one. Indented paragraphs (examples) keep their lines."""
    if not epilog:
        return epilog
    paragraphs = epilog.split("\n\n")
    return "\n\n".join(p if p.startswith("  ") else " ".join(p.split()) for p in paragraphs)


_register_commands()


def main() -> None:
    try:
        app(prog_name="soundtok")
    except SoundtokError as error:
        command = sys.argv[1] if len(sys.argv) > 1 else ""
        sys.stderr.write(f"soundtok {command}: {error}\n".replace("soundtok : ", "soundtok: "))
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write("soundtok: interrupted\n")
        sys.exit(130)
    except BrokenPipeError:
        # The reader went away (`| head`); quietly stop like other Unix tools.
        sys.stderr.close()
        sys.exit(EXIT_USAGE)


if __name__ == "__main__":
    main()
