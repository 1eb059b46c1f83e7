"""The audio tower's trainer: starting from exported weights, and the temperature it starts at."""

import numpy as np
import pytest
import torch

from soundtok_cli.embed.model import AudioTower, TowerConfig
from soundtok_cli.models.registry import find
from soundtok_cli.train.embed import Examples, calibrated_log_scale
from soundtok_cli.train.warm_start import initial_weights


def shipped_tower() -> AudioTower:
    model = AudioTower(TowerConfig())
    initial_weights(model, find("soundtok-embed").path())
    return model.eval()


def examples_with_captions(model: AudioTower, text_of) -> Examples:
    """64 random token inputs whose caption vectors are `text_of(audio vectors)`, one caption each."""
    rng = np.random.default_rng(0)
    n, width = 64, 30
    inputs = torch.from_numpy(rng.standard_normal((n, model.config.code_dim, width)).astype(np.float16))
    examples = Examples.__new__(Examples)
    examples.inputs = {k: inputs for k in (1, 2, 4, 8)}
    examples.lengths = np.full(n, width)
    examples.caption_ids = np.arange(n)
    examples.general_ids = [[] for _ in range(n)]
    with torch.no_grad():
        audio = model(inputs.float(), torch.from_numpy(examples.lengths)).numpy()
    examples.text = text_of(audio).astype(np.float32)
    return examples


def test_training_can_start_from_the_shipped_weights():
    from safetensors.torch import load_file

    model = shipped_tower()
    shipped = load_file(find("soundtok-embed").path())
    for name, value in model.state_dict().items():
        assert torch.equal(value, shipped[name].float()), name


def test_the_starting_temperature_follows_how_well_audio_and_captions_agree():
    model = shipped_tower()
    agreeing = examples_with_captions(model, lambda audio: audio)
    rng = np.random.default_rng(1)

    def unrelated(audio):
        text = rng.standard_normal(audio.shape)
        return text / np.linalg.norm(text, axis=1, keepdims=True)

    random = examples_with_captions(model, unrelated)
    sharp = np.exp(calibrated_log_scale(model, agreeing, 32, "cpu"))
    flat = np.exp(calibrated_log_scale(model, random, 32, "cpu"))
    # captions equal to the audio vectors: the sharper the better; unrelated ones: the flattest
    assert sharp == pytest.approx(100.0) and flat == pytest.approx(10.0)
