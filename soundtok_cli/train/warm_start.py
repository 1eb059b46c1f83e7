"""Start a trainer from exported weights (a model as shipped) instead of from scratch."""

from __future__ import annotations

from soundtok_cli.models.registry import SUBBAND_PART, VOICE_PART


def _is_network_weight(name: str) -> bool:
    """Not one of the tensors a shipped file carries beside the network's weights: the separator's
    concept table, its sub-band speech mask (separate/subband.py) and its voice network (a copy
    of the network fine-tuned for voices)."""
    return name != "concepts" and not name.startswith((SUBBAND_PART, VOICE_PART))


def initial_weights(model, path: str) -> None:
    """Load the float16 safetensors at `path` into `model` as float32 (every weight must match)."""
    from safetensors.torch import load_file

    state = load_file(path)
    model.load_state_dict({k: v.float() for k, v in state.items() if _is_network_weight(k)})
