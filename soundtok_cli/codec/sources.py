"""Regroup the items of token stores into sources (one audio file, its channels together)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np

from soundtok_cli.errors import InputError
from soundtok_cli.io.parts import is_continued


@dataclass
class SourceCodes:
    source: str
    sample_rate: int
    duration: float
    channels: list[np.ndarray]  # (frames, levels) per channel, in channel order
    attrs: dict
    streaming: int | None = None  # the channel (index into channels) still arriving in parts
    rest: Iterator[np.ndarray] | None = None  # its further codes, part by part


@dataclass
class _Piece:
    """Item ``index`` of ``batch``: a whole item, or one part of an item written in parts."""

    batch: object
    index: int
    first: bool  # the item starts here
    last: bool  # the item ends here


def _pieces(batches: Iterable) -> Iterator[_Piece]:
    carried = False  # the batch before left its last item open
    for batch in batches:
        continued, n = is_continued(batch), len(batch)
        for i in range(n):
            yield _Piece(batch, i, first=not (carried and i == 0), last=not (continued and i == n - 1))
        carried = continued and n > 0


def _rest(pieces: Iterator[_Piece]) -> Iterator[np.ndarray]:
    """The codes of an open item's further parts, up to its last."""
    for piece in pieces:
        yield piece.batch.item_codes(piece.index)
        if piece.last:
            return


def group_sources(batches: Iterable) -> Iterator[SourceCodes]:
    """Items of one source are consecutive in a store (encode writes them so); a source split
    across batches is joined again.

    The batches may hold parts (`read_batches(..., parts=True)`, continuations already checked):
    a source whose last item arrives in parts comes out at that item's first part, with
    ``streaming`` naming the channel and ``rest`` yielding its further codes as they are read.
    Read ``rest`` before asking for the next source (what is left unread is skipped). An item in
    parts must be its source's last channel: another channel of the same source after it is an
    InputError (the source could not be decoded as it arrives).
    """
    pieces = _pieces(batches)
    current: SourceCodes | None = None
    order: list[int] = []
    streamed: tuple[str, list[int]] | None = None  # the last source that came out in parts
    for piece in pieces:
        if not piece.first:
            continue  # the unread rest of an item in parts
        batch, i = piece.batch, piece.index
        item = batch.item(i)
        source, channel = str(item["source"]), int(item["channel"])
        if streamed is not None and source == streamed[0] and channel not in streamed[1]:
            raise InputError(f"channel {channel} follows channel {streamed[1][-1]}, which came in parts; "
                             "only a source's last channel can come in parts", source)
        streamed = None
        if current is not None and (source != current.source or channel in order):
            yield _ordered(current, order)
            current = None
        if current is None:
            current = SourceCodes(source, int(item["sample_rate"]), float(item["duration"]), [], batch.attrs)
            order = []
        current.channels.append(batch.item_codes(i))
        order.append(channel)
        if not piece.last:
            group = _ordered(current, order)
            group.streaming = sorted(order).index(channel)
            group.rest = _rest(pieces)
            streamed, current = (source, order), None
            yield group
    if current is not None:
        yield _ordered(current, order)


def _ordered(group: SourceCodes, order: list[int]) -> SourceCodes:
    group.channels = [c for _, c in sorted(zip(order, group.channels), key=lambda pair: pair[0])]
    return group


def output_path(template: str, source: str, index: int, fmt: str) -> str:
    """Fill an output template: {stem} {name} {dir} {index} {ext}; a plain path is kept as is."""
    name = "stdin" if source == "-" else os.path.basename(source.rstrip("/"))
    stem = os.path.splitext(name)[0]
    return template.format(stem=stem, name=name, dir=os.path.dirname(source) or ".", index=index, ext=fmt)
