"""Deliberate thread counts for torch.

On small machines, OpenMP threads that outnumber free cores spin and make small models up to 10x
slower; so wait passively and give each worker an even share of the cores.
"""

from __future__ import annotations

import os


def configure_torch_threads(workers: int = 1, threads: int = 0) -> None:
    """An even share of the cores for each of `workers`, or exactly `threads` when given (two
    trainings side by side on a small machine: one core each)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    torch.set_num_threads(threads if threads > 0 else max(1, (os.cpu_count() or 1) // max(1, workers)))
