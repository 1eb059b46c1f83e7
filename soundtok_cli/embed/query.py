"""Query-by-example: one vector for "sounds like this", from an audio file or a store."""

from __future__ import annotations

import os

import numpy as np

from soundtok_cli.errors import InputError

STORE_SUFFIXES = (".zarr", ".zarr.zip", ".zip")
# Tokens of an example are embedded with the embedder's default windows.
WINDOW, HOP = 2.0, 1.0


def _looks_like_store(path: str) -> bool:
    return os.path.isdir(path) or path.endswith(STORE_SUFFIXES)


def _mean_direction(vectors: np.ndarray, subject: str) -> np.ndarray:
    if not len(vectors):
        raise InputError("holds no items to search with", subject)
    mean = vectors.astype(np.float64).mean(0)
    norm = np.linalg.norm(mean)
    if not norm > 0:
        raise InputError("its items' vectors cancel out; give one item", subject)
    return (mean / norm).astype(np.float32)


def _from_store(path: str, device: str) -> tuple[np.ndarray, dict]:
    from soundtok_cli.io.stream import read_batches

    vectors, attrs, embedder = [], None, None
    for batch in read_batches(path):
        if batch.kind == "tokens":
            if embedder is None:
                from soundtok_cli.models.registry import load_embedder

                embedder = load_embedder(device=device)
            batch = embedder.embed_batch(batch, WINDOW, HOP, subject=path)
        elif batch.kind != "embeddings":
            raise InputError(f"is a {batch.kind} store; give audio, tokens or embeddings", path)
        attrs = batch.attrs["embedder"]
        vectors.append(batch.items["embedding"])
    return _mean_direction(np.concatenate(vectors) if vectors else np.zeros((0, 1)), path), attrs


def _from_audio(path: str, device: str) -> tuple[np.ndarray, dict]:
    from soundtok_cli.codec.files import encode_audio
    from soundtok_cli.io.audio import open_audio
    from soundtok_cli.io.store import Batch
    from soundtok_cli.models.registry import load_codec, load_embedder

    embedder = load_embedder(device=device)
    codec = load_codec(embedder.identity["codec"]["name"], device=device)
    levels = embedder.tower.config.max_levels
    with open_audio(path) as reader:
        encoded = encode_audio(codec, reader, levels)
    channels = len(encoded.channels)
    batch = Batch.tokens(codec.describe(levels), "search", source=[path] * channels,
                         channel=range(channels), sample_rate=[encoded.sample_rate] * channels,
                         duration=[encoded.duration] * channels, content_hash=encoded.hashes,
                         codes=encoded.channels)
    embedded = embedder.embed_batch(batch, WINDOW, HOP, subject=path)
    return _mean_direction(embedded.items["embedding"], path), embedded.attrs["embedder"]


def like_vector(path: str, device: str = "auto") -> tuple[np.ndarray, dict]:
    """The (D,) unit query vector for sounds like `path` (an audio file, a tokens store or an
    embeddings store; several items are averaged) and the embedder attributes it belongs to."""
    if path != "-" and not os.path.exists(path) and "://" not in path:
        raise InputError("no such file", path)
    if _looks_like_store(path):
        return _from_store(path, device)
    try:
        return _from_audio(path, device)
    except InputError as audio_error:
        try:
            return _from_store(path, device)
        except InputError:
            raise audio_error from None
