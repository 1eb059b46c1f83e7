"""Building embeddings batches (see DESIGN.md, "Data model: stores", and `io.store.EMBEDDINGS`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from soundtok_cli.io.store import Batch, make_attrs

# Per-item fields an embeddings store copies from the tokens store it was made from.
CARRIED_FIELDS = ("source", "channel", "sample_rate", "duration", "content_hash")


def embeddings_batch(
    embedder: Mapping[str, Any],
    command: str,
    items: Mapping[str, Sequence[Any]],
    segment_times: Sequence[np.ndarray],
    segment_vectors: Sequence[np.ndarray],
    item_vectors: np.ndarray,
) -> Batch:
    """An embeddings batch: ``items`` holds the carried per-item fields, ``segment_times[i]`` is
    item i's (S_i, 2) start/end seconds and ``segment_vectors[i]`` its (S_i, D) vectors."""
    dim = int(embedder["dim"])
    lengths = np.array([len(v) for v in segment_vectors], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64) if len(lengths) else lengths
    times = np.concatenate(segment_times).astype(np.float64) if len(lengths) else np.zeros((0, 2))
    vectors = (np.concatenate(segment_vectors).astype(np.float32) if len(lengths)
               else np.zeros((0, dim), np.float32))
    fields = {name: items[name] for name in CARRIED_FIELDS}
    batch = Batch(
        make_attrs("embeddings", embedder, command),
        {**fields, "start": starts, "length": lengths,
         "embedding": np.asarray(item_vectors, dtype=np.float32).reshape(len(lengths), dim)},
        {
            "segments/item": np.repeat(np.arange(len(lengths), dtype=np.int64), lengths),
            "segments/start": times[:, 0].copy(),
            "segments/end": times[:, 1].copy(),
            "embeddings": vectors,
        },
    )
    return batch.validate()
