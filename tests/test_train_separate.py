"""The separation trainer's loss: SI-SDR where the target is audible, a level-independent spectral
distance everywhere (also where the target is silence: a query for something absent)."""

import torch

from soundtok_cli.separate.model import SeparatorNet, apply, stft
from soundtok_cli.train.separate import separation_loss, si_sdr


def test_si_sdr_ignores_scale_and_sees_noise():
    g = torch.Generator().manual_seed(0)
    target = torch.randn(2, 4800, generator=g)
    assert torch.all(si_sdr(0.3 * target, target) > 60)
    noisy = target + 0.1 * torch.randn(2, 4800, generator=g)
    assert torch.allclose(si_sdr(noisy, target), torch.full((2,), 20.0), atol=0.5)


def test_loss_rewards_the_target_and_handles_silent_targets():
    g = torch.Generator().manual_seed(1)
    target = torch.randn(3, 9600, generator=g) * torch.tensor([[1.0], [0.01], [0.0]])   # the last is silence
    other = torch.randn(3, 9600, generator=g)
    mixture = target + other
    perfect, perfect_sdr = separation_loss(target, target, stft(target), stft(target), stft(mixture))
    passthrough, through_sdr = separation_loss(mixture, target, stft(mixture), stft(target), stft(mixture))
    assert torch.isfinite(perfect) and torch.isfinite(passthrough)
    assert perfect < passthrough and perfect_sdr > through_sdr
    assert through_sdr < 0    # averaged over the two audible rows only: 0 dB and -40 dB


def test_untrained_model_runs_and_learns_a_step():
    torch.manual_seed(0)
    model = SeparatorNet()
    mixture, target = torch.randn(2, 24000) * 0.1, torch.randn(2, 24000) * 0.05
    query = torch.nn.functional.normalize(torch.randn(2, 384), dim=-1)
    estimate, estimate_spec, spec = apply(model, mixture, query)
    mask = model(spec.abs(), query).detach()
    assert estimate.shape == mixture.shape and float(mask.min()) >= 0 and float(mask.max()) <= 1
    loss, _ = separation_loss(estimate, target, estimate_spec, stft(target), spec)
    loss.backward()
    assert all(p.grad is not None for p in model.film.parameters())   # the query reaches the loss
