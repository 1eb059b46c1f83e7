"""Search results on stdout: a table for people, TSV, JSON Lines or bare paths for programs.

- ``table`` (the default on a terminal): rank, score, time range and path (relative to the current
  directory when below it), with rich;
- ``tsv`` (the default when stdout is a pipe or file): a header line, then one line per hit with
  the columns rank, score, path, channel, start, end, content_hash; tabs, newlines, carriage
  returns and backslashes inside a path are written as \\t, \\n, \\r and \\\\;
- ``json``: JSON Lines, one object per hit with the same keys;
- ``paths``: each hit's path once, one per line (for xargs).

Scores are cosine similarities (inner products of unit vectors), higher is better; times are
seconds from the start of the source.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import TextIO

from soundtok_cli.index.meta import Hit

FORMATS = ("table", "json", "tsv", "paths")
COLUMNS = ("rank", "score", "path", "channel", "start", "end", "content_hash")


def records(hits: Sequence[Hit]) -> list[dict]:
    return [{"rank": rank, "score": round(hit.score, 6), "path": hit.source, "channel": hit.channel,
             "start": round(hit.start, 6), "end": round(hit.end, 6), "content_hash": hit.content_hash}
            for rank, hit in enumerate(hits, 1)]


def write(hits: Sequence[Hit], fmt: str, out: TextIO) -> None:
    if fmt == "json":
        for record in records(hits):
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    elif fmt == "tsv":
        out.write("\t".join(COLUMNS) + "\n")
        for record in records(hits):
            out.write("\t".join([str(record["rank"]), f"{record['score']:.4f}", _tsv(record["path"]),
                                 str(record["channel"]), f"{record['start']:.3f}", f"{record['end']:.3f}",
                                 _tsv(record["content_hash"])]) + "\n")
    elif fmt == "paths":
        for path in dict.fromkeys(hit.source for hit in hits):
            out.write(path + "\n")
    elif fmt == "table":
        _table(hits, out)
    else:
        raise ValueError(f"unknown format {fmt!r}")
    out.flush()


def _tsv(text: str) -> str:
    return (text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r"))


def clock(seconds: float) -> str:
    """``1:02.5`` (minutes:seconds), ``1:02:03.5`` past an hour."""
    minutes, secs = divmod(max(0.0, seconds), 60.0)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{secs:04.1f}" if hours else f"{minutes}:{secs:04.1f}"


def _shown_path(path: str) -> str:
    """For people: a path below the current directory relative to it (shorter, still usable)."""
    if not os.path.isabs(path):
        return path
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return path
    return path if relative.startswith("..") else relative


def _table(hits: Sequence[Hit], out: TextIO) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    multichannel = any(hit.channel for hit in hits)
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("#", justify="right")
    table.add_column("score", justify="right")
    table.add_column("time", justify="right", no_wrap=True)
    if multichannel:
        table.add_column("ch", justify="right")
    table.add_column("path", overflow="fold")
    for rank, hit in enumerate(hits, 1):
        row = [str(rank), f"{hit.score:.3f}", f"{clock(hit.start)}-{clock(hit.end)}"]
        if multichannel:
            row.append(str(hit.channel))
        table.add_row(*row, Text(_shown_path(hit.source)))  # Text: brackets in a path are not markup
    Console(file=out, highlight=False, soft_wrap=False).print(table)
