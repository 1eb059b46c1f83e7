"""Frame-rate signal processing shared by the codec and its training losses.

Frame t of a signal stands for samples [t*hop, (t+1)*hop); its analysis and synthesis window
covers [(t-1)*hop, (t+2)*hop), so frames [a, b) are computed from samples [(a-1)*hop, (b+1)*hop).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F


@functools.lru_cache(maxsize=8)
def hann(n: int, device: str = "cpu") -> torch.Tensor:
    return torch.hann_window(n, periodic=True, device=device)


def frames_stft(x: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """(B, S) samples covering [(a-1)*hop, (b+1)*hop) -> (B, bins, b-a) complex spectrum."""
    window = hann(n_fft, str(x.device))
    return torch.stft(x, n_fft, hop, window=window, center=False, return_complex=True)


def overlap_add(spec: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """Inverse of `frames_stft`: (B, bins, T) -> (B, (T+2)*hop) samples, window-normalised.

    Only samples [2*hop, T*hop) get all three overlapping frames: the inner frames [1, T-1)
    render exactly the samples they stand for; callers pass one extra frame on each side.
    """
    window = hann(n_fft, str(spec.device))
    frames = torch.fft.irfft(spec, n=n_fft, dim=1) * window[None, :, None]  # (B, n_fft, T)
    T = spec.shape[-1]
    length = (T - 1) * hop + n_fft
    out = F.fold(frames, output_size=(1, length), kernel_size=(1, n_fft), stride=(1, hop))
    steady = (window**2).reshape(n_fft // hop, hop).sum(0)  # constant-overlap normaliser
    out = out.reshape(spec.shape[0], length)
    return out / steady.repeat(length // hop + 1)[:length].clamp_min(1e-3)


@functools.lru_cache(maxsize=16)
def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, device: str = "cpu") -> torch.Tensor:
    """Triangular mel filters (n_mels, n_fft//2+1), HTK mel scale, as the project's yardstick."""
    import numpy as np

    hz2mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)  # noqa: E731
    mel2hz = lambda m: 700.0 * (10 ** (m / 2595.0) - 1.0)  # noqa: E731
    hz = mel2hz(np.linspace(hz2mel(0.0), hz2mel(sample_rate / 2), n_mels + 2))
    bins = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    fb = np.zeros((n_mels, len(bins)))
    for i in range(n_mels):
        lo, mid, hi = hz[i], hz[i + 1], hz[i + 2]
        fb[i] = np.clip(np.minimum((bins - lo) / (mid - lo + 1e-9), (hi - bins) / (hi - mid + 1e-9)), 0, None)
    return torch.tensor(fb, dtype=torch.float32, device=device)
