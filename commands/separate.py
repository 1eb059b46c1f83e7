"""soundtok separate: remove hum, clicks or hiss from recordings (restoration by signal processing)."""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated, Optional

import typer

from soundtok_cli.errors import EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, InputError, UsageError

EPILOG = """Examples:

  soundtok separate old-take.wav --remove hum -o clean.wav

  soundtok separate tapes/ --remove hum,clicks,hiss -o 'clean/{stem}.flac' --residual 'removed/{stem}.wav'

  sox record.mp3 -t wav - | soundtok separate - --remove clicks --remove hiss --strength 0.5 | sox -t wav - -d

What can be removed: hum (mains hum at 50 or 60 Hz, +-1 Hz, and its harmonics, found
automatically; a file without hum is left untouched and reported), clicks (impulsive clicks and
crackle, repaired by interpolation) and hiss (stationary broadband noise; --strength 0 to 2,
default 1). Several are applied in the order hum, clicks, hiss. Separating sources by a description
(--keep speech, --remove "crowd chatter") needs the query-conditioned separation model, which
this version does not have: such requests exit with status 2.

OUT is a file (.wav, .flac or .ogg), - (WAV on stdout; the default when stdout is not a
terminal) or a template with {stem}, {name}, {dir}, {index} or {ext} for several inputs.
--residual writes what was removed (input minus output) the same way. Sample rate, channels and
length are kept; each channel is processed on its own. Exit status: 0 all inputs written, 1 some
failed (the rest were written), 2 nothing could be done or a usage error."""



def separate(
    inputs: Annotated[Optional[list[str]], typer.Argument(help="Audio files, directories, globs, @list.txt, or - for audio on stdin.", show_default=False)] = None,
    remove: Annotated[Optional[list[str]], typer.Option("--remove", "-R", help="hum, clicks or hiss (repeatable or comma-separated).")] = None,
    keep: Annotated[Optional[str], typer.Option("--keep", help="A source to keep, by description (needs the separation model; not in this version).")] = None,
    output: Annotated[Optional[str], typer.Option("-o", "--output", help="Output file, - for WAV on stdout, or a template like 'out/{stem}.wav'.")] = None,
    residual: Annotated[Optional[str], typer.Option("--residual", help="Also write what was removed (input minus output): a file, - or a template.")] = None,
    strength: Annotated[float, typer.Option("--strength", help="Hiss reduction strength, 0 (none) to 2 (default 1).")] = 1.0,
    audio_format: Annotated[Optional[str], typer.Option("--audio-format", help="wav, flac or ogg for OUT and the residual (default: from the extension).")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="Report format on stdout: text (notes on stderr) or json (JSON Lines).")] = "text",
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Only errors on stderr.")] = False,
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="Also say where each file was written.")] = False,
) -> None:
    """Remove hum, clicks or hiss from recordings."""
    from soundtok_cli.codec.sources import output_path
    from soundtok_cli.console import Reporter
    from soundtok_cli.io.inputs import expand_audio_inputs, refuse_binary_to_terminal, is_terminal_stdout
    from soundtok_cli.io.audio import output_format
    from soundtok_cli.progress import format_speed
    from soundtok_cli.separate import MODEL_NEEDED, parse_removals
    from soundtok_cli.separate.restore import restore_file

    reporter = Reporter("separate", quiet=quiet, verbose=verbose)
    if keep is not None:
        raise UsageError(f"cannot keep {keep!r}: {MODEL_NEEDED}", "--keep")
    things = parse_removals(remove or [])
    if fmt not in ("text", "json"):
        raise UsageError(f"unknown format '{fmt}' (text, json)", "--format")
    if not 0.0 <= strength <= 2.0:
        raise UsageError("must be between 0 and 2", "--strength")
    if output is None:
        if is_terminal_stdout():
            raise UsageError("refusing to write audio to a terminal; give -o FILE, a template, or a pipe", "-o")
        output = "-"
    if output == "-" and residual == "-":
        raise UsageError("the output and the residual cannot both go to stdout", "--residual")
    if fmt == "json" and "-" in (output, residual):
        raise UsageError("--format json writes the report to stdout, which then cannot carry audio; give -o FILE")
    out_format = output_format(output, audio_format, "--audio-format")
    res_format = (output_format(residual, audio_format, "--audio-format", "--residual")
                  if residual is not None else None)
    if "-" in (output, residual):
        refuse_binary_to_terminal("audio")

    sources = []
    for name in expand_audio_inputs(inputs or []):
        if isinstance(name, InputError):
            reporter.error(name)
        else:
            sources.append(name)
    for path, option in ((output, "-o"), (residual, "--residual")):
        if path is not None and len(sources) > 1 and "{" not in path:
            raise UsageError(f"{path} is one file but there are {len(sources)} inputs; use a template such as 'out/{{stem}}.wav'", option)

    started = time.monotonic()
    done, seconds, written = 0, 0.0, set()
    for index, source in enumerate(sources):
        try:
            if source.endswith((".zarr", ".zarr.zip")):
                raise InputError("a token store; decode it first (soundtok decode STORE -o - | soundtok separate - ...)", source)
            out_path = output_path(output, source, index, out_format) if "{" in output else output
            res_path = (output_path(residual, source, index, res_format) if "{" in residual else residual) if residual else None
            for path in (out_path, res_path):
                if path is not None and path != "-" and path in written:
                    raise InputError(f"output {path} would be written twice (give the template {{index}} or {{dir}})", source)
            if out_path == res_path:
                raise InputError(f"the output and the residual are both {out_path}", source)
            report = restore_file(source, things, out_path, res_path, out_format, res_format, strength)
        except InputError as error:
            reporter.error(error)
            continue
        written.update(p for p in (out_path, res_path) if p and p != "-")
        done += 1
        seconds += report.duration
        if fmt == "json":
            sys.stdout.write(json.dumps(report.as_json()) + "\n")
            sys.stdout.flush()
        reporter.note(f"{source}: {_describe(report)}")
        reporter.detail(f"{source} -> {out_path}" + (f", residual {res_path}" if res_path else ""))
    elapsed = max(time.monotonic() - started, 1e-9)
    if done == 0 and reporter.failures:
        raise typer.Exit(EXIT_USAGE)
    reporter.note(f"restored {done} file{'' if done == 1 else 's'} ({seconds:.1f} s) at {format_speed(seconds, elapsed)}"
                  + (f"; {reporter.failures} failed" if reporter.failures else ""))
    raise typer.Exit(EXIT_USAGE if done == 0 else EXIT_SOME_FAILED if reporter.failures else EXIT_OK)


def _describe(report) -> str:
    if report.silent:
        return "silent; passed through unchanged"
    parts = []
    if report.hum_found is not None:
        hum = report.hum
        parts.append(f"hum at {hum['frequency']:.2f} Hz removed ({len(hum['harmonics'])} harmonics)" if hum
                     else "no hum found (left untouched)")
    if report.clicks is not None:
        parts.append(f"{report.clicks} click{'' if report.clicks == 1 else 's'} repaired")
    if "hiss" in report.removed:
        parts.append(f"hiss reduced (noise floor {report.hiss_floor_dbfs:.0f} dBFS)" if report.hiss_floor_dbfs is not None
                     else "no hiss floor found (left untouched)")
    return "; ".join(parts)


def register(app: typer.Typer) -> None:
    app.command("separate", epilog=EPILOG)(separate)
