"""The ``spatial`` store kind: a tokens store plus where each sound is, frame by frame.

    items/*            as in a tokens store, plus
    items/scene_start  (N,) float64  seconds into the scene where the item starts (scene files)
    items/gain_db      (N,) float32  level in the scene, dB
    codes              (T, L) uint16 residual-VQ codes, as in a tokens store
    positions          (T, 3) float32 az (degrees, counter-clockwise from the front), el (degrees,
                                     up), dist (metres) of the item at each codec frame

The codec attribute is the tokens kind's; attrs.soundtok.spatial holds {"convention": ...,
"room": null or a room name}. Importing this module registers the kind (soundtok_cli.io.store
imports it, so every command reads spatial stores).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from soundtok_cli.io.store import STR, TOKENS, Batch, KindSpec, make_attrs, register_kind

CONVENTION = "az/el degrees (AmbiX/SOFA: azimuth counter-clockwise from the front, elevation up), dist metres"

SPATIAL = KindSpec(
    name="spatial",
    item_fields={**TOKENS.item_fields, "scene_start": np.dtype("float64"), "gain_db": np.dtype("float32")},
    payload={"codes": np.dtype("uint16"), "positions": np.dtype("float32")},
    trailing=lambda attrs: {"codes": (int(attrs["codec"]["levels"]),), "positions": (3,)},
    model_key="codec",
    model_fields=TOKENS.model_fields,
    check_model=TOKENS.check_model,
    value_bounds=TOKENS.value_bounds,
)
register_kind(SPATIAL)


def spatial_batch(codec: Mapping[str, Any], command: str, *, rows: list[dict], room: str | None = None) -> Batch:
    """A spatial batch from one dict per item: source, channel, sample_rate, duration,
    content_hash, codes (frames, levels), positions (frames, 3), scene_start, gain_db."""
    levels = int(codec["levels"])
    codes = [np.asarray(r["codes"], np.uint16).reshape(-1, levels) for r in rows]
    positions = [np.asarray(r["positions"], np.float32).reshape(-1, 3) for r in rows]
    for c, p in zip(codes, positions):
        if len(c) != len(p):
            raise ValueError(f"{len(c)} frames of codes but {len(p)} positions")
    lengths = np.array([len(c) for c in codes], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64) if len(rows) else lengths
    items = {
        "source": np.asarray([str(r["source"]) for r in rows]).astype(STR),
        "channel": np.asarray([r["channel"] for r in rows], np.int32),
        "start": starts,
        "length": lengths,
        "sample_rate": np.asarray([r["sample_rate"] for r in rows], np.int32),
        "duration": np.asarray([r["duration"] for r in rows], np.float64),
        "content_hash": np.asarray([str(r["content_hash"]) for r in rows]).astype(STR),
        "scene_start": np.asarray([r.get("scene_start", 0.0) for r in rows], np.float64),
        "gain_db": np.asarray([r.get("gain_db", 0.0) for r in rows], np.float32),
    }
    arrays = {
        "codes": np.concatenate(codes) if codes else np.zeros((0, levels), np.uint16),
        "positions": np.concatenate(positions) if positions else np.zeros((0, 3), np.float32),
    }
    attrs = make_attrs("spatial", codec, command, spatial={"convention": CONVENTION, "room": room})
    return Batch(attrs, items, arrays).validate()
