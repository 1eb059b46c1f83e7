"""soundtok index: put embeddings stores into the search index (FAISS and metadata)."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Optional

import typer

from soundtok_cli.io.store_args import StoresArgument

EPILOG = """Examples:

  soundtok index library.emb.zarr.zip

  soundtok encode sounds/ | soundtok embed | soundtok index

  soundtok index --append new.emb.zarr.zip -o ~/sfx.index

  soundtok index --prune

Without --append the index holds exactly the given stores. With --append, files not in the index
are added, files whose content changed (same path, other content hash) replaced, and the others
kept as they are. --prune drops files whose local path no longer exists; alone it reads no input
(give - to read stdin too). A file is its source path and channel: local paths are stored
absolute, a relative one resolved against the current directory; URLs and - as they are.

The default index is $SOUNDTOK_INDEX, else $XDG_DATA_HOME/soundtok/index, else
~/.local/share/soundtok/index, so `soundtok search` finds it with no flag. Indexes of up to
50,000 segments are searched exactly; larger ones with an IVF index whose nprobe is chosen when
it is built by measuring recall@10 against exact search (at least 0.95; -v shows it). FAISS works
on the GPU when it sees one (pip install soundtok[gpu]).

A new index is written in full beside the old one and then made current in one atomic step:
searches go on meanwhile, and an interrupted run leaves the old index as it was. Two runs writing
one index take turns: the second waits for the first (up to --wait seconds).

Exit status: 0 all inputs indexed, 1 some stores could not be read (the rest were indexed),
2 nothing could be done (nothing was changed)."""


class Format(str, Enum):
    text = "text"
    json = "json"


def index(
    stores: StoresArgument = None,
    output: Annotated[Optional[str], typer.Option(
        "--output", "-o", help="The index directory (default: $SOUNDTOK_INDEX, else the per-user data "
        "directory).", show_default=False)] = None,
    append: Annotated[bool, typer.Option("--append", "-a", help="Add new and changed files to the "
                                         "index; keep the rest.")] = False,
    prune: Annotated[bool, typer.Option("--prune", help="Drop files whose local path no longer "
                                        "exists.")] = False,
    wait: Annotated[float, typer.Option("--wait", help="Seconds to wait while another soundtok index "
                                        "writes the same index.")] = 600.0,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda (FAISS on the GPU).")] = "auto",
    report_format: Annotated[Format, typer.Option(
        "--format", help="text: a summary on stderr; json: one JSON object on stdout.")] = Format.text,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors on stderr.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Explain what is read and the "
                                          "index's type, nprobe and measured recall.")] = False,
) -> None:
    """Build or update the search index from embeddings stores."""
    import json
    import sys

    from soundtok_cli.console import Reporter
    from soundtok_cli.devices import check_device
    from soundtok_cli.errors import EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, InputError, UsageError
    from soundtok_cli.index.location import default_index_path
    from soundtok_cli.index.update import IndexWriter
    from soundtok_cli.io.stream import iter_sources, read_batches

    reporter = Reporter("index", quiet=quiet, verbose=verbose)
    if wait < 0:
        raise UsageError("must be 0 or more seconds", "--wait")
    check_device(device)
    path = output or default_index_path()
    read_stdin = bool(stores) or not prune  # --prune alone reads no input
    read = 0
    try:
        with IndexWriter(path, append=append, prune=prune, device=device, wait=wait,
                         note=reporter.note, detail=reporter.detail) as writer:
            for source in (iter_sources(stores, on_error=reporter.error) if read_stdin else ()):
                reporter.detail(f"reading {source.name}")
                try:
                    items = writer.add_store(
                        read_batches(source, expect_kind="embeddings", max_frames=1 << 16), source.name)
                except InputError as error:
                    if "store, expected embeddings" in error.message:
                        error = InputError(f"{error.message} (make one with `soundtok embed`)", error.subject)
                    reporter.error(error)
                    continue
                reporter.detail(f"{source.name}: {items} items")
                read += 1
            if read_stdin and not read:
                if not reporter.failures:
                    reporter.error("no input: stdin held no store paths")
                raise typer.Exit(EXIT_USAGE)
            report = writer.commit()
    except UsageError as error:
        reporter.error(error)
        raise typer.Exit(EXIT_USAGE)
    except InputError as error:  # the index itself (missing for --prune, corrupt)
        reporter.error(error)
        raise typer.Exit(EXIT_USAGE)
    except OSError as error:
        reporter.error(f"{path}: cannot write the index ({error.strerror or error})")
        raise typer.Exit(EXIT_USAGE)

    if report_format is Format.json:
        sys.stdout.write(json.dumps({**report.as_json(), "failed": reporter.failures}) + "\n")
        sys.stdout.flush()
    else:
        reporter.note(_summary(report, reporter.failures, prune))
        index_type = report.index or {}
        if index_type.get("type") == "ivf":
            reporter.detail(f"index {index_type['factory']}: nprobe {index_type['nprobe']} of "
                            f"{index_type['nlist']} lists, recall@10 {index_type['recall_at_10']:.3f} "
                            f"against exact search ({index_type['recall_queries']} queries)")
    raise typer.Exit(EXIT_SOME_FAILED if reporter.failures else EXIT_OK)


def _summary(report, failed: int, prune: bool) -> str:
    counts = [f"{report.added} added", f"{report.replaced} replaced", f"{report.unchanged} unchanged"]
    if report.removed:
        counts.append(f"{report.removed} removed")
    if report.pruned or prune:
        counts.append(f"{report.pruned} pruned")
    kind = {"exact": "exact", "ivf": "approximate (IVF)", "empty": "empty"}.get(
        (report.index or {}).get("type"), "?")
    verb = "indexed" if report.changed else "index unchanged:"
    line = (f"{verb} {report.sources} file{'s' if report.sources != 1 else ''} "
            f"({', '.join(counts)}), {report.segments} segments, {kind} index at {report.path}")
    if failed:
        line += f"; {failed} input{'s' if failed != 1 else ''} failed"
    return line


def register(app: typer.Typer) -> None:
    app.command("index", epilog=EPILOG)(index)
