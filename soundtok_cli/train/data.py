"""Random training segments from the corpus built by `make corpus` (soundtok_cli.data.corpus).

The corpus is int16 48 kHz mono shards plus an index.tsv (shard, offset, length, kind, source,
caption). Kinds are sampled equally so an hour of music does not drown the effects; within a kind,
clips are drawn in proportion to their length.
"""

from __future__ import annotations

import csv
import os
from collections import defaultdict

import numpy as np


class SegmentSampler:
    def __init__(self, corpus_dir: str, split: str = "train", seed: int = 0):
        root = os.path.join(corpus_dir, split)
        self.shards: dict[str, np.ndarray] = {}
        self.clips: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
        with open(os.path.join(root, "index.tsv"), newline="") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                shard = row["shard"]
                if shard not in self.shards:
                    self.shards[shard] = np.load(os.path.join(root, shard), mmap_mode="r")
                self.clips[row["kind"]].append((shard, int(row["offset"]), int(row["length"])))
        if not self.clips:
            raise ValueError(f"{root}/index.tsv lists no clips")
        self.kinds = sorted(self.clips)
        self.weights = {k: np.array([c[2] for c in v], dtype=np.float64) for k, v in self.clips.items()}
        for k in self.weights:
            self.weights[k] /= self.weights[k].sum()
        self.rng = np.random.default_rng(seed)

    def hours(self) -> dict[str, float]:
        return {k: sum(c[2] for c in v) / 48000 / 3600 for k, v in self.clips.items()}

    def segment(self, length: int) -> np.ndarray:
        kind = self.kinds[self.rng.integers(len(self.kinds))]
        shard, offset, clip_len = self.clips[kind][self.rng.choice(len(self.clips[kind]), p=self.weights[kind])]
        out = np.zeros(length, dtype=np.float32)
        if clip_len <= length:
            start = self.rng.integers(0, length - clip_len + 1)
            out[start : start + clip_len] = self.shards[shard][offset : offset + clip_len] / 32768.0
        else:
            start = offset + self.rng.integers(0, clip_len - length + 1)
            out[:] = self.shards[shard][start : start + length] / 32768.0
        return out

    def batch(self, batch_size: int, length: int) -> np.ndarray:
        """Segments with random gain (-30..+6 dB, never clipping) so every level is seen."""
        x = np.stack([self.segment(length) for _ in range(batch_size)])
        gain_db = self.rng.uniform(-30, 6, size=(batch_size, 1))
        peak = np.abs(x).max(axis=1, keepdims=True) + 1e-9
        gain = np.minimum(10 ** (gain_db / 20), 0.99 / peak)
        return (x * gain).astype(np.float32)
