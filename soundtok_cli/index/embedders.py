"""Which embedder made a set of vectors, and whether two sets can share an index."""

from __future__ import annotations

from typing import Any

from soundtok_cli.io.store import model_label

# What makes two embedders the same space: vectors of different ones cannot share an index.
EMBEDDER_IDENTITY = ("name", "version", "weights_sha256", "dim")


def same_embedder(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(a.get(key) == b.get(key) for key in EMBEDDER_IDENTITY)


def embedder_label(embedder: dict[str, Any]) -> str:
    """``embedder NAME VERSION (weights 3f2a9c01b7e4)``."""
    return model_label({"kind": "embeddings", "embedder": embedder})
