"""Peak normalisation of audio that arrives in blocks, in bounded memory."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

NORMALIZE_PEAK_DBFS = -1.0
_SPILL_FRAMES = 1 << 16


def write_normalized(blocks: Iterator[np.ndarray], writer, channels: int, peak_dbfs: float = NORMALIZE_PEAK_DBFS) -> float:
    """Write the (n, channels) blocks scaled to a peak of `peak_dbfs`; returns the gain in dB
    (0 for silence). Two passes in bounded memory: the samples go to an unnamed temporary file
    (float32, about 690 MB for an hour of mono) while the peak is found, then come back scaled."""
    import tempfile

    peak = 0.0
    with tempfile.TemporaryFile() as spill:
        for block in blocks:
            block = np.asarray(block, np.float32)
            peak = max(peak, float(np.abs(block).max(initial=0.0)))
            spill.write(block.tobytes())
        gain = 10 ** (peak_dbfs / 20) / peak if peak > 0 else 1.0
        spill.seek(0)
        while chunk := spill.read(_SPILL_FRAMES * channels * 4):
            writer.write(np.frombuffer(chunk, np.float32).reshape(-1, channels) * gain)
    return 20 * np.log10(gain)
