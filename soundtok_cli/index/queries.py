"""Query vectors for a search, checked against the embedder the index was built with.

A text query goes through the text tower (numpy only, cached on disk: no torch on this path); its
weights must be the ones the index's embedder was trained against. Unless asked for as typed, it
is then pulled toward the sound of the nearest caption the embedder was trained on
(embed/prototypes.py), where the embedder ships such a table. An example query (--like: an
audio file, a tokens store or an embeddings store) goes through the audio embedder, which must be
the index's own (name, version, weights).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from soundtok_cli.errors import InputError, UsageError


def _short(sha: Any) -> str:
    return str(sha or "?")[:12]


@dataclass(frozen=True)
class TextQuery:
    vector: np.ndarray     # (D,) unit vector to search with
    nearest: str | None    # the trained caption it was pulled toward, if it was


def text_query_vector(text: str, embedder: dict[str, Any], index_path: str, as_typed: bool = False) -> TextQuery:
    """The vector of a text query, refusing a text tower other than the index's."""
    if not text.strip():
        raise UsageError("empty query; give some words, or --like AUDIO_OR_STORE", "QUERY")
    from soundtok_cli.embed.text import NAME, encode_queries, text_tower_sha256

    expected = (embedder.get("text") or {})
    installed = text_tower_sha256()
    if expected.get("weights_sha256") != installed:
        raise InputError(
            f"the index was built for text tower {expected.get('name', '?')} (weights "
            f"{_short(expected.get('weights_sha256'))}), but the installed one is {NAME} "
            f"(weights {_short(installed)}); re-embed and re-index, or install the "
            "matching text model", index_path)
    vector = encode_queries([text])[0]
    _check_dim(vector, embedder, "QUERY")
    if not as_typed:
        from soundtok_cli.embed.prototypes import for_embedder

        table = for_embedder(embedder)  # made for these very weights: the same dimension
        if table is not None:
            return TextQuery(*table.pull(vector))
    return TextQuery(vector, None)


def like_query_vector(path: str, embedder: dict[str, Any], device: str) -> np.ndarray:
    """The (D,) vector of an example (audio file or store), refusing another embedder's."""
    from soundtok_cli.embed.query import like_vector
    from soundtok_cli.index.embedders import embedder_label, same_embedder

    vector, made_with = like_vector(path, device=device)
    if not same_embedder(dict(made_with or {}), embedder):
        raise InputError(f"made with {embedder_label(dict(made_with or {}))}, but the index holds "
                         f"{embedder_label(embedder)}", path)
    _check_dim(vector, embedder, path)
    return vector


def _check_dim(vector: np.ndarray, embedder: dict[str, Any], subject: str) -> None:
    dim = int(embedder.get("dim", 0))
    if np.ndim(vector) != 1 or (dim and len(vector) != dim):
        raise InputError(f"the query vector has shape {np.shape(vector)}, the index holds {dim}-d vectors",
                         subject)
