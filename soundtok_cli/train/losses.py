"""Training losses for the codec: the project's quality yardstick made differentiable.

The multi-scale log-mel L1 distance below uses the same scales, floor and mel scale as
bench/yardstick (and ../shared/tools/metrics.py), plus finer and coarser scales; a compressed
complex-spectrum loss keeps the phase coherent so SI-SDR does not collapse.
"""

from __future__ import annotations

import torch

from soundtok_cli.codec.dsp import hann, mel_filterbank

MEL_SCALES = [(256, 20), (512, 40), (1024, 80), (2048, 160), (4096, 320)]
COMPLEX_SCALES = [512, 2048]


def _spectrum(x: torch.Tensor, n_fft: int) -> torch.Tensor:
    return torch.stft(x, n_fft, n_fft // 4, window=hann(n_fft, str(x.device)), center=False, return_complex=True)


def mel_loss(ref: torch.Tensor, est: torch.Tensor, sample_rate: int) -> torch.Tensor:
    total = ref.new_zeros(())
    for n_fft, n_mels in MEL_SCALES:
        fb = mel_filterbank(sample_rate, n_fft, n_mels, str(ref.device))
        a = torch.log10((fb @ _spectrum(ref, n_fft).abs()).clamp_min(1e-5))
        b = torch.log10((fb @ _spectrum(est, n_fft).abs()).clamp_min(1e-5))
        total = total + (a - b).abs().mean()
    return total / len(MEL_SCALES)


def complex_loss(ref: torch.Tensor, est: torch.Tensor) -> torch.Tensor:
    total = ref.new_zeros(())
    for n_fft in COMPLEX_SCALES:
        a, b = _spectrum(ref, n_fft), _spectrum(est, n_fft)
        a = a * (a.abs().clamp_min(1e-7) ** -0.7)
        b = b * (b.abs().clamp_min(1e-7) ** -0.7)
        total = total + (a - b).abs().mean()
    return total / len(COMPLEX_SCALES)
