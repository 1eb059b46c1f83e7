"""The token language model behind `soundtok generate`: codec frames in order, coarse levels first.

A frame-rate recurrent network (GRU) reads the previous frame's tokens and a conditioning vector in
the joint text-audio space (a prompt's sentence embedding, or an example sound's audio embedding:
both live in the all-MiniLM-L6-v2 space), and predicts the next frame's tokens level by level:
level 0 from the recurrent state, each finer level from the state plus the tokens already chosen
below it in the same frame (a small "depth" step, as in RQ-Transformer, instead of a delay
pattern: one recurrent step per frame, and every level sees the coarser ones of its own frame).

Why recurrent: generation is endless and streamed. A GRU carries a fixed-size state, so an hour
costs the same memory as a second, each frame costs the same time, and a sound to continue is read
in one parallel pass. On this project's 2-core CPU that is what makes >5x real time possible.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class LMConfig:
    levels: int = 4            # codec levels modelled (3 kbps); finer levels are not generated
    codebook_size: int = 1024
    dim: int = 384
    layers: int = 2
    cond_dim: int = 384        # all-MiniLM-L6-v2

    def to_json(self) -> dict:
        return asdict(self)


class TokenLM(nn.Module):
    def __init__(self, config: LMConfig):
        super().__init__()
        self.config = c = config
        self.embed = nn.ModuleList(nn.Embedding(c.codebook_size, c.dim) for _ in range(c.levels))
        self.start = nn.Parameter(torch.zeros(c.dim))
        self.null = nn.Parameter(torch.zeros(c.cond_dim))     # "no condition" (guidance)
        self.cond_in = nn.Linear(c.cond_dim, c.dim)
        self.cond_state = nn.Linear(c.cond_dim, c.dim * c.layers)
        self.rnn = nn.GRU(c.dim, c.dim, c.layers, batch_first=True)
        self.norm = nn.LayerNorm(c.dim)
        # depth step: the tokens already chosen in this frame, for the finer levels
        self.depth = nn.ModuleList(nn.Embedding(c.codebook_size, c.dim) for _ in range(c.levels - 1))
        self.heads = nn.ModuleList(
            nn.Sequential(nn.Linear(c.dim, c.dim), nn.GELU(), nn.Linear(c.dim, c.codebook_size))
            for _ in range(c.levels))

    def condition(self, cond: torch.Tensor | None, batch: int) -> torch.Tensor:
        """(B, cond_dim) unit vectors, or None for the null condition."""
        if cond is None:
            return self.null[None].expand(batch, -1)
        return cond

    def initial_state(self, cond: torch.Tensor) -> torch.Tensor:
        c = self.config
        return torch.tanh(self.cond_state(cond)).view(-1, c.layers, c.dim).transpose(0, 1).contiguous()

    def frame_inputs(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, T, levels) codes -> (B, T, dim): the sum of the levels' embeddings."""
        return sum(self.embed[k](codes[..., k]) for k in range(self.config.levels))

    def run(self, inputs: torch.Tensor, cond: torch.Tensor, state: torch.Tensor | None):
        """(B, T, dim) frame inputs -> (B, T, dim) states (after the norm), new GRU state."""
        x = inputs + self.cond_in(cond)[:, None]
        out, state = self.rnn(x, self.initial_state(cond) if state is None else state)
        return self.norm(out), state

    def level_logits(self, hidden: torch.Tensor, chosen: list[torch.Tensor], level: int) -> torch.Tensor:
        """Logits of `level` from the state and the coarser tokens `chosen` of the same frame."""
        z = hidden
        for k, tokens in enumerate(chosen[:level]):
            z = z + self.depth[k](tokens)
        return self.heads[level](z)

    def forward(self, codes: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Teacher-forced training pass: (B, T, levels) codes -> (B, T, levels, codebook) logits
        of each frame given the frames before it."""
        b = codes.shape[0]
        previous = torch.cat([self.start.expand(b, 1, -1), self.frame_inputs(codes[:, :-1])], dim=1)
        hidden, _ = self.run(previous, cond, None)
        chosen = [codes[..., k] for k in range(self.config.levels)]
        return torch.stack([self.level_logits(hidden, chosen, k) for k in range(self.config.levels)], dim=2)


def lm_loss(logits: torch.Tensor, codes: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean cross-entropy over valid frames, and its per-level values (nats)."""
    ce = F.cross_entropy(logits.flatten(0, 2), codes.flatten().long(), reduction="none").view(codes.shape)
    weights = mask[..., None].float()
    per_level = (ce * weights).sum((0, 1)) / weights.sum().clamp_min(1)
    return per_level.mean(), per_level
