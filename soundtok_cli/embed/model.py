"""The audio tower of the joint text-audio space: codec tokens in, all-MiniLM-L6-v2 space out.

The text side is the frozen all-MiniLM-L6-v2 sentence space (see `embed.text`), so a text query
needs no model of ours at all; the audio tower is trained to land each sound next to the sentence
embedding of its caption (contrastively, text locked).

Input is the codebook vectors of the tokens: each level's code indexes the codec's own code vector
(the codec's quantizer output for that level, 256-d), summed over the levels present, which is the
latent the codec decoder sees. Any prefix of levels works (trained with 1 to 8), so stores encoded at
any bitrate embed. The latent is averaged over 5 codec frames (15 frames/s, 67 ms) before anything else:
the codec encoder already did the fine-grained work, and the tower then costs a fifth of the
compute, which is what makes CPU training and >200x real-time embedding possible. ConvNeXt-style
blocks follow; attention-plus-mean pooling over a window gives one vector.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from soundtok_cli.codec.model import ChannelNorm, ConvNeXtBlock


@dataclass(frozen=True)
class TowerConfig:
    code_dim: int = 256       # the codec latent width
    max_levels: int = 8       # levels read from a store (more are ignored)
    codebook_size: int = 1024
    dim: int = 192
    blocks: int = 2
    pool: int = 5             # 75 -> 15 frames/s
    kernel: int = 7
    out_dim: int = 384        # all-MiniLM-L6-v2

    def to_json(self) -> dict:
        return asdict(self)


def masked_pool(x: torch.Tensor, weights: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax-weighted and plain mean over time of (B, C, T) features where mask (B, T) is true."""
    scores = weights.masked_fill(~mask, float("-inf")).softmax(-1)
    attended = torch.einsum("bct,bt->bc", x, scores)
    counts = mask.sum(-1, keepdim=True).clamp_min(1)
    mean = (x * mask[:, None]).sum(-1) / counts
    return torch.cat([attended, mean], dim=1)


class AudioTower(nn.Module):
    def __init__(self, config: TowerConfig):
        super().__init__()
        self.config = c = config
        # the codec's per-level code vectors (frozen; copied from the codec at training time)
        self.register_buffer("code_vectors", torch.zeros(c.max_levels, c.codebook_size, c.code_dim))
        self.stem = nn.Conv1d(c.code_dim, c.dim, 1)
        self.blocks = nn.Sequential(*(ConvNeXtBlock(c.dim, c.kernel) for _ in range(c.blocks)))
        self.norm = ChannelNorm(c.dim)
        self.attention = nn.Conv1d(c.dim, 1, 1)
        self.head = nn.Sequential(nn.Linear(2 * c.dim, c.dim), nn.GELU(), nn.Linear(c.dim, c.out_dim))

    @property
    def frame_ratio(self) -> int:
        """Codec frames per feature frame."""
        return self.config.pool

    def pooled_latent(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, T, L) integer codes -> (B, code_dim, ceil(T / pool)): the sum of the levels' code
        vectors (the codec latent), averaged over `pool` frames (a partial last group over what it has)."""
        levels = min(codes.shape[-1], self.config.max_levels)
        total = sum(F.embedding(codes[..., level], self.code_vectors[level]) for level in range(levels))
        return F.avg_pool1d(total.transpose(1, 2), self.config.pool, ceil_mode=True)

    def features(self, pooled: torch.Tensor) -> torch.Tensor:
        """(B, code_dim, T') pooled latent -> (B, dim, T') features at 15 frames/s."""
        return self.norm(self.blocks(self.stem(pooled)))

    def pool(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, dim, T') features, (B, T') mask -> (B, out_dim) unit vectors."""
        pooled = masked_pool(features, self.attention(features)[:, 0], mask)
        return F.normalize(self.head(pooled), dim=-1)

    def forward(self, pooled: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Training pass: (B, code_dim, T') pooled latents with per-row valid lengths (in pooled
        frames; zeros beyond) -> (B, out_dim)."""
        valid = torch.arange(pooled.shape[-1], device=pooled.device)[None] < lengths[:, None]
        x = self.norm(self.blocks(self.stem(pooled) * valid[:, None]))
        return self.pool(x, valid)
