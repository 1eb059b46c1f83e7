"""The training loop the small mask networks share (train/subband.py, train/dereverb.py).

AdamW steps under 50 steps of linear warm-up and a cosine decay to a twentieth of the rate,
gradients clipped at 1.0; a line every 25 steps, and every 50 (and at the end) a checkpoint
written atomically, so a run stopped anywhere resumes from its last one.
"""

from __future__ import annotations

import os
import time
from typing import Callable

import numpy as np
import torch

WARMUP_STEPS = 50


def run_steps(net: torch.nn.Module, optimizer: torch.optim.Optimizer, step: int, steps: int, lr: float,
              next_loss: Callable[[], torch.Tensor], checkpoint: str, extra: dict) -> None:
    """Train from `step` to `steps`; each checkpoint holds the model, the optimizer, the step and `extra`."""
    started = time.time()
    while step < steps:
        warmup = min(1.0, (step + 1) / WARMUP_STEPS)
        cosine = 0.5 * (1 + np.cos(np.pi * step / steps)) * 0.95 + 0.05
        for group in optimizer.param_groups:
            group["lr"] = lr * warmup * cosine
        loss = next_loss()
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        optimizer.step()
        step += 1
        if step % 25 == 0:
            print(f"step {step}: loss {loss.item():.3f}, {time.time() - started:.0f} s", flush=True)
        if step % 50 == 0 or step == steps:
            tmp = checkpoint + ".tmp"
            torch.save({"model": net.state_dict(), "optimizer": optimizer.state_dict(), "step": step, **extra}, tmp)
            os.replace(tmp, checkpoint)
