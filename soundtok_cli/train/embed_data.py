"""Training examples for the audio tower: captioned 2 s crops of the allowed corpus, as codec tokens.

Each example is a crop of a training clip (the loudest of a few random candidates) or a fresh
procedural sound, sometimes transformed in a way that changes its caption honestly: far away (lower
level, less high end, more reverb), in a room or hall, quiet, or mixed with another clip ("a and b",
"a with b in the background"). Crops are encoded once with the built-in codec at `LEVELS` levels
and written in resumable shards; the tower trains on the tokens, never on audio.

Packages in `HELDOUT_PACKAGES` are left out here so the retrieval benchmark can use them as clips the
embedder never saw (the corpus' own held-out split is never used for training either).
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass

import numpy as np

from soundtok_cli.data import synth

SAMPLE_RATE = 48000
HOP = 640
CROP_FRAMES = 150                    # 2 s at 75 frames/s
CROP_SAMPLES = CROP_FRAMES * HOP
LEVELS = 8
SHARD_EXAMPLES = 1024
# train_manifest packages kept out of the embedder's training for the retrieval benchmark
HELDOUT_PACKAGES = ("openarena-data", "scorched3d-data", "boswars-data", "cube2-data")
SYNTH_SEED = 1            # training procedural sounds; the benchmark uses BENCH_SYNTH_SEED
BENCH_SYNTH_SEED = 10_000

_QUOTED = re.compile(r':\s*".*"\s*$')


@dataclass
class Clip:
    shard: str
    offset: int
    length: int
    kind: str
    source: str
    caption: str


def read_clips(corpus_dir: str, split: str = "train") -> list[Clip]:
    root = os.path.join(corpus_dir, split)
    with open(os.path.join(root, "index.tsv"), newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [Clip(r["shard"], int(r["offset"]), int(r["length"]), r["kind"], r["source"], r["caption"])
            for r in rows]


def package(source: str) -> str:
    return source.split(":", 1)[0]


def spoken_caption(caption: str, rng: np.random.Generator) -> str:
    """Speech captions quote what is said; the words are rarely what a search is for, so most
    examples keep only who speaks how."""
    if _QUOTED.search(caption) and rng.random() < 0.7:
        return _QUOTED.sub("", caption)
    return caption


# -- honest transformations ----------------------------------------------------------------


def far_away(rng, x):
    x = synth._filter(x, SAMPLE_RATE, hi=rng.uniform(1500, 4000), order=1)
    x = synth.reverb(rng, x, SAMPLE_RATE, rng.uniform(1.0, 2.5), wet=0.5)
    return x * 10 ** (rng.uniform(-20, -8) / 20)


def in_room(rng, x):
    space = "large hall" if rng.random() < 0.5 else "small room"
    rt = rng.uniform(1.5, 3.5) if space == "large hall" else rng.uniform(0.2, 0.6)
    return synth.reverb(rng, x, SAMPLE_RATE, rt, wet=rng.uniform(0.3, 0.5)), space


def phrase(rng, templates: list[str], **parts) -> str:
    return templates[rng.integers(len(templates))].format(**parts)


def transform(rng, x: np.ndarray, caption: str, other: tuple[np.ndarray, str] | None):
    """One random honest transformation of (x, caption); `other` is a second clip for mixtures."""
    r = rng.random()
    if r < 0.3:
        return far_away(rng, x), phrase(rng, ["{c}, far away", "distant {c}", "{c} in the distance",
                                              "{c} heard from far away"], c=caption)
    if r < 0.45:
        y, space = in_room(rng, x)
        return y, phrase(rng, ["{c} in a {s}", "{c}, reverberant {s}"], c=caption, s=space)
    if r < 0.55:
        return x * 10 ** (rng.uniform(-40, -30) / 20), phrase(rng, ["quiet {c}", "faint {c}"], c=caption)
    if other is None:
        return x, caption
    y, other_caption = other
    n = max(len(x), len(y))
    x, y = np.pad(x, (0, n - len(x))), np.pad(y, (0, n - len(y)))
    rms_x = np.sqrt(np.mean(x**2)) + 1e-9
    rms_y = np.sqrt(np.mean(y**2)) + 1e-9
    if rng.random() < 0.6:
        mixed = x + y * (rms_x / rms_y) * 10 ** (rng.uniform(-4, 2) / 20)
        return mixed, phrase(rng, ["{a} and {b}", "{a} with {b}", "{a} mixed with {b}"], a=caption, b=other_caption)
    mixed = x + y * (rms_x / rms_y) * 10 ** (rng.uniform(-20, -12) / 20)
    return mixed, f"{caption} with {other_caption} in the background"


class CropSource:
    """Crops of the corpus' training clips (minus HELDOUT_PACKAGES), several per long clip."""

    def __init__(self, corpus_dir: str, seed: int = 0):
        self.root = os.path.join(corpus_dir, "train")
        self.clips = [c for c in read_clips(corpus_dir) if package(c.source) not in HELDOUT_PACKAGES]
        self.shards = {}
        self.rng = np.random.default_rng(seed)
        # one crop per clip plus one per 20 s, at most 4: long music tracks do not drown effects
        self.plan = [i for i, c in enumerate(self.clips)
                     for _ in range(min(4, 1 + c.length // (20 * SAMPLE_RATE)))]
        self.rng.shuffle(self.plan)

    def samples(self, clip: Clip) -> np.ndarray:
        if clip.shard not in self.shards:
            self.shards[clip.shard] = np.load(os.path.join(self.root, clip.shard), mmap_mode="r")
        return self.shards[clip.shard][clip.offset : clip.offset + clip.length]

    def crop(self, index: int) -> tuple[np.ndarray, str]:
        clip = self.clips[index]
        audio = self.samples(clip)
        if len(audio) <= CROP_SAMPLES:
            x = np.asarray(audio, dtype=np.float64) / 32768.0
        else:
            starts = self.rng.integers(0, len(audio) - CROP_SAMPLES + 1, size=3)
            pieces = [np.asarray(audio[s : s + CROP_SAMPLES], dtype=np.float64) / 32768.0 for s in starts]
            x = max(pieces, key=lambda p: float(np.mean(p**2)))
        caption = spoken_caption(clip.caption, self.rng) if clip.kind == "speech" else clip.caption
        return x, caption


CROPS_PER_SHARD = 512


def shard_count(crops: CropSource) -> int:
    return -(-len(crops.plan) // CROPS_PER_SHARD)


def shard_examples(crops: CropSource, shard: int, passes: int = 0, synth_share: float = 0.2,
                   augment: float = 0.6):
    """Yield the (samples, caption) examples of one shard: its planned crops (clean, then with
    probability `augment` a transformed copy), with procedural sounds mixed in at `synth_share`.
    Deterministic per (pass, shard), so an interrupted build resumes at the next missing shard;
    another pass over the plan takes other crops, transformations and procedural sounds."""
    seed = [shard] if passes == 0 else [passes, shard]
    rng = np.random.default_rng(seed + [1])
    crops.rng = np.random.default_rng(seed + [2])
    synth_rng = np.random.default_rng([SYNTH_SEED, *seed])
    for index in crops.plan[shard * CROPS_PER_SHARD : (shard + 1) * CROPS_PER_SHARD]:
        x, caption = crops.crop(index)
        yield x, caption
        if rng.random() < augment:
            other = crops.crop(crops.plan[rng.integers(len(crops.plan))])
            yield transform(rng, x, caption, other)
        if rng.random() < synth_share / (1 - synth_share):
            yield synth.random_sound(synth_rng, SAMPLE_RATE, CROP_SAMPLES / SAMPLE_RATE)


def fit(x: np.ndarray) -> tuple[np.ndarray, int]:
    """Peak-safe float32 crop padded to CROP_SAMPLES, plus its length in codec frames."""
    x = np.asarray(x, dtype=np.float64)[:CROP_SAMPLES]
    peak = np.max(np.abs(x)) if len(x) else 0.0
    if peak > 0.99:
        x = x * (0.99 / peak)
    frames = max(1, -(-len(x) // HOP))
    out = np.zeros(CROP_SAMPLES, dtype=np.float32)
    out[: len(x)] = x
    return out, frames
