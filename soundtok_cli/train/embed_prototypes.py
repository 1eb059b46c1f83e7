"""The embedder's caption-sound table (soundtok_cli/embed/prototypes.py), from its training shards.

    python -m soundtok_cli.train.embed prototypes --data checkpoints/embed-data \\
        --out soundtok_cli/models/soundtok-embed-v1-prototypes.safetensors

Every example of the built shards (the training split only; the benchmark's packages were never
built into them) is embedded by the shipped audio tower as it was trained (8 levels, the frames
past an example's length left out). Each counts toward its own caption and the coarser ones that
are just as true ("explosion", "speech"): the captions were written to be honest, transformed ones
included ("distant thunder" is thunder made distant), so all of them are kept. A caption's sound
is the unit mean of its examples' vectors; captions of a single example (mostly one-off mixtures)
are left out: one clip is not a caption's sound, and they would double the table. (Measured on
the retrieval benchmark: the same figures with and without them.)
"""

from __future__ import annotations

import os

import numpy as np

from soundtok_cli.train.embed import general_captions, sentence_vectors

MIN_EXAMPLES = 2


def example_vectors(tower, codes: np.ndarray, frames: np.ndarray, batch: int = 256) -> np.ndarray:
    """(N, D) unit audio vectors of (N, T, levels) codes, each read up to its own frame count."""
    import torch

    out = np.zeros((len(codes), tower.config.out_dim), np.float32)
    with torch.no_grad():
        for n in np.unique(frames):
            rows = np.flatnonzero(frames == n)
            for start in range(0, len(rows), batch):
                chosen = rows[start : start + batch]
                pooled = tower.pooled_latent(torch.from_numpy(codes[chosen, :n].astype(np.int64)))
                lengths = torch.full((len(chosen),), pooled.shape[-1])
                out[chosen] = tower(pooled, lengths).numpy()
    return out


def caption_sounds(vectors: np.ndarray, captions: list[str]) -> tuple[list[str], np.ndarray]:
    """The captions of at least MIN_EXAMPLES examples (their own or a coarser one), each with the
    unit mean vector of those examples."""
    members: dict[str, list[int]] = {}
    for i, caption in enumerate(captions):
        for name in dict.fromkeys([caption, *general_captions(caption)]):
            members.setdefault(name, []).append(i)
    names = sorted(name for name, rows in members.items() if len(rows) >= MIN_EXAMPLES)
    sounds = np.stack([vectors[members[name]].mean(0) for name in names])
    return names, sounds / np.linalg.norm(sounds, axis=1, keepdims=True)


def build(data_dir: str, out: str, text_cache: str) -> None:
    from soundtok_cli.embed import prototypes
    from soundtok_cli.models.registry import load_embedder

    embedder = load_embedder(device="cpu")
    tower = embedder.tower.eval()
    vectors, captions = [], []
    for name in sorted(n for n in os.listdir(data_dir) if n.endswith(".npz") and ".tmp" not in n):
        with np.load(os.path.join(data_dir, name)) as f:
            vectors.append(example_vectors(tower, f["codes"], f["frames"].astype(np.int64)))
            captions.extend(str(c) for c in f["captions"])
    names, sounds = caption_sounds(np.concatenate(vectors), captions)
    text = sentence_vectors(names, text_cache)
    prototypes.save(out, names, text, sounds, embedder.identity["weights_sha256"])
    print(f"wrote {out} ({os.path.getsize(out) / 1e6:.1f} MB): {len(names)} captions from {len(captions)} examples")
