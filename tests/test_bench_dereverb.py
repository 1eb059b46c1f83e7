"""bench/dereverb.py's reference: the room's response up to 50 ms after the direct sound."""

import os
import sys

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:  # bench/ is part of the repository, not of the installed package
    sys.path.insert(0, REPO_ROOT)

from bench import dereverb as bench  # noqa: E402


def test_the_reference_keeps_50_ms_after_the_direct_sound():
    rng = np.random.default_rng(0)
    ir = 0.1 * rng.standard_normal(bench.SR)
    direct = 480  # 10 ms of propagation before the direct sound
    ir[:direct] = 0.0
    ir[direct] = 5.0
    early = bench.early(ir)
    cut = direct + int(bench.EARLY_SECONDS * bench.SR)
    np.testing.assert_array_equal(early[:cut], ir[:cut])
    assert len(early) == cut + int(0.005 * bench.SR) and abs(early[-1]) < 1e-4


def test_convolution_keeps_the_length_and_delays():
    x = np.zeros(1000)
    x[10] = 1.0
    y = bench.convolve(x, np.array([0.0, 0.0, 0.5]))
    assert len(y) == 1000 and abs(y[12] - 0.5) < 1e-12 and np.abs(np.delete(y, 12)).max() < 1e-12
