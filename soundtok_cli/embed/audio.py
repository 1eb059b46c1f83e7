"""Embedding token stores: windows of every item through the audio tower, plus one vector per item.

Long items are processed in chunks of `CHUNK_FRAMES` codec frames with `CONTEXT_FRAMES` of context
each side (more than the tower's receptive field), so memory stays flat and every window's vector
is the one a whole-item pass would give.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from soundtok_cli.embed.batch import CARRIED_FIELDS, embeddings_batch
from soundtok_cli.embed.model import AudioTower
from soundtok_cli.errors import InputError, UsageError
from soundtok_cli.io.store import Batch, model_label

CHUNK_FRAMES = 15000      # 200 s of codec frames per tower pass
CONTEXT_FRAMES = 60       # codec frames each side; the tower sees 3 blocks x 3 frames x 5 = 45


class AudioEmbedder:
    def __init__(self, tower: AudioTower, identity: Mapping[str, Any], device: str = "cpu"):
        self.tower = tower.eval().to(device)
        self.identity = dict(identity)  # name, version, weights_sha256, codec {...}
        self.device = device

    @property
    def feature_rate(self) -> float:
        return self.identity["codec"]["frame_rate"] / self.tower.frame_ratio

    def describe(self, window: float, hop: float) -> dict:
        """The `embedder` attributes of the stores it writes."""
        from soundtok_cli.embed.text import describe_text_tower

        return {**self.identity, "dim": self.tower.config.out_dim, "window": window, "hop": hop,
                "text": describe_text_tower()}

    def check_codec(self, codec: Mapping[str, Any], subject: str | None) -> None:
        """Tokens of another codec mean other code vectors: refuse them, naming both."""
        ours = self.identity["codec"]
        if (codec.get("name"), codec.get("weights_sha256")) != (ours["name"], ours["weights_sha256"]):
            raise InputError(
                f"tokens of {model_label({'kind': 'tokens', 'codec': codec})}; this embedder reads "
                f"codec {ours['name']} {ours['version']} (weights {ours['weights_sha256'][:12]}): "
                "re-encode with soundtok encode", subject)

    def window_frames(self, window: float, hop: float) -> tuple[int, int]:
        rate = self.feature_rate
        win, step = round(window * rate), round(hop * rate)
        if win < 1 or step < 1:
            raise UsageError(f"--window {window} and --hop {hop} must each be at least {1 / rate:.3f} s",
                             "--window")
        return win, step

    @torch.inference_mode()
    def features(self, codes: np.ndarray) -> torch.Tensor:
        """(T, L) codes -> (dim, ceil(T / ratio)) tower features, chunk by chunk."""
        ratio = self.tower.frame_ratio
        total = len(codes)
        pieces = []
        for lo in range(0, total, CHUNK_FRAMES):
            hi = min(total, lo + CHUNK_FRAMES)
            a, b = max(0, lo - CONTEXT_FRAMES), min(total, hi + CONTEXT_FRAMES)
            chunk = torch.from_numpy(codes[a:b].astype(np.int64)).to(self.device)[None]
            feats = self.tower.features(self.tower.pooled_latent(chunk))[0]
            first = (lo - a) // ratio
            pieces.append(feats[:, first : first + -(-(hi - lo) // ratio)])
        return torch.cat(pieces, dim=1)

    @torch.inference_mode()
    def embed_item(self, codes: np.ndarray, duration: float, window: float, hop: float):
        """One item's codes (at least one frame) -> (segment times (S, 2) seconds, segment vectors
        (S, D), item vector (D,)).

        Windows start every `hop`; a last window ends at the item's end when the regular ones stop
        short of it; an item shorter than a window is one segment."""
        win, step = self.window_frames(window, hop)
        feats = self.features(codes)
        n = feats.shape[1]
        starts = list(range(0, max(1, n - win + 1), step))
        if starts[-1] + win < n:
            starts.append(n - win)
        length = min(win, n)
        stacked = torch.stack([feats[:, s : s + length] for s in starts])
        mask = torch.ones(len(starts), length, dtype=torch.bool, device=stacked.device)
        vectors = self.tower.pool(stacked, mask).cpu().numpy()
        rate = self.feature_rate
        times = np.array([[s / rate, min(duration, (s + length) / rate)] for s in starts])
        weights = times[:, 1] - times[:, 0] + 1e-9
        item = (vectors * weights[:, None]).sum(0)
        item /= np.linalg.norm(item) + 1e-12
        return times, vectors, item.astype(np.float32)

    def embed_batch(self, batch: Batch, window: float, hop: float, subject: str | None = None) -> Batch:
        """A tokens batch -> the embeddings batch of its items (same order)."""
        self.check_codec(batch.codec, subject)
        times, vectors, items = [], [], []
        for i in range(len(batch)):
            if not batch.items["length"][i]:
                raise InputError(f"item {batch.items['source'][i]} (channel {batch.items['channel'][i]}) "
                                 "has no frames to embed", subject)
            t, v, item = self.embed_item(batch.item_codes(i), float(batch.items["duration"][i]), window, hop)
            times.append(t)
            vectors.append(v)
            items.append(item)
        dim = self.tower.config.out_dim
        return embeddings_batch(
            self.describe(window, hop), "embed", {name: batch.items[name] for name in CARRIED_FIELDS},
            times, vectors, np.stack(items) if items else np.zeros((0, dim), np.float32))
