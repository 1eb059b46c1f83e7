"""soundtok search: find sounds in the index by text or by example."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Optional

import typer

EPILOG = """Examples:

  soundtok search "distant thunder"

  soundtok search "door creak" -k 20 --format json

  soundtok search --like take3.wav --segments

  soundtok search "rain on a tin roof" --format paths | xargs -d '\\n' play

One hit per source file (its best moment, over all its channels) unless --segments, which lists
every matching segment. Output is a table on a terminal and TSV with a header line
(rank, score, path, channel, start, end, content_hash) in a pipe; --format json writes JSON Lines
with those keys, --format paths each path once. Scores are cosine similarities; start and end are
seconds into the file. A text query needs the text model the index's embedder was made for;
unless --as-typed, a query that is not one of the captions the embedder was trained on is moved
halfway toward the sound of the caption nearest to it in meaning (-v names it). A
--like example is embedded with the index's own embedder (an audio file, a tokens store or an
embeddings store).

Exit status: 0 results printed, 2 nothing could be done (no index, an empty or corrupt one, an
empty query, an unreadable --like input, or a usage error)."""


class Format(str, Enum):
    table = "table"
    json = "json"
    tsv = "tsv"
    paths = "paths"


def search(
    query: Annotated[Optional[str], typer.Argument(help="What to find, in words (\"distant thunder\").",
                                                   show_default=False)] = None,
    index_path: Annotated[Optional[str], typer.Option(
        "--index", "-i", help="The index directory (default: $SOUNDTOK_INDEX, else the per-user data "
        "directory).", show_default=False)] = None,
    k: Annotated[int, typer.Option("-k", help="How many results.")] = 10,
    like: Annotated[Optional[str], typer.Option(
        "--like", help="Find sounds like this one: an audio file, a tokens store or an embeddings "
        "store (instead of QUERY).", show_default=False)] = None,
    segments: Annotated[bool, typer.Option("--segments", help="Every matching segment, not one hit "
                                           "per file.")] = False,
    output_format: Annotated[Optional[Format], typer.Option(
        "--format", help="table (default on a terminal), tsv (default otherwise), json (JSON Lines) "
        "or paths.", show_default=False)] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda, for embedding --like "
                                        "examples; cuda also searches on the GPU.")] = "auto",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors on stderr.")] = False,
    as_typed: Annotated[bool, typer.Option("--as-typed", help="Search with the words' own vector, not "
                                           "pulled toward the nearest caption the embedder was trained on.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Say which index was searched, how "
                                          "the query was read and how long it took.")] = False,
) -> None:
    """Search the index by text or by example."""
    import sys
    import time

    from soundtok_cli.console import Reporter
    from soundtok_cli.devices import check_device
    from soundtok_cli.errors import EXIT_USAGE, SoundtokError, UsageError
    from soundtok_cli.index.location import default_index_path
    from soundtok_cli.index.queries import like_query_vector, text_query_vector
    from soundtok_cli.index.results import write
    from soundtok_cli.index.search import IndexReader

    started = time.perf_counter()
    reporter = Reporter("search", quiet=quiet, verbose=verbose)
    try:
        if (query is None) == (like is None):
            raise UsageError("give a QUERY or --like AUDIO_OR_STORE (one of them)")
        if query is not None and not query.strip():
            raise UsageError("empty query; give some words, or --like AUDIO_OR_STORE", "QUERY")
        if as_typed and like is not None:
            raise UsageError("--as-typed is about the words of a QUERY; --like searches by an example", "--as-typed")
        if k < 1:
            raise UsageError("must be at least 1", "-k")
        check_device(device)
        fmt = output_format.value if output_format else ("table" if sys.stdout.isatty() else "tsv")
        path = index_path or default_index_path()
        reader = IndexReader(path)
        reader.check_not_empty()
        embedder = reader.embedder or {}
        if query is not None:
            text_query = text_query_vector(query, embedder, path, as_typed)
            vector = text_query.vector
            if text_query.nearest is not None:
                reporter.detail(f"'{query}' read with the sound of the trained caption '{text_query.nearest}'")
        else:
            vector = like_query_vector(like, embedder, device)
        reader.load("cuda" if device == "cuda" else "cpu")
        hits = reader.search(vector, k, per_file=not segments)
    except SoundtokError as error:
        reporter.error(error)
        raise typer.Exit(EXIT_USAGE)
    write(hits, fmt, sys.stdout)
    info = reader.current.index
    reporter.detail(f"searched {reader.current.segments} segments ({info.get('factory', '?')}) of {path} "
                    f"in {1000 * (time.perf_counter() - started):.0f} ms")
    reader.close()


def register(app: typer.Typer) -> None:
    app.command("search", epilog=EPILOG)(search)
