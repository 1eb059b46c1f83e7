"""soundtok embed: token stores in, an embeddings store out (a vector per window and per item)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from soundtok_cli.io.store_args import StoresArgument

EPILOG = """Examples:

  soundtok encode library/ | soundtok embed | soundtok index

  soundtok embed rain.zarr.zip -o rain.emb.zarr.zip --window 4 --hop 2

  ls tokens/*.zarr.zip | soundtok embed -o library.emb.zarr

Vectors live in the all-MiniLM-L6-v2 sentence space, so a text query finds them (soundtok search).
Tokens must come from the codec the embedder was trained on (soundtok models); others are refused.
Exit status: 0 all inputs embedded, 1 some were skipped, 2 none could be read (or usage error).
"""


def embed(
    stores: StoresArgument = None,
    output: Annotated[
        Optional[str],
        typer.Option("--output", "-o", help="x.zarr (directory), x.zarr.zip (one file) or - "
                     "(stream on stdout, the default when stdout is not a terminal).",
                     show_default=False),
    ] = None,
    window: Annotated[float, typer.Option("--window", help="Seconds per segment vector.", min=0.0)] = 2.0,
    hop: Annotated[float, typer.Option("--hop", help="Seconds between segment starts.", min=0.0)] = 1.0,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")] = "auto",
    report_format: Annotated[
        str, typer.Option("--format", help="Report on stderr: text, or json (one line at the end).")
    ] = "text",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Explain what is read.")] = False,
) -> None:
    """Embed token stores: one vector per window of every item and one per item."""
    import json
    import sys

    from soundtok_cli.console import Reporter
    from soundtok_cli.errors import EXIT_SOME_FAILED, EXIT_USAGE, InputError, UsageError
    from soundtok_cli.io.sink import open_sink
    from soundtok_cli.io.stream import iter_sources, read_batches
    from soundtok_cli.models.registry import load_embedder
    from soundtok_cli.threads import configure_torch_threads

    reporter = Reporter("embed", quiet=quiet, verbose=verbose)
    try:
        if report_format not in ("text", "json"):
            raise UsageError(f"unknown format '{report_format}' (text or json)", "--format")
        configure_torch_threads()
        embedder = load_embedder(device=device)
        embedder.window_frames(window, hop)
        sink = open_sink(output, "embeddings store")
    except UsageError as error:
        reporter.error(error)
        raise typer.Exit(EXIT_USAGE)
    read = items = segments = 0
    try:
        with sink:
            for source in iter_sources(stores, on_error=reporter.error):
                reporter.detail(f"reading {source.name}")
                try:
                    for batch in read_batches(source, expect_kind="tokens"):
                        embedded = embedder.embed_batch(batch, window, hop, subject=source.name)
                        sink.write(embedded, subject=source.name)
                        items += len(embedded)
                        segments += len(embedded.arrays["embeddings"])
                except InputError as error:
                    reporter.error(error)
                    continue
                read += 1
    except UsageError as error:
        reporter.error(error)
        raise typer.Exit(EXIT_USAGE)
    except BrokenPipeError:
        raise
    except OSError as error:
        reporter.error(f"{sink.name}: cannot write ({error.strerror or error})")
        raise typer.Exit(EXIT_USAGE)
    if not read and not reporter.failures:
        reporter.error("no input: stdin held no store paths")
        raise typer.Exit(EXIT_USAGE)
    summary = {"inputs": read, "failed": reporter.failures, "items": items, "segments": segments,
               "output": sink.name}
    if report_format == "json" and not quiet:
        sys.stderr.write(json.dumps(summary) + "\n")
    else:
        reporter.detail(f"wrote {items} items, {segments} segments to {sink.name}")
    if reporter.failures:
        reporter.note(f"soundtok embed: {reporter.failures} of {read + reporter.failures} inputs skipped")
        raise typer.Exit(EXIT_SOME_FAILED if read else EXIT_USAGE)


def register(app: typer.Typer) -> None:
    app.command("embed", epilog=EPILOG)(embed)
