"""The store format: a Zarr v3 group holding a batch of items (clips) and their payload arrays.

A store of kind ``tokens`` looks like this (see DESIGN.md, "Data model: stores")::

    zarr.json             attributes {"soundtok": {kind, format_version, producer, codec}}
    items/source          (N,) string    path or URL as given, "-" for stdin
    items/channel         (N,) int32     channel index within the source
    items/start           (N,) int64     first frame of the item in `codes`
    items/length          (N,) int64     frame count of the item in `codes`
    items/sample_rate     (N,) int32     of the source
    items/duration        (N,) float64   seconds
    items/content_hash    (N,) string    hash of the decoded PCM
    codes                 (T, L) uint16  residual-VQ codes, level 0 = coarsest

In memory a store (or a part of one) is a `Batch`: the ``soundtok`` attributes, the per-item table
``items/*`` as a dict of 1-D arrays, and the payload arrays (``codes``) as a dict of arrays whose
first axis is indexed by ``items/start`` and ``items/length``. Kinds are pluggable: `register_kind`
adds one (its item fields, payload arrays and the attribute naming the model that made it).

A batch of a stream may say ``"continues": true`` in its attributes: its last item carries on in
the next batch (a long item written as it is made; see `soundtok_cli.io.parts`). Splitting such a
batch keeps the flag on its last piece only; a store on disk never holds it.

Only standard codecs are used (bytes, vlen-utf8 for strings, zstd), so any Zarr v3 client can read
a store. This module imports numpy only; zarr is imported inside the functions that need it.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from soundtok_cli.errors import InputError

FORMAT_VERSION = 1
ATTRS_KEY = "soundtok"
# A stream batch's attribute: true when its last item continues in the next batch.
CONTINUES = "continues"

# Read-back batches hold at most this many frames (unless a single item is longer), so that a
# store of any size is processed in bounded memory.
MAX_BATCH_FRAMES = 1 << 20
# Items are read from the per-item table in blocks of this many rows (one chunk).
ITEM_BLOCK = 1 << 16
ITEM_CHUNK = 1 << 16
# Payload chunks are about this many bytes uncompressed.
CHUNK_BYTES = 1 << 20
ZSTD_LEVEL = 3

# Strings in memory: numpy's variable-width StringDType (what zarr returns for its "string" data
# type); object arrays of str on numpy 1.x.
STR = np.dtypes.StringDType() if hasattr(np.dtypes, "StringDType") else np.dtype(object)


# --------------------------------------------------------------------------------------------
# Kinds


@dataclass(frozen=True)
class KindSpec:
    """What a store of one kind holds.

    item_fields: the per-item table, ``items/<name>`` -> numpy dtype (`STR` for strings); always
        includes ``start`` and ``length``, which index the payload arrays along their first axis.
    payload: payload array name -> numpy dtype.
    trailing: attrs -> {payload name: shape after the first axis} (e.g. codes -> (levels,)); an
        ``items/<name>`` key gives a per-item field a shape too (e.g. one embedding per item).
    model_key: the attribute naming the model that made the payload ("codec" for tokens); stores
        made by different models (name, version or weights) cannot be mixed.
    model_fields: the keys that model attribute must have.
    item_ref: a payload array holding, for each row, the index of the item it belongs to
        (``segments/item`` of embeddings); kept consistent when batches are split, joined or written.
    """

    name: str
    item_fields: Mapping[str, Any]
    payload: Mapping[str, Any]
    trailing: Callable[[Mapping[str, Any]], dict[str, tuple[int, ...]]]
    model_key: str
    model_fields: tuple[str, ...]
    check_model: Callable[[Mapping[str, Any]], str | None] = lambda model: None
    value_bounds: Callable[[Mapping[str, Any]], dict[str, int]] = lambda attrs: {}
    item_ref: str | None = None

    def item_shape(self, attrs: Mapping[str, Any], name: str) -> tuple[int, ...]:
        """Shape of one row of ``items/<name>``: () for scalar fields."""
        return tuple(self.trailing(attrs).get(f"items/{name}", ()))


KINDS: dict[str, KindSpec] = {}


def register_kind(spec: KindSpec) -> None:
    for required in ("start", "length"):
        if required not in spec.item_fields:
            raise ValueError(f"kind {spec.name}: item_fields must include {required!r}")
    KINDS[spec.name] = spec


def _check_codec(codec: Mapping[str, Any]) -> str | None:
    for key in ("sample_rate", "levels", "codebook_size"):
        value = codec.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            return f"codec.{key} must be a positive integer, not {value!r}"
    if not 2 <= codec["codebook_size"] <= 65536:
        return f"codec.codebook_size {codec['codebook_size']} does not fit uint16 codes"
    frame_rate = codec.get("frame_rate")
    if not isinstance(frame_rate, (int, float)) or isinstance(frame_rate, bool) or not frame_rate > 0:
        return f"codec.frame_rate must be a positive number, not {frame_rate!r}"
    return None


TOKENS = KindSpec(
    name="tokens",
    item_fields={
        "source": STR,
        "channel": np.dtype("int32"),
        "start": np.dtype("int64"),
        "length": np.dtype("int64"),
        "sample_rate": np.dtype("int32"),
        "duration": np.dtype("float64"),
        "content_hash": STR,
    },
    payload={"codes": np.dtype("uint16")},
    trailing=lambda attrs: {"codes": (int(attrs["codec"]["levels"]),)},
    model_key="codec",
    model_fields=(
        "name", "version", "weights_sha256", "sample_rate", "frame_rate", "levels", "codebook_size",
    ),
    check_model=_check_codec,
    value_bounds=lambda attrs: {"codes": int(attrs["codec"]["codebook_size"])},
)
register_kind(TOKENS)


def _check_embedder(embedder: Mapping[str, Any]) -> str | None:
    for key in ("dim",):
        value = embedder.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= 65536:
            return f"embedder.{key} must be a positive integer, not {value!r}"
    for key in ("window", "hop"):
        value = embedder.get(key)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
            return f"embedder.{key} must be a positive number of seconds, not {value!r}"
    return None


# An embeddings store: one row per segment (a window of an item) plus one vector per item, all
# L2-normalised; items/start and items/length index the segment rows.
EMBEDDINGS = KindSpec(
    name="embeddings",
    item_fields={**TOKENS.item_fields, "embedding": np.dtype("float32")},
    payload={
        "segments/item": np.dtype("int64"),
        "segments/start": np.dtype("float64"),
        "segments/end": np.dtype("float64"),
        "embeddings": np.dtype("float32"),
    },
    trailing=lambda attrs: {
        "segments/item": (), "segments/start": (), "segments/end": (),
        "embeddings": (int(attrs["embedder"]["dim"]),),
        "items/embedding": (int(attrs["embedder"]["dim"]),),
    },
    model_key="embedder",
    model_fields=("name", "version", "weights_sha256", "dim", "window", "hop", "codec", "text"),
    check_model=_check_embedder,
    item_ref="segments/item",
)
register_kind(EMBEDDINGS)


def make_attrs(kind: str, model: Mapping[str, Any], command: str, **extra: Any) -> dict[str, Any]:
    """The ``soundtok`` attributes of a new store: kind, format version, producer and model."""
    from soundtok_cli import __version__

    spec = KINDS[kind]
    return {
        "kind": kind,
        "format_version": FORMAT_VERSION,
        "producer": {"command": command, "version": __version__},
        spec.model_key: dict(model),
        **extra,
    }


def model_label(attrs: Mapping[str, Any]) -> str:
    """``codec stc-small 1.0 (weights 3f2a9c01b7e4)``: names the model behind a store."""
    spec = KINDS.get(attrs.get("kind", ""))
    key = spec.model_key if spec else "codec"
    model = attrs.get(key) or {}
    sha = str(model.get("weights_sha256", ""))[:12] or "?"
    levels = f", {model['levels']} levels" if "levels" in model else ""
    return f"{key} {model.get('name', '?')} {model.get('version', '?')} (weights {sha}{levels})"


def _identity(attrs: Mapping[str, Any]) -> tuple:
    spec = KINDS[attrs["kind"]]
    model = attrs[spec.model_key]
    return (attrs["kind"],) + tuple(
        (key, json_key(model.get(key))) for key in spec.model_fields
    )


def json_key(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def check_compatible(first: Mapping[str, Any], other: Mapping[str, Any], subject: str | None = None) -> None:
    """Refuse to mix stores of different kinds or made by different models, naming both."""
    if first.get("kind") != other.get("kind"):
        raise InputError(
            f"cannot mix a {other.get('kind')} store with {first.get('kind')} stores", subject
        )
    if _identity(first) != _identity(other):
        raise InputError(
            f"cannot mix {model_label(other)} with {model_label(first)}", subject
        )


def check_attrs(root_attrs: Mapping[str, Any], subject: str | None, expect_kind: str | None = None) -> dict:
    """Validate a store's root attributes; return a copy of its ``soundtok`` attribute dict."""
    attrs = root_attrs.get(ATTRS_KEY) if isinstance(root_attrs, Mapping) else None
    if not isinstance(attrs, Mapping):
        raise InputError("not a soundtok store (a Zarr group without soundtok attributes)", subject)
    version = attrs.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise InputError(f"not a soundtok store (bad format_version {version!r})", subject)
    if version > FORMAT_VERSION:
        raise InputError(
            f"unsupported format_version {version} (this soundtok reads up to {FORMAT_VERSION}); "
            "upgrade soundtok",
            subject,
        )
    kind = attrs.get("kind")
    if expect_kind is not None and kind != expect_kind:
        article = "an" if str(kind)[:1].lower() in "aeiou" else "a"
        raise InputError(f"is {article} {kind} store, expected {expect_kind}", subject)
    spec = KINDS.get(kind) if isinstance(kind, str) else None
    if spec is None:
        raise InputError(f"unknown store kind {kind!r}", subject)
    model = attrs.get(spec.model_key)
    if not isinstance(model, Mapping):
        raise InputError(f"{kind} store without {spec.model_key} attributes", subject)
    missing = [key for key in spec.model_fields if key not in model]
    if missing:
        raise InputError(f"{spec.model_key} attributes lack {', '.join(missing)}", subject)
    problem = spec.check_model(model)
    if problem:
        raise InputError(problem, subject)
    if not isinstance(attrs.get(CONTINUES, False), bool):
        raise InputError(f"{CONTINUES} must be true or false, not {attrs[CONTINUES]!r}", subject)
    return copy.deepcopy(dict(attrs))


# --------------------------------------------------------------------------------------------
# Batches


def _as_field(values: Any, dtype: Any) -> np.ndarray:
    if dtype is STR:
        array = np.asarray(values)
        if array.dtype != STR:
            if array.dtype.kind not in "UOT" and array.size:
                raise TypeError(f"expected strings, got {array.dtype}")
            array = array.astype(STR)
        return array
    return np.asarray(values, dtype=dtype)


@dataclass
class Batch:
    """Some items of a store: attributes, per-item table and payload, all in memory.

    ``items[name]`` are 1-D arrays of length N; ``arrays[name]`` are payload arrays whose first axis
    is indexed by ``items["start"]`` and ``items["length"]`` (for tokens: ``codes``, (T, L) uint16).
    """

    attrs: dict[str, Any]
    items: dict[str, np.ndarray]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    # -- construction --------------------------------------------------------------------

    @classmethod
    def tokens(
        cls,
        codec: Mapping[str, Any],
        command: str,
        *,
        source: Iterable[str],
        channel: Iterable[int],
        sample_rate: Iterable[int],
        duration: Iterable[float],
        content_hash: Iterable[str],
        codes: Iterable[np.ndarray],
    ) -> "Batch":
        """A tokens batch from per-item lists; ``codes`` is one (frames, levels) array per item."""
        parts = [np.asarray(c, dtype=np.uint16) for c in codes]
        levels = int(codec["levels"])
        for part in parts:
            if part.ndim != 2 or part.shape[1] != levels:
                raise ValueError(f"item codes must be (frames, {levels}), got {part.shape}")
        lengths = np.array([len(p) for p in parts], dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64) if len(parts) else lengths
        items = {
            "source": _as_field([str(s) for s in source], STR),
            "channel": _as_field(list(channel), np.int32),
            "start": starts,
            "length": lengths,
            "sample_rate": _as_field(list(sample_rate), np.int32),
            "duration": _as_field(list(duration), np.float64),
            "content_hash": _as_field([str(h) for h in content_hash], STR),
        }
        all_codes = np.concatenate(parts) if parts else np.zeros((0, levels), np.uint16)
        batch = cls(make_attrs("tokens", codec, command), items, {"codes": all_codes})
        batch.validate()
        return batch

    @classmethod
    def empty(cls, attrs: Mapping[str, Any]) -> "Batch":
        spec = KINDS[attrs["kind"]]
        trailing = spec.trailing(attrs)
        items = {
            name: np.zeros((0,) + spec.item_shape(attrs, name), dtype=dtype) if spec.item_shape(attrs, name)
            else _as_field([], dtype)
            for name, dtype in spec.item_fields.items()
        }
        arrays = {
            name: np.zeros((0,) + trailing[name], dtype=dtype) for name, dtype in spec.payload.items()
        }
        return cls(copy.deepcopy(dict(attrs)), items, arrays)

    # -- views ----------------------------------------------------------------------------

    @property
    def kind(self) -> str:
        return self.attrs["kind"]

    @property
    def spec(self) -> KindSpec:
        return KINDS[self.kind]

    @property
    def codec(self) -> dict[str, Any]:
        return self.attrs[self.spec.model_key]

    @property
    def codes(self) -> np.ndarray:
        return self.arrays["codes"]

    @property
    def frames(self) -> int:
        """Total frames of all items."""
        return int(self.items["length"].sum()) if len(self) else 0

    def __len__(self) -> int:
        return len(self.items["start"])

    def item(self, i: int) -> dict[str, Any]:
        """Item i's row of the per-item table as plain Python values."""
        return {name: values[i].item() if values.ndim == 1 and hasattr(values[i], "item") else values[i]
                for name, values in self.items.items()}

    def item_array(self, i: int, name: str = "codes") -> np.ndarray:
        start = int(self.items["start"][i])
        return self.arrays[name][start : start + int(self.items["length"][i])]

    def item_codes(self, i: int) -> np.ndarray:
        """Item i's codes, (frames, levels) uint16 (a view into `codes`)."""
        return self.item_array(i, "codes")

    def with_producer(self, command: str) -> "Batch":
        from soundtok_cli import __version__

        attrs = copy.deepcopy(self.attrs)
        attrs["producer"] = {"command": command, "version": __version__}
        return Batch(attrs, self.items, self.arrays)

    # -- checks ---------------------------------------------------------------------------

    def validate(self, subject: str | None = None) -> "Batch":
        """Check shapes, dtypes, offsets and code ranges; normalise item dtypes in place."""
        attrs = check_attrs({ATTRS_KEY: self.attrs}, subject)
        spec = KINDS[attrs["kind"]]
        n = None
        for name, dtype in spec.item_fields.items():
            if name not in self.items:
                raise InputError(f"missing items/{name}", subject)
            try:
                values = _as_field(self.items[name], dtype)
            except (TypeError, ValueError) as error:
                raise InputError(f"items/{name}: {error}", subject) from None
            shape = spec.item_shape(attrs, name)
            if values.ndim != 1 + len(shape) or values.shape[1:] != shape:
                raise InputError(f"items/{name} has shape {values.shape}, expected (items, {', '.join(map(str, shape))})"
                                 if shape else f"items/{name} must be 1-D, not {values.shape}", subject)
            if n is None:
                n = len(values)
            elif len(values) != n:
                raise InputError(f"items/{name} has {len(values)} rows, items/start {n}", subject)
            self.items[name] = values
        trailing = spec.trailing(attrs)
        bounds = spec.value_bounds(attrs)
        total = None
        for name, dtype in spec.payload.items():
            if name not in self.arrays:
                raise InputError(f"missing {name}", subject)
            array = np.asarray(self.arrays[name])
            if array.dtype != dtype:
                raise InputError(f"{name} must be {dtype}, not {array.dtype}", subject)
            if array.ndim != 1 + len(trailing[name]) or array.shape[1:] != trailing[name]:
                raise InputError(
                    f"{name} has shape {array.shape}, expected (frames, {', '.join(map(str, trailing[name]))})",
                    subject,
                )
            if total is None:
                total = len(array)
            elif len(array) != total:
                raise InputError(f"{name} has {len(array)} rows, expected {total}", subject)
            if name in bounds and array.size and int(array.max()) >= bounds[name]:
                raise InputError(f"{name} has values >= {bounds[name]}", subject)
            self.arrays[name] = array
        start, length = self.items["start"], self.items["length"]
        if n:
            if (start < 0).any() or (length < 0).any() or ((start + length) > (total or 0)).any():
                bad = int(np.flatnonzero((start < 0) | (length < 0) | (start + length > (total or 0)))[0])
                raise InputError(
                    f"item {bad} spans frames {int(start[bad])}..{int(start[bad] + length[bad])}, "
                    f"outside the {total} frames stored",
                    subject,
                )
        if spec.item_ref is not None:
            refs = self.arrays[spec.item_ref]
            for i in range(n or 0):
                lo, hi = int(start[i]), int(start[i] + length[i])
                if hi > lo and ((refs[lo:hi] != i).any()):
                    raise InputError(f"{spec.item_ref} disagrees with items/start for item {i}", subject)
        return self

    def is_compact(self) -> bool:
        """True when items tile the payload in order, from frame 0, with nothing else stored."""
        length = self.items["length"]
        total = len(next(iter(self.arrays.values()))) if self.arrays else 0
        if not len(self):
            return total == 0
        expected = np.concatenate([[0], np.cumsum(length)[:-1]])
        return bool(np.array_equal(self.items["start"], expected)) and int(length.sum()) == total

    # -- reshaping ------------------------------------------------------------------------

    def compacted(self) -> "Batch":
        """The same items, with the payload rewritten to hold exactly their frames, in order."""
        if self.is_compact():
            return self
        return self.select(np.arange(len(self)))

    def select(self, indices: Iterable[int] | slice) -> "Batch":
        """A new compact batch of the chosen items (in the order given)."""
        index = np.arange(len(self))[indices] if isinstance(indices, slice) else np.asarray(
            list(indices) if not isinstance(indices, np.ndarray) else indices, dtype=np.int64
        )
        items = {name: values[index] for name, values in self.items.items()}
        start, length = self.items["start"][index], self.items["length"][index]
        new_start = np.concatenate([[0], np.cumsum(length)[:-1]]).astype(np.int64) if len(index) else length.copy()
        items["start"] = new_start
        arrays = {}
        contiguous = len(index) > 0 and bool(np.array_equal(start[1:], start[:-1] + length[:-1]))
        for name, array in self.arrays.items():
            if contiguous:
                arrays[name] = array[int(start[0]) : int(start[-1] + length[-1])]
            elif len(index):
                arrays[name] = np.concatenate(
                    [array[int(s) : int(s + n)] for s, n in zip(start, length)]
                )
            else:
                arrays[name] = array[:0]
        _renumber_refs(self.spec, arrays, length)
        return Batch(self.attrs, items, arrays)

    def split(self, max_frames: int = MAX_BATCH_FRAMES) -> Iterator["Batch"]:
        """Compact batches of consecutive items holding at most ``max_frames`` frames each (an item
        longer than that travels alone). When this batch continues (its last item carries on in
        the next batch), only the last piece says so."""
        if len(self) == 0 or (self.frames <= max_frames and self.is_compact()):
            yield self.compacted()
            return
        for lo, hi in frame_groups(self.items["length"], max_frames):
            piece = self.select(slice(lo, hi))
            if hi < len(self) and CONTINUES in self.attrs:
                piece.attrs = {key: value for key, value in self.attrs.items() if key != CONTINUES}
            yield piece

    @staticmethod
    def concat(batches: Iterable["Batch"], subject: str | None = None) -> "Batch":
        """One compact batch of all items in order; refuses mixing kinds or models (naming both)."""
        batches = list(batches)
        if not batches:
            raise ValueError("Batch.concat needs at least one batch")
        first = batches[0]
        for other in batches[1:]:
            check_compatible(first.attrs, other.attrs, subject)
        parts = [b.compacted() for b in batches]
        items = {
            name: np.concatenate([p.items[name] for p in parts]) for name in first.items
        }
        lengths = items["length"]
        items["start"] = (
            np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64) if len(lengths) else lengths
        )
        arrays = {name: np.concatenate([p.arrays[name] for p in parts]) for name in first.arrays}
        _renumber_refs(first.spec, arrays, lengths)
        return Batch(copy.deepcopy(first.attrs), items, arrays)


def _renumber_refs(spec: KindSpec, arrays: dict[str, np.ndarray], lengths: np.ndarray) -> None:
    """Point each row's item reference at its item in a compact batch."""
    if spec.item_ref is not None and spec.item_ref in arrays:
        refs = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
        arrays[spec.item_ref] = refs.astype(arrays[spec.item_ref].dtype, copy=False)


def frame_groups(lengths: np.ndarray, max_frames: int) -> Iterator[tuple[int, int]]:
    """Split items into consecutive runs [lo, hi) whose lengths sum to at most max_frames."""
    n = len(lengths)
    lo = 0
    ends = np.cumsum(lengths, dtype=np.int64)
    while lo < n:
        base = ends[lo - 1] if lo else 0
        hi = int(np.searchsorted(ends, base + max_frames, side="right"))
        hi = max(hi, lo + 1)
        yield lo, hi
        lo = hi


# --------------------------------------------------------------------------------------------
# Writing a Zarr group


def payload_chunk_rows(trailing: tuple[int, ...], itemsize: int) -> int:
    """Rows per payload chunk so that a chunk is about CHUNK_BYTES uncompressed (a power of 2)."""
    row_bytes = max(1, itemsize * int(np.prod(trailing, dtype=np.int64)))
    rows = 1 << max(10, min(20, int(round(math.log2(CHUNK_BYTES / row_bytes)))))
    return rows


def _fitted_rows(rows: int, default: int) -> int:
    """A power-of-two chunk length just covering ``rows``, at most ``default``."""
    return min(default, 1 << max(0, int(rows) - 1).bit_length())


class GroupWriter:
    """Appends batches to a Zarr v3 group in ``store``, creating the arrays on the first batch;
    `finish` writes what is still pending (call it before publishing the store).

    Rows are buffered up to one chunk per array and written a whole chunk at a time, so each chunk
    is encoded once; memory holds one batch plus at most one chunk per array. With ``fit=True``
    (one batch, written once: a stream archive) chunks are sized to the batch, up to the defaults.
    """

    def __init__(self, store: Any, *, fit: bool = False):
        self.store = store
        self.fit = fit
        self.group = None
        self.attrs: dict[str, Any] | None = None
        self.items = 0
        self.frames = 0
        self._arrays: dict[str, Any] = {}
        self._chunk: dict[str, int] = {}
        self._pending: dict[str, list[np.ndarray]] = {}
        self._pending_rows: dict[str, int] = {}
        self._written: dict[str, int] = {}

    def _create(self, batch: Batch) -> None:
        import zarr
        from zarr.codecs import ZstdCodec

        self.attrs = copy.deepcopy(batch.attrs)
        spec = KINDS[self.attrs["kind"]]
        self.group = zarr.open_group(store=self.store, mode="w", attributes={ATTRS_KEY: self.attrs})
        zstd = ZstdCodec(level=ZSTD_LEVEL)
        arrays: list[tuple[str, Any, tuple[int, ...], int]] = []
        for name, dtype in spec.item_fields.items():
            shape = spec.item_shape(self.attrs, name)
            rows = ITEM_CHUNK if not shape else payload_chunk_rows(shape, np.dtype(dtype).itemsize)
            rows = _fitted_rows(len(batch), rows) if self.fit else rows
            arrays.append((f"items/{name}", dtype, shape, rows))
        trailing = spec.trailing(self.attrs)
        for name, dtype in spec.payload.items():
            rows = payload_chunk_rows(trailing[name], np.dtype(dtype).itemsize)
            if self.fit:
                rows = _fitted_rows(len(batch.arrays[name]), rows)
            arrays.append((name, dtype, trailing[name], rows))
        for name, dtype, trail, rows in arrays:
            self._arrays[name] = self.group.create_array(
                name,
                shape=(0,) + trail,
                dtype=str if dtype is STR else dtype,
                chunks=(rows,) + trail,
                compressors=zstd,
                fill_value="" if dtype is STR else 0,
            )
            self._chunk[name] = rows
            self._pending[name] = []
            self._pending_rows[name] = 0
            self._written[name] = 0

    def append(self, batch: Batch, subject: str | None = None) -> None:
        if self.group is None:
            self._create(batch)
        else:
            check_compatible(self.attrs, batch.attrs, subject)
        batch = batch.compacted()
        spec = KINDS[self.attrs["kind"]]
        for name in spec.item_fields:
            values = batch.items[name]
            if name == "start":
                values = values + self.frames
            self._push(f"items/{name}", values)
        for name in spec.payload:
            values = batch.arrays[name]
            if name == spec.item_ref:
                values = values + self.items
            self._push(name, values)
        self.items += len(batch)
        self.frames += batch.frames

    def _push(self, name: str, values: np.ndarray) -> None:
        if len(values):
            self._pending[name].append(values)
            self._pending_rows[name] += len(values)
        if self._pending_rows[name] >= self._chunk[name]:
            self._flush(name, whole_chunks=True)

    def _flush(self, name: str, whole_chunks: bool) -> None:
        pending = self._pending[name]
        data = pending[0] if len(pending) == 1 else (np.concatenate(pending) if pending else None)
        total = self._pending_rows[name]
        rows = total - total % self._chunk[name] if whole_chunks else total
        array = self._arrays[name]
        start = self._written[name]
        if rows:
            array.resize((start + rows,) + tuple(array.shape[1:]))
            array[start : start + rows] = data[:rows]
        elif not whole_chunks and array.shape[0] != start:
            array.resize((start,) + tuple(array.shape[1:]))
        self._written[name] = start + rows
        rest = total - rows
        self._pending[name] = [data[rows:]] if rest else []
        self._pending_rows[name] = rest

    def finish(self) -> None:
        """Write the rows still buffered; the store is then complete."""
        for name in self._arrays:
            self._flush(name, whole_chunks=False)


def write_group(store: Any, batch: Batch) -> None:
    """Write one batch as a complete store into a Zarr store object."""
    writer = GroupWriter(store, fit=True)
    writer.append(batch)
    writer.finish()


# --------------------------------------------------------------------------------------------
# Reading a Zarr group


def _zarr_error(error: Exception, subject: str | None) -> InputError:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return InputError(f"unreadable store ({text})", subject)


def open_group(store: Any, subject: str | None) -> Any:
    """Open the root group of a Zarr store read-only, as an InputError when it is not one."""
    import zarr

    try:
        node = zarr.open(store=store, mode="r")
    except FileNotFoundError:
        raise InputError("not a soundtok store or stream (no Zarr metadata)", subject) from None
    except Exception as error:  # zarr raises many types for malformed metadata
        if type(error).__name__ in ("GroupNotFoundError", "NodeNotFoundError", "ArrayNotFoundError"):
            raise InputError("not a soundtok store or stream (no Zarr metadata)", subject) from None
        raise _zarr_error(error, subject) from None
    if not isinstance(node, zarr.Group):
        raise InputError("not a soundtok store (a Zarr array, not a group)", subject)
    return node


def read_group(
    group: Any,
    subject: str | None,
    *,
    expect_kind: str | None = None,
    max_frames: int = MAX_BATCH_FRAMES,
) -> Iterator[Batch]:
    """Yield a store's items as compact batches of at most ``max_frames`` frames each (bounded
    memory: items are read in blocks, payload slices only for the items of one batch).

    An empty store yields one empty batch, so its attributes still reach the reader. A store that
    says it continues (a batch of a stream) says so on its last batch only.
    """
    try:
        attrs = check_attrs(dict(group.attrs), subject, expect_kind)
        spec = KINDS[attrs["kind"]]
        trailing = spec.trailing(attrs)
        arrays = {}
        for name in [f"items/{f}" for f in spec.item_fields] + list(spec.payload):
            try:
                arrays[name] = group[name]
            except KeyError:
                raise InputError(f"missing array {name}", subject) from None
            if not hasattr(arrays[name], "shape") or not hasattr(arrays[name], "dtype"):
                raise InputError(f"{name} is not an array", subject)
        n = arrays["items/start"].shape[0] if arrays["items/start"].ndim == 1 else -1
        for name in spec.item_fields:
            array = arrays[f"items/{name}"]
            shape = spec.item_shape(attrs, name)
            if array.ndim != 1 + len(shape) or array.shape[0] != n or tuple(array.shape[1:]) != shape:
                raise InputError(f"items/{name} has shape {array.shape}, items/start ({n},)", subject)
        total = None
        for name, dtype in spec.payload.items():
            array = arrays[name]
            if array.dtype != dtype:
                raise InputError(f"{name} must be {dtype}, not {array.dtype}", subject)
            if array.shape[1:] != trailing[name]:
                raise InputError(f"{name} has shape {array.shape}, expected (frames, {trailing[name]})", subject)
            if total is None:
                total = array.shape[0]
            elif array.shape[0] != total:
                raise InputError(f"{name} has {array.shape[0]} rows, expected {total}", subject)
        if n == 0:
            yield Batch.empty(attrs)
            return
        for block in range(0, n, ITEM_BLOCK):
            stop = min(n, block + ITEM_BLOCK)
            items = {
                name: _as_field(arrays[f"items/{name}"][block:stop], dtype)
                for name, dtype in spec.item_fields.items()
            }
            start, length = items["start"], items["length"]
            bad = np.flatnonzero((start < 0) | (length < 0) | (start + length > total))
            if len(bad):
                i = int(bad[0])
                raise InputError(
                    f"item {block + i} spans frames {int(start[i])}..{int(start[i] + length[i])}, "
                    f"outside the {total} frames stored",
                    subject,
                )
            for lo, hi in frame_groups(length, max_frames):
                sub_items = {name: values[lo:hi] for name, values in items.items()}
                payload = {
                    name: _read_rows(arrays[name], start[lo:hi], length[lo:hi]) for name in spec.payload
                }
                lengths = sub_items["length"]
                sub_items["start"] = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
                if spec.item_ref is not None:
                    expected = np.repeat(np.arange(block + lo, block + hi, dtype=np.int64), lengths)
                    if not np.array_equal(payload[spec.item_ref], expected):
                        raise InputError(f"{spec.item_ref} disagrees with items/start", subject)
                    _renumber_refs(spec, payload, lengths)
                batch = Batch(copy.deepcopy(attrs), sub_items, payload)
                if block + hi < n:  # not the store's last items: they do not continue
                    batch.attrs.pop(CONTINUES, None)
                bounds = spec.value_bounds(attrs)
                for name, bound in bounds.items():
                    if payload[name].size and int(payload[name].max()) >= bound:
                        raise InputError(f"{name} has values >= {bound}", subject)
                yield batch
    except InputError:
        raise
    except (MemoryError, RecursionError):
        raise
    except Exception as error:  # corrupt chunks, bad metadata, I/O errors: one line, no traceback
        raise _zarr_error(error, subject) from None


def _read_rows(array: Any, start: np.ndarray, length: np.ndarray) -> np.ndarray:
    """The rows of each item in order, reading each contiguous run with one slice."""
    if not len(start):
        return np.zeros((0,) + tuple(array.shape[1:]), dtype=array.dtype)
    breaks = np.flatnonzero(start[1:] != start[:-1] + length[:-1]) + 1
    runs = np.split(np.arange(len(start)), breaks)
    parts = []
    for run in runs:
        lo, hi = int(start[run[0]]), int(start[run[-1]] + length[run[-1]])
        parts.append(np.asarray(array[lo:hi]) if hi > lo else np.zeros((0,) + tuple(array.shape[1:]), array.dtype))
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


# --------------------------------------------------------------------------------------------
# Summaries


def bitrate_kbps(codec: Mapping[str, Any]) -> float:
    """frame_rate * levels * log2(codebook_size) / 1000."""
    return float(codec["frame_rate"]) * int(codec["levels"]) * math.log2(int(codec["codebook_size"])) / 1000


def summarize(batches: Iterable[Batch], source: str) -> dict[str, Any]:
    """What `soundtok info` reports about one store, accumulated batch by batch."""
    attrs: dict[str, Any] | None = None
    items = frames = 0
    duration = 0.0
    sources = 0
    rates: set[int] = set()
    for batch in batches:
        if attrs is None:
            attrs = batch.attrs
        items += len(batch)
        frames += batch.frames
        if len(batch):
            # A source's channels are items of their own: count each source once, by channel 0,
            # so memory stays bounded however large the library.
            first_channel = batch.items["channel"] == 0 if "channel" in batch.items else slice(None)
            sources += int(np.count_nonzero(np.ones(len(batch), bool)[first_channel]))
            if "duration" in batch.items:
                duration += float(np.sum(batch.items["duration"][first_channel], dtype=np.float64))
            if "sample_rate" in batch.items:
                rates.update(int(r) for r in np.unique(batch.items["sample_rate"]))
    if attrs is None:
        raise InputError("holds no batches", source)
    spec = KINDS[attrs["kind"]]
    model = attrs[spec.model_key]
    summary: dict[str, Any] = {
        "source": source,
        "kind": attrs["kind"],
        "format_version": attrs["format_version"],
        "producer": attrs.get("producer"),
        spec.model_key: model,
        "items": items,
        "sources": sources,
        "duration_s": round(duration, 6),
        "frames": frames,
        "sample_rates": sorted(rates),
    }
    if attrs["kind"] == "tokens":
        summary.update(
            levels=int(model["levels"]),
            codebook_size=int(model["codebook_size"]),
            frame_rate=model["frame_rate"],
            bitrate_kbps=round(bitrate_kbps(model), 6),
        )
    return summary


# Kinds defined by their capability's package register themselves on import; imported here so
# every command that reads stores knows them.
import soundtok_cli.spatial.kind  # noqa: E402,F401  (the `spatial` kind)
