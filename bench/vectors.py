"""Synthetic but realistic embedding vectors for index benchmarks and tests.

Uniform random noise on a 384-d sphere has no neighbourhoods (every point is about equally far
from every other), which makes approximate search look either trivially easy or hopeless. Real
sound embeddings are clustered: kinds of sound (topics) split into narrower clusters (a sound and
its variations) with uneven sizes and spreads. `clustered_unit_vectors` draws from such a model:
``topics`` centres uniform on the sphere; ``clusters`` centres near a random topic (cosine about
0.7 to it); cluster sizes Zipf-like (weight 1/rank^0.7); points near their cluster centre with a
per-cluster spread (cosine about 0.6 to 0.85 to the centre); all L2-normalised.
"""

from __future__ import annotations

import numpy as np


def clustered_unit_vectors(n: int, dim: int = 384, *, topics: int = 200, clusters: int = 4000,
                           seed: int = 0, dtype=np.float32) -> np.ndarray:
    """(n, dim) unit vectors from a two-level mixture of Gaussian clusters (see module doc); the
    same arguments give the same vectors."""
    rng = np.random.default_rng(seed)
    clusters = max(1, min(clusters, n))
    topic = _unit(rng.standard_normal((topics, dim)).astype(np.float32))
    owner = rng.integers(0, topics, clusters)
    centre = _unit(topic[owner] + rng.standard_normal((clusters, dim)).astype(np.float32) / np.sqrt(dim))
    weight = 1.0 / np.arange(1, clusters + 1) ** 0.7
    weight /= weight.sum()
    spread = rng.uniform(0.6, 1.4, clusters).astype(np.float32) / np.sqrt(dim)
    out = np.empty((n, dim), dtype)
    for lo in range(0, n, 1 << 16):
        hi = min(n, lo + (1 << 16))
        label = rng.choice(clusters, hi - lo, p=weight)
        noise = rng.standard_normal((hi - lo, dim)).astype(np.float32) * spread[label, None]
        out[lo:hi] = _unit(centre[label] + noise)
    return out


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
