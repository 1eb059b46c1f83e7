"""The query-conditioned separation network: a spectral mask for the sound a description names.

48 kHz mono in the STFT domain (1024-sample Hann window, hop 512: 47 Hz bins, 10.7 ms frames;
halving the hop from 256 doubled the audio trained on per CPU-hour and the speed at run time).
Each frame's log magnitude goes through a per-frame projection and two bidirectional GRU layers;
the query (a 384-d sentence embedding of the joint space's text tower) modulates every layer by
FiLM (a learned scale and shift per feature), so the same network keeps speech for "speech" and
rain for "rain". The output is a magnitude mask in [0, 1] per bin: keeping applies the mask,
removing applies one minus it, so what is kept and what is removed always add up to the input.

Frame-rate recurrent layers instead of sample-rate convolutions keep it fast on a CPU; the
bidirectional layers see a little of the future, which an offline tool can afford (`neural.py`
runs long files in overlapping chunks).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import torch
from torch import nn

SAMPLE_RATE = 48_000
N_FFT = 1024
HOP = 512
QUERY_DIM = 384


@dataclass(frozen=True)
class SeparatorConfig:
    bins: int = N_FFT // 2 + 1
    hidden: int = 256
    rnn: int = 192
    layers: int = 2
    query_dim: int = QUERY_DIM

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, text: str) -> "SeparatorConfig":
        return cls(**json.loads(text))


class SeparatorNet(nn.Module):
    def __init__(self, config: SeparatorConfig = SeparatorConfig()):
        super().__init__()
        self.config = config
        c = config
        # A fixed-shape, learned per-bin affine map of log power, not a per-frame normalisation:
        # dividing each frame by its own level would hide the level contour over time (onsets,
        # pauses), the strongest cue to what is speech and what is a steady background.
        self.log_scale = nn.Parameter(torch.full((c.bins,), 0.15))
        self.log_offset = nn.Parameter(torch.full((c.bins,), 0.75))
        self.inp = nn.Linear(c.bins, c.hidden)
        self.film = nn.ModuleList(nn.Linear(c.query_dim, 2 * c.hidden) for _ in range(c.layers + 1))
        self.grus = nn.ModuleList(nn.GRU(c.hidden, c.rnn, batch_first=True, bidirectional=True) for _ in range(c.layers))
        self.proj = nn.ModuleList(nn.Linear(2 * c.rnn, c.hidden) for _ in range(c.layers))
        self.out = nn.Linear(c.hidden, c.bins)
        for film in self.film:  # start as the identity modulation
            nn.init.zeros_(film.weight)
            nn.init.zeros_(film.bias)

    def forward(self, magnitude: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        """magnitude (batch, frames, bins) of the mixture, query (batch, 384) -> mask, same shape."""
        features = torch.log(magnitude ** 2 + 1e-10) * self.log_scale + self.log_offset
        h = torch.nn.functional.gelu(self.inp(features))
        for i, (gru, proj) in enumerate(zip(self.grus, self.proj)):
            h = _modulate(h, self.film[i](query))
            h = h + torch.nn.functional.gelu(proj(gru(h)[0]))
        h = _modulate(h, self.film[-1](query))
        return torch.sigmoid(self.out(h))


def _modulate(h: torch.Tensor, film: torch.Tensor) -> torch.Tensor:
    scale, shift = film.unsqueeze(1).chunk(2, dim=-1)
    return h * (1 + scale) + shift


def window(device=None) -> torch.Tensor:
    return torch.hann_window(N_FFT, device=device)


def stft(x: torch.Tensor) -> torch.Tensor:
    """(batch, samples) -> complex (batch, frames, bins); frame i is centred on sample i * HOP."""
    return torch.stft(x, N_FFT, HOP, window=window(x.device), center=True, return_complex=True).transpose(1, 2)


def istft(spec: torch.Tensor, length: int) -> torch.Tensor:
    return torch.istft(spec.transpose(1, 2), N_FFT, HOP, window=window(spec.device), center=True, length=length)


def apply(model: SeparatorNet, x: torch.Tensor, query: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mixture waveforms (batch, samples) -> (the queried sound's waveforms, its spectrum, the
    mixture's spectrum): what the training loss reads."""
    spec = stft(x)
    estimate_spec = spec * model(spec.abs(), query)
    return istft(estimate_spec, x.shape[-1]), estimate_spec, spec
