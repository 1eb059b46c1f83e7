"""The soundtok codec network: STFT frames in, inverse STFT out, ConvNeXt-style blocks between.

Everything runs at the frame rate (75 frames/s at 48 kHz), which is far cheaper on a CPU than
sample-rate convolutions (see ANCHORS.md: Vocos-style models). The encoder reads log-magnitude and
power-law-compressed complex spectra; the decoder predicts log-magnitude and phase per bin.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from soundtok_cli.codec.config import CodecConfig
from soundtok_cli.codec.dsp import frames_stft, overlap_add
from soundtok_cli.codec.quantizer import ResidualVQ


class ChannelNorm(nn.Module):
    """LayerNorm over channels of a (B, C, T) tensor."""

    def __init__(self, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim, 1))
        self.bias = nn.Parameter(torch.zeros(dim, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        return (x - mean) * torch.rsqrt(var + 1e-6) * self.weight + self.bias


class ConvNeXtBlock(nn.Module):
    def __init__(self, dim: int, kernel: int):
        super().__init__()
        self.depthwise = nn.Conv1d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.norm = ChannelNorm(dim)
        self.expand = nn.Conv1d(dim, 3 * dim, 1)
        self.act = nn.GELU()
        self.contract = nn.Conv1d(3 * dim, dim, 1)
        self.scale = nn.Parameter(torch.full((dim, 1), 0.1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.scale * self.contract(self.act(self.expand(self.norm(self.depthwise(x)))))


class Encoder(nn.Module):
    def __init__(self, c: CodecConfig):
        super().__init__()
        self.c = c
        self.stem = nn.Conv1d(3 * c.bins, c.dim, 1)
        self.blocks = nn.Sequential(*(ConvNeXtBlock(c.dim, c.kernel) for _ in range(c.encoder_blocks)))
        self.norm = ChannelNorm(c.dim)
        self.out = nn.Conv1d(c.dim, c.dim, 1)

    def features(self, samples: torch.Tensor) -> torch.Tensor:
        spec = frames_stft(samples, self.c.n_fft, self.c.hop)
        magnitude = spec.abs()
        compressed = spec * (magnitude.clamp_min(1e-7) ** -0.7)  # |X|^0.3 with X's phase
        return torch.cat([torch.log(magnitude + 1e-5), compressed.real, compressed.imag], dim=1)

    def forward(self, samples: torch.Tensor) -> torch.Tensor:
        """(B, S) samples for frames [a-1, b+1) -> (B, dim, b-a) latent."""
        return self.out(self.norm(self.blocks(self.stem(self.features(samples)))))


class Decoder(nn.Module):
    def __init__(self, c: CodecConfig):
        super().__init__()
        self.c = c
        self.stem = nn.Conv1d(c.dim, c.dim, 3, padding=1)
        self.blocks = nn.Sequential(*(ConvNeXtBlock(c.dim, c.kernel) for _ in range(c.decoder_blocks)))
        self.norm = ChannelNorm(c.dim)
        self.head = nn.Conv1d(c.dim, 2 * c.bins, 1)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        """(B, dim, T) latent -> (B, bins, T) complex spectrum."""
        out = self.head(self.norm(self.blocks(self.stem(latent))))
        log_magnitude, phase = out.chunk(2, dim=1)
        magnitude = torch.exp(log_magnitude.clamp(max=6.0))
        return torch.polar(magnitude, phase)


class CodecModel(nn.Module):
    def __init__(self, config: CodecConfig):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.quantizer = ResidualVQ(config.dim, config.code_dim, config.codebook_size, config.levels)
        self.decoder = Decoder(config)

    def synthesize(self, latent: torch.Tensor) -> torch.Tensor:
        """(B, dim, T) latent -> (B, (T-2)*hop) samples for the T-2 inner frames."""
        c = self.config
        audio = overlap_add(self.decoder(latent), c.n_fft, c.hop)
        return audio[:, 2 * c.hop : -2 * c.hop]
