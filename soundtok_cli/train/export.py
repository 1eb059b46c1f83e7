"""Export a training checkpoint to the shipped weights: `python -m soundtok_cli.train.export CKPT OUT`.

Stored as float16 safetensors (half the size, well under the 25 MB per-file limit); the codec
computes in float32. The model's shape travels in the file's metadata.
"""

from __future__ import annotations

import os
import sys

import torch
from safetensors.torch import save_file

from soundtok_cli.codec.config import CodecConfig


def export(checkpoint: str, out: str) -> None:
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    weights = {k: v.to(torch.float16).contiguous() for k, v in state["model"].items()}
    metadata = {"config": CodecConfig().to_json(), "step": str(state["step"])}
    tmp = out + ".tmp"
    save_file(weights, tmp, metadata=metadata)
    os.replace(tmp, out)
    print(f"wrote {out} ({os.path.getsize(out) / 1e6:.1f} MB) from step {state['step']}")


if __name__ == "__main__":
    export(sys.argv[1], sys.argv[2])
