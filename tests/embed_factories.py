"""Test data for the index and search tests: embedder attributes and embeddings stores made of
given (or clustered random) vectors, written with the real sink."""

from __future__ import annotations

import os
import sys

import numpy as np

from soundtok_cli.embed.batch import embeddings_batch
from soundtok_cli.io.sink import open_sink
from soundtok_cli.io.store import Batch

from factories import codec_attrs

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:  # bench/ is part of the repository, not of the installed package
    sys.path.insert(0, REPO_ROOT)

from bench.vectors import clustered_unit_vectors  # noqa: E402,F401

DIM = 384
HOP = 1.0


def embedder_attrs(text_sha: str = "cd" * 32, **changes) -> dict:
    """A made-up embedder (a new dict each call) whose text tower has weights ``text_sha``."""
    attrs = {
        "name": "test-embedder", "version": "1", "weights_sha256": "ef" * 32, "dim": DIM,
        "window": 2.0, "hop": HOP, "codec": codec_attrs(),
        "text": {"name": "all-MiniLM-L6-v2", "dim": DIM, "weights_sha256": text_sha},
    }
    attrs.update(changes)
    return attrs


def files_batch(files: list[dict], embedder: dict | None = None) -> Batch:
    """An embeddings batch: each file dict has ``source``, ``vectors`` ((S, D) array: its
    segments, HOP seconds apart) and optionally ``channel`` (0) and ``content_hash``."""
    embedder = embedder or embedder_attrs()
    items = {"source": [], "channel": [], "sample_rate": [], "duration": [], "content_hash": []}
    times, vectors, item_vectors = [], [], []
    for f in files:
        v = np.asarray(f["vectors"], np.float32)
        items["source"].append(f["source"])
        items["channel"].append(f.get("channel", 0))
        items["sample_rate"].append(48000)
        items["duration"].append(len(v) * HOP + 1.0)
        items["content_hash"].append(f.get("content_hash", f"hash-{f['source']}-{f.get('channel', 0)}"))
        starts = np.arange(len(v)) * HOP
        times.append(np.stack([starts, starts + 2.0], axis=1) if len(v) else np.zeros((0, 2)))
        vectors.append(v.reshape(-1, embedder["dim"]))
        mean = v.mean(axis=0) if len(v) else np.ones(embedder["dim"], np.float32)
        item_vectors.append(mean / max(float(np.linalg.norm(mean)), 1e-12))
    return embeddings_batch(embedder, "test", items, times, vectors,
                            np.stack(item_vectors) if item_vectors else np.zeros((0, embedder["dim"])))


def save_store(path, batch: Batch) -> str:
    with open_sink(str(path)) as sink:
        sink.write(batch)
    return str(path)


def random_files(n_files: int, segments: int, seed: int, prefix: str = "f", channels: int = 1) -> list[dict]:
    """``n_files`` files of ``segments`` clustered unit vectors each (per channel)."""
    rng = np.random.default_rng(seed)
    vectors = clustered_unit_vectors(n_files * segments * channels, DIM, clusters=max(1, n_files),
                                     seed=int(rng.integers(1 << 30)))
    out = []
    row = 0
    for i in range(n_files):
        for ch in range(channels):
            out.append({"source": f"{prefix}{i}.wav", "channel": ch, "vectors": vectors[row : row + segments]})
            row += segments
    return out
