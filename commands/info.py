"""soundtok info: what a store or stream holds (kind, codec, items, duration, bitrate)."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from soundtok_cli.io.store_args import StoresArgument

EPILOG = """Examples:

  soundtok info lib.zarr.zip

  soundtok encode *.wav | soundtok info --format json

  ls stores/*.zarr.zip | soundtok info

Exit status: 0 all inputs read, 1 some could not be read, 2 none could (or usage error).
"""


class Format(str, Enum):
    text = "text"
    json = "json"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(seconds, 60.0)
    hours, minutes = divmod(int(minutes), 60)
    clock = f"{hours}:{minutes:02d}:{secs:04.1f}" if hours else f"{minutes}:{secs:04.1f}"
    return f"{seconds:.2f} s ({clock})"


def _text(summary: dict) -> str:
    from soundtok_cli.io.store import KINDS

    spec = KINDS[summary["kind"]]
    model = summary[spec.model_key]
    producer = summary.get("producer") or {}
    rates = ", ".join(str(r) for r in summary["sample_rates"]) or "-"
    lines = [
        ("store", summary["source"]),
        ("kind", f"{summary['kind']} (format {summary['format_version']}, written by "
                 f"{producer.get('command', '?')} {producer.get('version', '?')})"),
        (spec.model_key, f"{model['name']} {model['version']} "
                         f"(weights {str(model.get('weights_sha256', ''))[:12] or '?'})"),
        ("items", f"{summary['items']} from {summary['sources']} sources"),
        ("duration", _duration(summary["duration_s"])),
        ("sample rates", f"{rates} Hz" if summary["sample_rates"] else rates),
    ]
    if "bitrate_kbps" in summary:
        lines += [
            ("levels", f"{summary['levels']} x {summary['codebook_size']} codes at "
                       f"{summary['frame_rate']:g} frames/s, {summary['frames']} frames"),
            ("bitrate", f"{summary['bitrate_kbps']:.2f} kbps"),
        ]
    return "\n".join(f"{key:<13}{value}" for key, value in lines)


def info(
    stores: StoresArgument = None,
    output_format: Annotated[
        Format, typer.Option("--format", help="text for people, json for one JSON object per store per line.")
    ] = Format.text,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but the data and errors.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Explain what is read.")] = False,
) -> None:
    """Describe token stores and streams: kind, codec, items, sources, duration, bitrate."""
    import json
    import sys

    from soundtok_cli.console import Reporter
    from soundtok_cli.errors import EXIT_SOME_FAILED, EXIT_USAGE, InputError, UsageError
    from soundtok_cli.io.store import summarize
    from soundtok_cli.io.stream import iter_sources, read_batches

    reporter = Reporter("info", quiet=quiet, verbose=verbose)
    done = 0
    try:
        for source in iter_sources(stores, on_error=reporter.error):
            try:
                reporter.detail(f"reading {source.name}")
                summary = summarize(read_batches(source), source.name)
            except InputError as error:
                reporter.error(error)
                continue
            if output_format is Format.json:
                sys.stdout.write(json.dumps(summary, separators=(", ", ": ")) + "\n")
            else:
                sys.stdout.write(("\n" if done else "") + _text(summary) + "\n")
            sys.stdout.flush()
            done += 1
    except UsageError as error:
        reporter.error(error)
        raise typer.Exit(EXIT_USAGE)
    if not done and not reporter.failures:
        reporter.error("no input: stdin held no store paths")
        raise typer.Exit(EXIT_USAGE)
    if reporter.failures:
        reporter.note(f"soundtok info: {reporter.failures} of {done + reporter.failures} inputs could not be read")
        raise typer.Exit(EXIT_SOME_FAILED if done else EXIT_USAGE)


def register(app: typer.Typer) -> None:
    app.command("info", epilog=EPILOG)(info)
