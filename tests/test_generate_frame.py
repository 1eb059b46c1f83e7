"""The fast frame step computes what the model computes: the same states and the same logits."""

from __future__ import annotations

import torch

from soundtok_cli.generate.frame import FrameStep
from soundtok_cli.generate.model import LMConfig, TokenLM


def model_and_codes(levels: int = 4):
    torch.manual_seed(0)
    model = TokenLM(LMConfig(dim=32, codebook_size=64, levels=levels)).eval()
    return model, torch.randint(0, 64, (2, 30, levels)), torch.randn(2, 384)


def stepped_states(frame: FrameStep, model: TokenLM, codes, cond):
    inputs = torch.cat([model.start.expand(2, 1, -1), model.frame_inputs(codes[:, :-1])], dim=1)
    projected, state, steps = model.cond_in(cond), model.initial_state(cond), []
    for t in range(codes.shape[1]):
        out, state = frame.advance(inputs[:, t] + projected, state)
        steps.append(out)
    return torch.stack(steps, dim=1), inputs


def frame_logits(frame: FrameStep, hidden, codes, levels: int):
    """Logits of each level of each frame, the way the sampler makes them (tokens added as chosen)."""
    first = frame.first_layers(hidden.flatten(0, 1))
    out = []
    for level in range(levels):
        out.append(frame.logits(first, level))
        if level + 1 < levels:
            frame.add_token(first[None], level, codes[..., level].flatten())
    return torch.stack(out, dim=1).view(*hidden.shape[:2], levels, -1)


@torch.no_grad()
def test_frame_steps_equal_the_training_pass():
    """Generation steps the GRU cell by cell; it must compute what training computed."""
    model, codes, cond = model_and_codes()
    frame = FrameStep(model, int8=False)
    stepped, inputs = stepped_states(frame, model, codes, cond)
    whole, _ = model.run(inputs, cond, None)
    assert torch.allclose(stepped, whole, atol=1e-5)


def model_and_frame_logits(int8: bool):
    """The model's teacher-forced logits (B, T, levels, codebook) and the frame step's."""
    model, codes, cond = model_and_codes()
    hidden, _ = model.run(torch.cat([model.start.expand(2, 1, -1), model.frame_inputs(codes[:, :-1])], dim=1),
                          cond, None)
    return model(codes, cond), frame_logits(FrameStep(model, int8=int8), hidden, codes, 4)


@torch.no_grad()
def test_fused_heads_give_the_model_logits():
    expected, got = model_and_frame_logits(int8=False)
    assert torch.allclose(got, expected, atol=1e-4)


@torch.no_grad()
def test_int8_frame_stays_close_to_the_model():
    """int8 weights move logits a little; the choice of the most likely token hardly ever changes."""
    expected, got = model_and_frame_logits(int8=True)
    assert (got - expected).abs().max() < 0.05 * expected.abs().max()
    assert (got.argmax(-1) == expected.argmax(-1)).float().mean() > 0.95
