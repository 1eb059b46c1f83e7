"""Residual vector quantizer with factorised, L2-normalised codebooks.

Each level projects the residual to a small space (code_dim), looks up the nearest unit-norm
codeword by cosine similarity and projects back; low-dimensional normalised lookups keep the
codebooks well used (the trick DAC popularised). Level 0 is the coarsest; any prefix of levels
decodes, which is what makes the bitrate scalable.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class QuantizerLevel(nn.Module):
    def __init__(self, dim: int, code_dim: int, codebook_size: int):
        super().__init__()
        self.project_in = nn.Conv1d(dim, code_dim, 1)
        self.project_out = nn.Conv1d(code_dim, dim, 1)
        self.codebook = nn.Parameter(torch.randn(codebook_size, code_dim))

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """(B, code_dim, T) -> (B, T) indices of the closest codewords (cosine)."""
        similarity = torch.matmul(z.transpose(1, 2), F.normalize(self.codebook, dim=1).t())  # (B, T, K)
        return similarity.argmax(-1)

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, T) indices -> (B, code_dim, T) unit-norm codewords."""
        return F.embedding(codes, F.normalize(self.codebook, dim=1)).transpose(1, 2)


class ResidualVQ(nn.Module):
    def __init__(self, dim: int, code_dim: int, codebook_size: int, levels: int):
        super().__init__()
        self.levels = nn.ModuleList(QuantizerLevel(dim, code_dim, codebook_size) for _ in range(levels))

    def encode(self, latent: torch.Tensor, n_levels: int) -> torch.Tensor:
        """(B, dim, T) -> (B, T, n_levels) integer codes."""
        residual = latent
        codes = []
        for level in self.levels[:n_levels]:
            index = level.nearest(level.project_in(residual))
            residual = residual - level.project_out(level.lookup(index))
            codes.append(index)
        return torch.stack(codes, dim=-1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, T, L) codes -> (B, dim, T) latent; L may be any prefix of the trained levels."""
        return sum(level.project_out(level.lookup(codes[..., i])) for i, level in enumerate(self.levels[: codes.shape[-1]]))

    def forward(self, latent: torch.Tensor, n_levels: int):
        """Training pass: straight-through quantisation of the first n_levels; returns
        (quantized latent, codes, commitment loss, codebook loss)."""
        residual = latent
        quantized = torch.zeros_like(latent)
        commit = latent.new_zeros(())
        codebook_loss = latent.new_zeros(())
        codes = []
        for level in self.levels[:n_levels]:
            z = F.normalize(level.project_in(residual), dim=1)
            index = level.nearest(z)
            q = level.lookup(index)
            commit = commit + F.mse_loss(z, q.detach())
            codebook_loss = codebook_loss + F.mse_loss(q, z.detach())
            q = z + (q - z).detach()
            step = level.project_out(q)
            quantized = quantized + step
            residual = residual - step.detach()
            codes.append(index)
        return quantized, torch.stack(codes, dim=-1), commit, codebook_loss
