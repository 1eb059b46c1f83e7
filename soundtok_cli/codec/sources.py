"""Regroup the items of token stores into sources (one audio file, its channels together)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np


@dataclass
class SourceCodes:
    source: str
    sample_rate: int
    duration: float
    channels: list[np.ndarray]  # (frames, levels) per channel, in channel order
    attrs: dict


def group_sources(batches: Iterable) -> Iterator[SourceCodes]:
    """Items of one source are consecutive in a store (encode writes them so); a source split
    across batches is joined again."""
    current: SourceCodes | None = None
    order: list[int] = []
    for batch in batches:
        for i in range(len(batch)):
            item = batch.item(i)
            source = str(item["source"])
            if current is not None and (source != current.source or int(item["channel"]) in order):
                yield _ordered(current, order)
                current = None
            if current is None:
                current = SourceCodes(source, int(item["sample_rate"]), float(item["duration"]), [], batch.attrs)
                order = []
            current.channels.append(batch.item_codes(i))
            order.append(int(item["channel"]))
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
