"""bench.generate_pattern: the depth step and the delay pattern are both proper autoregressive
orders (no logit may see its own token or a later one), and the benchmark trains and scores both."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from bench.generate_pattern import DelayLM, main
from soundtok_cli.generate.model import LMConfig, TokenLM

SMALL = LMConfig(levels=3, codebook_size=16, dim=32, layers=1, cond_dim=8)


def _logits(model, codes, cond):
    model.eval()
    with torch.no_grad():
        return model(codes, cond)


def _changed_positions(model, t0: int, k0: int) -> set[tuple[int, int]]:
    """The (frame, level) logits that change when only the token at (t0, k0) changes."""
    torch.manual_seed(0)
    codes = torch.randint(0, SMALL.codebook_size, (1, 8, SMALL.levels))
    cond = torch.randn(1, SMALL.cond_dim)
    before = _logits(model, codes, cond)
    codes[0, t0, k0] = (codes[0, t0, k0] + 5) % SMALL.codebook_size
    after = _logits(model, codes, cond)
    diff = (after - before).abs().amax(-1)[0]
    return {(t, k) for t in range(8) for k in range(SMALL.levels) if diff[t, k] > 1e-6}


def test_depth_step_sees_earlier_frames_and_coarser_levels_of_its_own_frame_only():
    torch.manual_seed(1)
    model = TokenLM(SMALL)
    for t0, k0 in [(3, 0), (3, 1), (5, 2)]:
        changed = _changed_positions(model, t0, k0)
        assert changed, "the token must matter to something after it"
        for t, k in changed:
            assert t > t0 or (t == t0 and k > k0), (t0, k0, t, k)


def test_delay_pattern_sees_only_tokens_of_earlier_steps():
    torch.manual_seed(1)
    model = DelayLM(SMALL)
    for t0, k0 in [(3, 0), (3, 1), (5, 2)]:
        changed = _changed_positions(model, t0, k0)
        assert changed
        for t, k in changed:
            assert t + k > t0 + k0, (t0, k0, t, k)   # step t+k comes after the token's own step
        # level k0 of the next frame reads it, as in the delay pattern
        if t0 + 1 < 8:
            assert (t0 + 1, k0) in changed


def test_delayed_layout_shifts_level_k_by_k_frames():
    model = DelayLM(SMALL)
    codes = torch.arange(4 * SMALL.levels).view(1, 4, SMALL.levels) % SMALL.codebook_size
    steps = model.delayed(codes)
    assert steps.shape == (1, 4 + SMALL.levels - 1, SMALL.levels)
    for k in range(SMALL.levels):
        assert torch.equal(steps[0, k : k + 4, k], codes[0, :, k])
        assert (steps[0, :k, k] == model.pad).all() and (steps[0, k + 4 :, k] == model.pad).all()


@pytest.fixture
def built_sequences(tmp_path):
    """A tiny data dir as `train.generate build` writes it, with the audio vectors cached."""
    rng = np.random.default_rng(0)
    count = 40
    codes = rng.integers(0, 1024, (count, 30, 8)).astype(np.uint16)
    frames = rng.integers(10, 31, count).astype(np.int16)
    captions = np.array([["rain", "wind in trees", "a dog barking", "thunder"][i % 4] for i in range(count)])
    data = tmp_path / "data"
    data.mkdir()
    np.savez(data / "shard-0000.npz", codes=codes, frames=frames, captions=captions)
    vectors = rng.normal(size=(count, 384)).astype(np.float32)
    np.save(data / "audio-vectors.npy", vectors / np.linalg.norm(vectors, axis=1, keepdims=True))
    return tmp_path


def test_benchmark_trains_both_patterns_and_reports_bits_per_second(built_sequences, capsys):
    out = built_sequences / "pattern.json"
    main(["--data", str(built_sequences / "data"), "--cache", str(built_sequences / "cache"), "--steps", "2",
          "--batch", "4", "--seq-frames", "12", "--threads", "1", "--json", str(out), "-q"])
    result = json.loads(out.read_text())
    assert set(result["patterns"]) == {"depth", "delay"}
    for r in result["patterns"].values():
        assert len(r["levels_nats"]) == 4 and all(math.isfinite(v) and v > 0 for v in r["levels_nats"])
        assert r["bits_per_second"] == pytest.approx(sum(r["levels_nats"]) / math.log(2) * 75)
    assert result["validation"] == 32
    assert "lower total:" in capsys.readouterr().out
