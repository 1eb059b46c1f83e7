"""Start a trainer from exported weights (a model as shipped) instead of from scratch."""

from __future__ import annotations

# tensors a shipped file carries beside the network's weights: the separator's concept table
NOT_WEIGHTS = ("concepts",)


def initial_weights(model, path: str, new_layers: tuple[str, ...] = ()) -> None:
    """Load the float16 safetensors at `path` into `model` as float32. Every weight must match,
    except the layers named in `new_layers` (prefixes), which the file may lack: layers added to
    the model that start from their own initialisation."""
    from safetensors.torch import load_file

    state = load_file(path)
    result = model.load_state_dict({k: v.float() for k, v in state.items() if k not in NOT_WEIGHTS}, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith(new_layers)]
    if missing or result.unexpected_keys:
        raise RuntimeError(f"{path} does not fit the model: missing {missing}, unexpected {result.unexpected_keys}")
