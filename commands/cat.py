"""soundtok cat: merge stores and streams into one store or stream, batch by batch."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from soundtok_cli.io.store_args import StoresArgument

EPILOG = """Examples:

  soundtok cat a.zarr b.zarr.zip -o all.zarr.zip

  soundtok cat part-*.zarr.zip | soundtok decode -o out/

  ls stores/*.zarr | soundtok cat -o library.zarr

Inputs must share kind and codec (name, version, weights); others are skipped with an error.
Exit status: 0 all inputs merged, 1 some were skipped, 2 none could be read (or usage error).
"""


def cat(
    stores: StoresArgument = None,
    output: Annotated[
        Optional[str],
        typer.Option("--output", "-o", help="x.zarr (directory), x.zarr.zip (one file) or - "
                     "(stream on stdout, the default when stdout is not a terminal).",
                     show_default=False),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Explain what is read.")] = False,
) -> None:
    """Concatenate token stores and streams into one (a stream on stdout unless -o is given)."""
    from soundtok_cli.console import Reporter
    from soundtok_cli.errors import EXIT_SOME_FAILED, EXIT_USAGE, InputError, UsageError
    from soundtok_cli.io.sink import open_sink
    from soundtok_cli.io.stream import iter_sources, read_batches

    reporter = Reporter("cat", quiet=quiet, verbose=verbose)
    try:
        sink = open_sink(output)
    except UsageError as error:
        reporter.error(error)
        raise typer.Exit(EXIT_USAGE)
    merged = 0
    try:
        with sink:
            for source in iter_sources(stores, on_error=reporter.error):
                reporter.detail(f"reading {source.name}")
                try:
                    for batch in read_batches(source):
                        sink.write(batch.with_producer("cat"), subject=source.name)
                except InputError as error:
                    reporter.error(error)
                    continue
                merged += 1
    except UsageError as error:  # nothing is published: the output was dropped
        reporter.error(error)
        raise typer.Exit(EXIT_USAGE)
    except BrokenPipeError:
        raise
    except OSError as error:
        reporter.error(f"{sink.name}: cannot write ({error.strerror or error})")
        raise typer.Exit(EXIT_USAGE)
    if not merged and not reporter.failures:
        reporter.error("no input: stdin held no store paths")
        raise typer.Exit(EXIT_USAGE)
    reporter.detail(f"wrote {sink.items} items, {sink.frames} frames to {sink.name}")
    if reporter.failures:
        reporter.note(
            f"soundtok cat: {reporter.failures} of {merged + reporter.failures} inputs skipped"
        )
        raise typer.Exit(EXIT_SOME_FAILED if merged else EXIT_USAGE)


def register(app: typer.Typer) -> None:
    app.command("cat", epilog=EPILOG)(cat)
