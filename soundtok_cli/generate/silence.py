"""Which coarse tokens mean silence: the no-repeat rule lets silence repeat, nothing else."""

from __future__ import annotations

import numpy as np

SILENCE_DBFS = (-120.0, -90.0, -80.0)


def silence_codes(codec) -> list[int]:
    """Level-0 codes the codec gives digital silence and noise at or below -80 dBFS."""
    rng = np.random.default_rng(0)
    seconds = 2
    found: set[int] = set()
    for level_db in SILENCE_DBFS:
        x = rng.standard_normal(seconds * codec.config.sample_rate).astype(np.float32) * 10 ** (level_db / 20)
        encoder = codec.encoder(codec.config.sample_rate, 1)
        codes = np.concatenate([encoder.push(x), encoder.finish()])
        found.update(int(c) for c in codes[:, 0])
    return sorted(found)
