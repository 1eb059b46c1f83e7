"""One generation as a tokens store: the material carried on from (if any), then new frames as made.

The item is emitted in parts (each at most one sampler chunk, 5 s) so a reader downstream of a pipe
gets sound before generation ends; a file store joins the parts into one item.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from soundtok_cli.generate import DEFAULT_GUIDANCE, DEFAULT_TEMPERATURE, DEFAULT_TOP_K
from soundtok_cli.generate.material import Material
from soundtok_cli.io.store import Batch


@dataclass
class Settings:
    seed: int
    temperature: float = DEFAULT_TEMPERATURE
    top_k: int = DEFAULT_TOP_K
    guidance: float = DEFAULT_GUIDANCE

    def to_json(self) -> dict:
        return {"seed": self.seed, "temperature": self.temperature, "top_k": self.top_k, "guidance": self.guidance}


@dataclass
class Request:
    condition: np.ndarray          # (384,) unit vector
    frames: int                    # new frames to make
    settings: Settings
    source: str                    # the item's source name (decode names files after it)
    sample_rate: int = 48000
    before: np.ndarray | None = None   # (T, levels) codes the item starts with (--continue)
    prime: np.ndarray | None = None    # codes the model reads first (the end of `before`, or --index material)
    stats: dict = field(default_factory=dict)


def slug(text: str, limit: int = 60) -> str:
    words = re.findall(r"[a-z0-9]+", text.lower())
    return "-".join(words)[:limit].rstrip("-") or "sound"


def source_name(prompt: str | None, material: Material | None) -> str:
    """generated/<prompt words>, or <the material's name>-continued beside it."""
    if material is not None and material.source not in ("-", ""):
        stem, ext = os.path.splitext(material.source)
        return f"{stem}-continued{ext or '.wav'}"
    return f"generated/{slug(prompt or 'sound')}"


def take_source(source: str, take: int) -> str:
    """generated/door-slam -> generated/door-slam-take2 (before an extension: x-continued-take2.wav)."""
    stem, ext = os.path.splitext(source)
    return f"{stem}-take{take}{ext}"


def request_hash(generator, request: Request, take: tuple[int, int] | None = None) -> str:
    """The item's content hash: what determines the tokens (model, condition, settings, length,
    material, and for one of several takes which take of how many), so the same request always
    carries the same hash and a changed one never does."""
    digest = hashlib.sha256()
    fields = {"model": generator.identity.get("weights_sha256"), "frames": request.frames, **request.settings.to_json()}
    if take is not None:
        fields["take"], fields["takes"] = take
    digest.update(json.dumps(fields, sort_keys=True).encode())
    digest.update(np.asarray(request.condition, np.float32).tobytes())
    for codes in (request.before, request.prime):
        digest.update(b"-" if codes is None else np.ascontiguousarray(codes).tobytes())
    return "generated:" + digest.hexdigest()


def _before(generator, request: Request) -> np.ndarray:
    """The codes the item starts with (--continue), or none."""
    return request.before if request.before is not None else np.zeros((0, generator.levels), np.uint16)


def _item(generator, request: Request, source: str, content_hash: str, codes: np.ndarray) -> Batch:
    """A one-item tokens batch of the request (the whole item's duration, whatever part `codes` is)."""
    duration = (len(_before(generator, request)) + request.frames) / generator.frame_rate
    return Batch.tokens(generator.codec, "generate", source=[source], channel=[0],
                        sample_rate=[request.sample_rate], duration=[duration],
                        content_hash=[content_hash], codes=[codes])


def _new_frames(generator, request: Request, rows: int) -> Iterator[np.ndarray]:
    """(rows, n, levels) chunks of the request's new frames, `rows` variations at once."""
    s = request.settings
    conditions = np.repeat(np.asarray(request.condition, np.float32)[None], rows, axis=0)
    return generator.stream(conditions, request.frames, seed=s.seed, temperature=s.temperature, top_k=s.top_k,
                            guidance=s.guidance, prime=request.prime, stats=request.stats)


def generation_batches(generator, request: Request) -> Iterator[Batch]:
    """Tokens batches of one item (the material, then the new frames), each part marked as
    continued in the next but the last."""
    from soundtok_cli.io.parts import mark_continued

    before = _before(generator, request)
    content_hash = request_hash(generator, request)

    def part(codes: np.ndarray, last: bool) -> Batch:
        batch = _item(generator, request, request.source, content_hash, codes)
        return batch if last else mark_continued(batch)

    if request.frames == 0:
        yield part(before, True)
        return
    if len(before):
        yield part(before, False)
    made = 0
    for chunk in _new_frames(generator, request, 1):
        made += chunk.shape[1]
        yield part(chunk[0], made == request.frames)


def take_batches(generator, request: Request, takes: int) -> Iterator[Batch]:
    """`takes` variations of one request, made together as rows of one batch (on one CPU thread 16
    rows run at 46-50x real time together against 7-9x for one: `python -m bench.generate --parts
    speed`), each its own item named <source>-take<k>, one batch per take. They come when all are
    made: a stream lets only a batch's last item arrive in parts. The rows share one random
    stream, so a take depends on the seed and on how many takes were asked for."""
    before = _before(generator, request)
    made = np.zeros((takes, 0, generator.levels), np.uint16)
    if request.frames:
        made = np.concatenate(list(_new_frames(generator, request, takes)), axis=1)
    for k in range(takes):
        yield _item(generator, request, take_source(request.source, k + 1),
                    request_hash(generator, request, (k + 1, takes)), np.concatenate([before, made[k]]))
