"""Items that span batches: a long item written to a stream as it is made, part by part.

A stream is a sequence of batches of whole items, except that a batch's ``soundtok`` attributes
may say ``"continues": true``: its last item carries on in the next batch, whose first item has
the same source and channel and holds the frames that follow. A producer that makes one long item
(`soundtok generate`) writes it this way, so that a consumer downstream of a pipe
(`soundtok decode`) starts work before the item is finished. Every part carries the whole item's
fields: the same source, channel and sample rate, and the duration of the whole source (a reader
knows the total from the first part). The joined item has the frames of all parts in order and
the fields of its last part (a content hash is known only once the item is complete).

A writer marks every batch but the one holding an item's last part::

    sink.write(mark_continued(Batch.tokens(...)))   # the batch's last item goes on
    sink.write(Batch.tokens(...))                     # its first item is that item's last part

Readers see whole items: `read_batches` joins parts (`join_parts`) unless asked for them
(``parts=True``: batches as they arrive, each continuation checked by `check_parts`); file stores
(x.zarr, x.zarr.zip) are written joined, so only streams ever hold parts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from soundtok_cli.errors import InputError
from soundtok_cli.io.store import CONTINUES, Batch

# Fields every part of an item must agree on: which item it is, and the facts about its source.
_SAME_ITEM = ("source", "channel")
_SAME_SOURCE = ("sample_rate", "duration")


def is_continued(batch: Batch) -> bool:
    """True when the batch's last item continues in the next batch of the stream."""
    return batch.attrs.get(CONTINUES) is True


def mark_continued(batch: Batch) -> Batch:
    """The same batch, marked: its last item continues in the next batch the writer writes."""
    if not len(batch):
        raise ValueError("an empty batch has no item to continue")
    return Batch(dict(batch.attrs, **{CONTINUES: True}), batch.items, batch.arrays)


def _whole(batch: Batch) -> Batch:
    """The batch without the continuation mark (its items are whole)."""
    if CONTINUES not in batch.attrs:
        return batch
    attrs = {key: value for key, value in batch.attrs.items() if key != CONTINUES}
    return Batch(attrs, batch.items, batch.arrays)


def _describe(fields: dict[str, Any]) -> str:
    return f"{fields['source']!r} channel {fields['channel']}"


class Continuity:
    """Checks, batch by batch, that each batch carries on the item its predecessor left open."""

    def __init__(self, subject: str | None = None):
        self.subject = subject
        self.open: dict[str, Any] | None = None  # fields of the item left open, if any

    def follow(self, batch: Batch) -> None:
        """Check the next batch; InputError (naming the subject) when it does not fit."""
        if self.open is not None:
            if not len(batch):
                raise InputError(
                    f"parts do not match: {_describe(self.open)} continues in the next batch, "
                    "which holds no items", self.subject)
            first = batch.item(0)
            if any(first[name] != self.open[name] for name in _SAME_ITEM):
                raise InputError(
                    f"parts do not match: {_describe(self.open)} continues in the next batch, "
                    f"which begins with {_describe(first)}", self.subject)
            for name in _SAME_SOURCE:
                if name in first and first[name] != self.open[name]:
                    raise InputError(
                        f"parts do not match: {_describe(self.open)} has {name} "
                        f"{self.open[name]} in one part and {first[name]} in the next", self.subject)
        if not is_continued(batch):
            self.open = None
        elif not len(batch):
            raise InputError("a batch says its last item continues but holds no items", self.subject)
        else:
            last = batch.item(len(batch) - 1)
            self.open = {name: last[name] for name in _SAME_ITEM + _SAME_SOURCE if name in last}

    def end(self) -> None:
        """The stream ended: InputError when it ended inside an item."""
        if self.open is not None:
            raise InputError(
                f"the stream was cut off: {_describe(self.open)} continues past its last batch",
                self.subject)


class PartJoiner:
    """Joins parts into whole items as batches arrive: `push` each batch and write out what it
    returns; `finish` at the end of the stream. Memory holds the parts of one open item."""

    def __init__(self, subject: str | None = None):
        self.continuity = Continuity(subject)
        self.held: list[Batch] = []  # the parts so far of the item left open

    def push(self, batch: Batch) -> list[Batch]:
        """Check and take one batch; return batches of whole items (none while an item is open)."""
        self.continuity.follow(batch)
        continued, n = is_continued(batch), len(batch)
        if not self.held and not continued:
            return [batch]
        out = []
        lo = 0
        if self.held:  # the first item carries on the one left open
            self.held.append(batch.select(slice(0, 1)))
            lo = 1
            if n > 1 or not continued:
                out.append(_join_item(self.held))
                self.held = []
        whole_hi = n - 1 if continued else n
        if whole_hi > lo:
            out.append(_whole(batch.select(slice(lo, whole_hi))))
        if continued and n - 1 >= lo:
            self.held = [batch.select(slice(n - 1, n))]
        return out

    def finish(self) -> None:
        """The stream ended: InputError when it was cut off inside an item."""
        self.continuity.end()


def _join_item(parts: list[Batch]) -> Batch:
    """One item from its parts (one-item compact batches): all frames, the last part's fields."""
    last = parts[-1]
    items = dict(last.items)
    items["start"] = np.zeros(1, np.int64)
    items["length"] = np.array([sum(int(p.items["length"][0]) for p in parts)], np.int64)
    arrays = {name: np.concatenate([p.arrays[name] for p in parts]) for name in last.arrays}
    ref = last.spec.item_ref
    if ref is not None:
        arrays[ref] = np.zeros(len(arrays[ref]), arrays[ref].dtype)
    return _whole(Batch(last.attrs, items, arrays))


def check_parts(batches: Iterable[Batch], subject: str | None = None) -> Iterator[Batch]:
    """The batches unchanged, as they arrive, each continuation checked: a part that does not
    carry on the open item, or a stream that ends inside an item, is an InputError."""
    continuity = Continuity(subject)
    for batch in batches:
        continuity.follow(batch)
        yield batch
    continuity.end()


def join_parts(batches: Iterable[Batch], subject: str | None = None) -> Iterator[Batch]:
    """Batches of whole items: parts joined into one item each, no batch marked as continuing.
    A mismatch or a stream cut off inside an item is an InputError naming ``subject``."""
    joiner = PartJoiner(subject)
    for batch in batches:
        yield from joiner.push(batch)
    joiner.finish()
