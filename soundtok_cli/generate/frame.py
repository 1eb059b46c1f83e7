"""One generated frame's arithmetic, rearranged for speed: the same function as `TokenLM`, fewer ops.

Making a frame costs a GRU step and, per level, a head (Linear, GELU, Linear) whose input is the
state plus the embeddings of the tokens already chosen below it. At one or a few rows every op is a
tiny matrix, so on a CPU a frame's time is set by the number of ops and by reading the weights,
not by arithmetic. Two rearrangements cut both:

- The heads' first layers are linear, so W1_L (hidden + sum_k depth_k[t_k]) =
  W1_L hidden + sum_k (depth_k W1_L^T)[t_k]. All levels' W1 hidden are one matrix product per
  frame, and each chosen token adds one precomputed table row to the finer levels' inputs: one
  product and three row additions instead of four products and six embedding additions.
- On a CPU the GRU cells, the fused first layer and the second layers run as int8 (dynamic
  quantization): each frame reads every one of their weights once, and int8 is a quarter of the
  memory traffic.

Measured on this 2-core VM, one thread, one guided row: 2.6 ms per frame before, 1.4 ms after
(`python -m bench.generate --parts speed`: 3.9-4.7x -> 7.3-8.7x real time). The tests in
`tests/test_generate_frame.py` check the states and logits against the model's own.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F

from soundtok_cli.generate.model import TokenLM


def _quantized(module: nn.Module, kinds: set[type]) -> nn.Module:
    with warnings.catch_warnings():   # torch points eager quantization users to torchao; it works as is
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(module, kinds, dtype=torch.qint8)


class FrameStep:
    """The frame-by-frame form of a `TokenLM`, for inference only (weights copied at construction)."""

    def __init__(self, model: TokenLM, int8: bool):
        c = model.config
        self.levels, self.dim = c.levels, c.dim
        heads = list(model.heads)
        with torch.no_grad():
            first = nn.Linear(c.dim, c.levels * c.dim).to(model.start.device)
            first.weight.copy_(torch.cat([h[0].weight for h in heads]))
            first.bias.copy_(torch.cat([h[0].bias for h in heads]))
            # tables[k][t]: what token t chosen at level k adds to the first layers of levels > k
            self.tables = [model.depth[k].weight @ first.weight[(k + 1) * c.dim:].T
                           for k in range(c.levels - 1)]
            cells = nn.ModuleList()
            for layer in range(c.layers):
                cell = nn.GRUCell(c.dim, c.dim).to(model.start.device)
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    getattr(cell, name).copy_(getattr(model.rnn, f"{name}_l{layer}"))
                cells.append(cell)
        layers = nn.ModuleDict({"cells": cells, "first": first,
                                "second": nn.ModuleList(h[2] for h in heads)})
        if int8:
            layers = _quantized(layers, {nn.Linear, nn.GRUCell})
        self.cells, self.first, self.second = list(layers["cells"]), layers["first"], list(layers["second"])
        self.norm = model.norm

    def advance(self, inputs: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, dim) frame inputs (condition added) and (layers, B, dim) state -> normed output, state."""
        x, states = inputs, []
        for layer, cell in enumerate(self.cells):
            x = cell(x, state[layer])
            states.append(x)
        return self.norm(x), torch.stack(states)

    def first_layers(self, hidden: torch.Tensor) -> torch.Tensor:
        """(B, dim) states -> (B, levels * dim): every level's first-layer input before any token."""
        return self.first(hidden)

    def logits(self, first: torch.Tensor, level: int) -> torch.Tensor:
        """(B, levels * dim) first-layer values (tokens below `level` already added) -> logits."""
        return self.second[level](F.gelu(first[:, level * self.dim : (level + 1) * self.dim]))

    def add_token(self, first: torch.Tensor, level: int, tokens: torch.Tensor) -> None:
        """Add the tokens chosen at `level` to the finer levels' first-layer values, in place.
        first: (G, rows, levels * dim) with G copies of the rows (2 under guidance); tokens: (rows,)."""
        first[..., (level + 1) * self.dim :] += self.tables[level][tokens]
