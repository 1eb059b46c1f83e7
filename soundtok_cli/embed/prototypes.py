"""Text queries pulled toward the sound of the trained caption nearest in meaning.

Why: the audio tower was trained to put a clip next to the sentence vector of its caption. A
query worded the way the captions were ("rain", "explosion", "footsteps on wood") lands where such
clips are; a query worded otherwise ("a rainstorm", "something blowing up") lands somewhere in
the text space that no clip was ever pulled toward. For every caption of its training data heard
in at least two clips, the embedder ships a table: the caption's sentence vector and its "sound",
the unit mean of the audio vectors of the clips it captions (train/embed_prototypes.py). A query
that is not already (nearly) a trained caption is moved halfway to the sound of the caption
closest to it in meaning. On the retrieval benchmark (`python -m bench.retrieval`, 1,454 unseen
clips) this raised paraphrase queries from Hit@1 0.35 / Hit@10 0.67 / mAP 0.33 to 0.54 / 0.73 /
0.40 and left class words at Hit@10 0.79; the model card has the table.

Numpy only (no torch): it runs on the path of every `soundtok search`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

KNOWN = 0.95  # a query at least this close to a trained caption is left as typed
PULL = 0.5    # how far toward the nearest caption's sound (the caption's sound has unit length)


@dataclass(frozen=True)
class Prototypes:
    """Per trained caption: its text, its sentence vector and its sound, (N, D) unit rows (`sound`
    may be a `_SoundRows`: read a row at a time)."""

    captions: list[str]
    text: np.ndarray
    sound: Any
    embedder_sha256: str

    def pull(self, query: np.ndarray) -> tuple[np.ndarray, str | None]:
        """The query vector moved toward the sound of its nearest caption, with that caption;
        the query itself and None when it is already (nearly) one of the captions."""
        query = np.asarray(query, np.float32)
        scores = self.text @ query
        best = int(np.argmax(scores))
        if scores[best] >= KNOWN:
            return query, None
        moved = query + PULL * np.asarray(self.sound[best], np.float32)
        return (moved / np.linalg.norm(moved)).astype(np.float32), self.captions[best]


def save(path: str, captions: list[str], text: np.ndarray, sound: np.ndarray, embedder_sha256: str) -> None:
    """Write a table (the captions and the embedder's weights sha256 in the metadata). The text
    vectors are float32: every search reads all of them, and converting float16 cost 30 ms of a
    cold search on the development machine; one sound row is read per search, so float16."""
    from safetensors.numpy import save_file

    metadata = {"embedder_sha256": embedder_sha256, "captions": json.dumps(captions)}
    tensors = {"text": _unit(text), "sound": _unit(sound).astype(np.float16)}
    tmp = path + ".tmp"
    save_file(tensors, tmp, metadata=metadata)
    os.replace(tmp, path)


def load(path: str, embedder_sha256: str | None = None) -> Prototypes | None:
    """The table at path; None if `embedder_sha256` is given and the table was made for other
    weights (known from its metadata, before the tensors are read)."""
    from safetensors import safe_open

    with safe_open(path, framework="np") as f:
        metadata = f.metadata()
        if embedder_sha256 is not None and metadata["embedder_sha256"] != embedder_sha256:
            return None
        text = f.get_tensor("text")
    return Prototypes(json.loads(metadata["captions"]), text.astype(np.float32, copy=False), _SoundRows(path),
                      metadata["embedder_sha256"])


class _SoundRows:
    """The table's sound vectors, read one row at a time (a search needs one)."""

    def __init__(self, path: str):
        self.path = path

    def __getitem__(self, row: int) -> np.ndarray:
        from safetensors import safe_open

        with safe_open(self.path, framework="np") as f:
            return f.get_slice("sound")[row : row + 1][0].astype(np.float32)


def for_embedder(embedder: dict[str, Any]) -> Prototypes | None:
    """The built-in table made for exactly these embedder weights, if there is one (an embedder
    without a table, or another version of it, searches with the query as typed). The weights are
    named by the sha256 the index recorded, so nothing is hashed on the search path."""
    from soundtok_cli.models.registry import BUILT_IN

    for entry in BUILT_IN:
        path = entry.prototypes_path()
        if path is not None and entry.name == embedder.get("name") and os.path.exists(path):
            return load(path, str(embedder.get("weights_sha256")))
    return None


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
