"""What a generation starts from: the condition vector, and the material it carries on from.

The condition is a unit vector in the joint text-audio space: a prompt's sentence embedding, an
example sound's audio embedding (--like), or the normalised sum of both. Material is codec tokens
the model reads before it starts (--continue: the user's sound; --index: the best match for the
prompt in the user's indexed library); the model carries on from its end and its coarse stretches
count as already made, so the new sound never repeats it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from soundtok_cli.errors import InputError, UsageError

PRIME_SECONDS = 30.0        # the model reads at most this much of the material's end
INDEX_MATERIAL_SECONDS = 30.0


@dataclass
class Material:
    codes: np.ndarray        # (T, levels) uint16 at the generator's levels
    source: str
    sample_rate: int
    channel: int = 0


def combine(vectors: list[np.ndarray]) -> np.ndarray:
    """One unit condition vector from several (prompt, example, material)."""
    total = np.sum([v / (np.linalg.norm(v) + 1e-12) for v in vectors], axis=0)
    return (total / (np.linalg.norm(total) + 1e-12)).astype(np.float32)


def prompt_vector(prompt: str) -> np.ndarray:
    from soundtok_cli.embed.text import encode_queries

    if not prompt.strip():
        raise UsageError("empty prompt; describe the sound (\"rain on a tin roof\")", "PROMPT")
    return encode_queries([prompt])[0]


def example_vector(path: str, device: str) -> np.ndarray:
    from soundtok_cli.embed.query import like_vector

    return like_vector(path, device)[0]


def _check_codec(generator, attrs: dict, subject: str) -> None:
    from soundtok_cli.io.store import model_label

    ours = generator.codec
    theirs = attrs.get("codec") or {}
    if (theirs.get("name"), theirs.get("weights_sha256")) != (ours["name"], ours["weights_sha256"]):
        raise InputError(f"tokens of {model_label(attrs)}; this generator continues codec {ours['name']} "
                         f"{ours['version']} (weights {ours['weights_sha256'][:12]}): re-encode the sound "
                         "with soundtok encode, or give the audio", subject)


def _from_store(generator, path: str) -> Material:
    from soundtok_cli.io.stream import read_batches

    for batch in read_batches(path):
        if batch.kind not in ("tokens", "spatial"):
            raise InputError(f"is {'an' if batch.kind[0] in 'aeiou' else 'a'} {batch.kind} store; give "
                             "audio or a tokens store to continue", path)
        _check_codec(generator, batch.attrs, path)
        if batch.codes.shape[1] < generator.levels:
            raise InputError(f"has {batch.codes.shape[1]} levels; the generator needs at least "
                             f"{generator.levels} (re-encode with --levels {generator.levels} or more)", path)
        if len(batch):
            item = batch.item(0)
            return Material(batch.item_codes(0)[:, : generator.levels], str(item["source"]),
                            int(item["sample_rate"]), int(item["channel"]))
    raise InputError("holds no items to continue", path)


def _from_audio(generator, path: str, device: str, start: float = 0.0, end: float | None = None) -> Material:
    """The sound's first channel, encoded at the generator's levels (a time range of it, if given)."""
    from soundtok_cli.codec.files import encode_audio
    from soundtok_cli.io.audio import open_audio
    from soundtok_cli.models.registry import load_codec

    codec = load_codec(generator.codec["name"], device)
    if codec.describe(generator.levels) != generator.codec:
        raise InputError("the installed codec is not the one the generator was trained with", path)
    with open_audio(path) as reader:
        encoded = encode_audio(codec, reader, generator.levels)
    codes = encoded.channels[0]
    rate = generator.frame_rate
    first, last = int(start * rate), len(codes) if end is None else int(np.ceil(end * rate))
    return Material(codes[first:last], path, encoded.sample_rate)


def _looks_like_store(path: str) -> bool:
    return os.path.isdir(path) or path.endswith((".zarr", ".zarr.zip", ".zip")) or path == "-"


def read_material(generator, path: str, device: str) -> Material:
    """A sound to continue: an audio file or a tokens store (its first item)."""
    if path != "-" and not os.path.exists(path):
        raise InputError("no such file", path)
    material = _from_store(generator, path) if _looks_like_store(path) else _from_audio(generator, path, device)
    if not len(material.codes):
        raise InputError("is empty: nothing to continue", path)
    return material


def index_material(generator, index_path: str, prompt: str, device: str, reporter) -> Material:
    """The indexed file that best matches the prompt: up to 30 s of it around its best moment."""
    from soundtok_cli.index.queries import text_query_vector
    from soundtok_cli.index.search import IndexReader

    reader = IndexReader(index_path)
    reader.check_not_empty()
    hits = reader.search(text_query_vector(prompt, reader.embedder or {}, index_path).vector, 5, per_file=True)
    reader.close()
    for hit in hits:
        if not os.path.exists(hit.source):
            reporter.note(f"{hit.source}: indexed but gone; trying the next match")
            continue
        middle = (hit.start + hit.end) / 2
        start = max(0.0, min(middle - INDEX_MATERIAL_SECONDS / 2, hit.duration - INDEX_MATERIAL_SECONDS))
        material = _from_audio(generator, hit.source, device, start, start + INDEX_MATERIAL_SECONDS)
        reporter.note(f"drawing on {hit.source} ({start:.1f}-{min(hit.duration, start + INDEX_MATERIAL_SECONDS):.1f} s, "
                      f"score {hit.score:.2f})")
        return material
    raise InputError("no indexed file matching the prompt could be read", index_path)
