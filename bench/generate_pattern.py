"""Coarse-to-fine depth step or delay pattern: the measured choice behind the token language model.

    python -m bench.generate_pattern [--data checkpoints/generate-data] [--steps 300] [--threads N]
                                     [--json bench/results/generate_pattern.json]

`soundtok generate` predicts each codec frame's levels in order inside the frame (a "depth" step,
as RQ-Transformer does: level k sees levels 0..k-1 of its own frame). The common alternative is
MusicGen's delay pattern: level k runs k frames late, so one recurrent step emits every level at
once. Both factorise the same joint distribution, in different orders, so the total negative
log-likelihood of held-out sequences compares them directly (per level it does not: in the delay
order, level 2 of a frame has already seen level 0 of the next one).

Both are trained here from scratch on the same built sequences (`make train-generate`'s data),
same recurrent network (`LMConfig`), same batches, conditions, learning-rate schedule and number of
steps, then scored on the trainer's validation split: nats per level, the total in bits per second
(75 frames/s) and the training time per step. Equal compute, early in training: a larger budget
could change the order, and the report says at which step it was measured.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from datetime import datetime, timezone

import numpy as np
import torch
from torch import nn

from bench.results import cpu_name, write_json
from soundtok_cli.generate.model import LMConfig, TokenLM

FRAMES_PER_SECOND = 75
PATTERNS = ("depth", "delay")


class DelayLM(nn.Module):
    """The shipped model's recurrent network with MusicGen's delay pattern instead of the depth
    step: the input at step s is the sum of level k's token of frame s-1-k over k (a learned
    "no token" where that frame does not exist), and head k at step s predicts level k of frame
    s-k. One recurrent step per frame, all levels at once, no depth embeddings."""

    def __init__(self, config: LMConfig):
        super().__init__()
        self.config = c = config
        self.pad = c.codebook_size
        self.embed = nn.ModuleList(nn.Embedding(c.codebook_size + 1, c.dim) for _ in range(c.levels))
        self.start = nn.Parameter(torch.zeros(c.dim))
        self.null = nn.Parameter(torch.zeros(c.cond_dim))
        self.cond_in = nn.Linear(c.cond_dim, c.dim)
        self.cond_state = nn.Linear(c.cond_dim, c.dim * c.layers)
        self.rnn = nn.GRU(c.dim, c.dim, c.layers, batch_first=True)
        self.norm = nn.LayerNorm(c.dim)
        self.heads = nn.ModuleList(
            nn.Sequential(nn.Linear(c.dim, c.dim), nn.GELU(), nn.Linear(c.dim, c.codebook_size))
            for _ in range(c.levels))

    def delayed(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, T, L) codes -> (B, T + L - 1, L): level k shifted k frames later, "no token" around."""
        b, t, levels = codes.shape
        out = codes.new_full((b, t + levels - 1, levels), self.pad)
        for k in range(levels):
            out[:, k : k + t, k] = codes[..., k]
        return out

    def forward(self, codes: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Teacher-forced: (B, T, L) codes -> (B, T, L, codebook) logits, frame-aligned like
        TokenLM's, so `lm_loss` scores both the same way."""
        c = self.config
        b, t, levels = codes.shape
        steps = self.delayed(codes)
        inputs = sum(self.embed[k](steps[:, :-1, k]) for k in range(levels))
        inputs = torch.cat([self.start.expand(b, 1, -1), inputs], dim=1) + self.cond_in(cond)[:, None]
        state = torch.tanh(self.cond_state(cond)).view(-1, c.layers, c.dim).transpose(0, 1).contiguous()
        hidden = self.norm(self.rnn(inputs, state)[0])
        return torch.stack([self.heads[k](hidden[:, k : k + t]) for k in range(levels)], dim=2)


def make_model(pattern: str, config: LMConfig) -> nn.Module:
    return TokenLM(config) if pattern == "depth" else DelayLM(config)


def train_pattern(pattern: str, data, config: LMConfig, steps: int, batch: int, lr: float, seq_frames: int,
                  log) -> dict:
    from soundtok_cli.train.generate import train_step

    torch.manual_seed(0)
    model = make_model(pattern, config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    rng = np.random.default_rng([1, 0])      # the same batches and conditions for both patterns
    started = time.perf_counter()
    for step in range(steps):
        loss, _, _ = train_step(model, optimizer, data, rng, lr, step, steps, batch, seq_frames)
        if (step + 1) % 25 == 0:
            log(f"{pattern} step {step + 1}/{steps}: loss {loss.item():.3f}")
    seconds = time.perf_counter() - started
    levels = data.validation_levels(model, batch, seq_frames)
    nats = float(sum(levels))
    return {"levels_nats": levels, "nats_per_frame": nats,
            "bits_per_second": nats / math.log(2) * FRAMES_PER_SECOND,
            "seconds_per_step": seconds / steps,
            "parameters": sum(p.numel() for p in model.parameters())}


def format_report(result: dict) -> str:
    rows = [f"Token LM patterns, {result['steps']} steps each from scratch, batch {result['batch']} x "
            f"{result['seq_frames']} frames, same data and batches; validation split ({result['validation']} sequences, "
            f"each conditioned on its caption)",
            "",
            f"{'pattern':8} {'level nats (0..3)':>28} {'nats/frame':>11} {'kbit/s':>8} {'s/step':>7} {'params':>9}"]
    for pattern in PATTERNS:
        r = result["patterns"][pattern]
        rows.append(f"{pattern:8} {' '.join(f'{v:6.3f}' for v in r['levels_nats']):>28} {r['nats_per_frame']:11.3f} "
                    f"{r['bits_per_second'] / 1000:8.3f} {r['seconds_per_step']:7.2f} {r['parameters'] / 1e6:8.2f}M")
    better = min(PATTERNS, key=lambda p: result["patterns"][p]["nats_per_frame"])
    other = [p for p in PATTERNS if p != better][0]
    gap = result["patterns"][other]["nats_per_frame"] - result["patterns"][better]["nats_per_frame"]
    rows += ["", f"lower total: {better} (by {gap:.3f} nats per frame; per level the orders differ, see the docstring)"]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="checkpoints/generate-data", help="the built sequences (make train-generate)")
    parser.add_argument("--cache", default="checkpoints/generate", help="where the caption vectors are cached")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=12)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seq-frames", type=int, default=300)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", default="bench/results/generate_pattern.json")
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args(argv)
    if min(args.steps, args.batch, args.seq_frames, args.threads) < 1:
        parser.error("--steps, --batch, --seq-frames and --threads must be positive")
    if not os.path.isdir(args.data):
        parser.error(f"{args.data}: no built sequences (run: python -m soundtok_cli.train.generate build)")

    def log(message: str) -> None:
        if not args.quiet:
            print(message, file=sys.stderr, flush=True)

    from soundtok_cli.train.generate import Sequences

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    config = LMConfig()
    data = Sequences(args.data, args.cache, config.levels)
    log(data.describe())
    result: dict = {"benchmark": "generate_pattern", "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "data": args.data, "steps": args.steps, "batch": args.batch, "lr": args.lr,
                    "seq_frames": args.seq_frames, "validation": len(data.valid), "config": config.to_json(),
                    "patterns": {}}
    for pattern in PATTERNS:
        result["patterns"][pattern] = train_pattern(pattern, data, config, args.steps, args.batch, args.lr,
                                                    args.seq_frames, log)
    result["environment"] = {"python": platform.python_version(), "torch": torch.__version__,
                             "cpu_count": os.cpu_count(), "processor": cpu_name(), "threads": args.threads}
    result["wall_seconds"] = time.perf_counter() - started
    write_json(args.json, result)
    print(format_report(result))
    print(f"\nwrote {args.json} in {result['wall_seconds']:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
