"""Add a part to a separator's weights file: the sub-band speech mask (train/subband.py) and the
voice network (train/separate.py) each travel in the separator's file under a tensor prefix."""

from __future__ import annotations

import os

import torch


def add_part(separator: str, out: str, prefix: str, state: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Write `separator`'s file to `out` (atomically; it may be the same path) with the tensors
    under `prefix` replaced by `state` in float16 and `metadata` added to its metadata."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(separator, framework="pt") as f:
        merged = dict(f.metadata()) | metadata
    weights = {k: v for k, v in load_file(separator).items() if not k.startswith(prefix)}
    weights.update({prefix + k: v.to(torch.float16).contiguous() for k, v in state.items()})
    tmp = out + ".tmp"
    save_file(weights, tmp, metadata=merged)
    os.replace(tmp, out)
