"""Cutting a generated take to a one-shot (generate/oneshot.py) on signals made here."""

from __future__ import annotations

import numpy as np
import pytest

from soundtok_cli.generate.oneshot import FADE_SECONDS, PRE_ROLL_SECONDS, one_shot, onset

SR = 48000


def event_at(seconds: float, total: float = 3.0, floor: float = 1e-4, channels: int | None = None) -> np.ndarray:
    """Low noise, then a decaying burst from `seconds` on."""
    rng = np.random.default_rng(1)
    shape = (int(total * SR),) if channels is None else (int(total * SR), channels)
    x = floor * rng.standard_normal(shape)
    t = np.arange(int(0.5 * SR)) / SR
    burst = 0.5 * np.exp(-t / 0.08) * rng.standard_normal(len(t))
    start = int(seconds * SR)
    x[start : start + len(t)] += burst if channels is None else burst[:, None]
    return x.astype(np.float32)


@pytest.mark.parametrize("at", [0.0, 0.13, 0.4, 0.95])
def test_the_onset_is_where_the_loudest_event_starts(at):
    assert onset(event_at(at), SR) / SR == pytest.approx(at, abs=0.005)


def test_a_louder_event_later_in_the_search_span_wins_over_a_soft_one_first():
    x = event_at(0.7) + 0.05 * event_at(0.1)
    assert onset(x, SR) / SR == pytest.approx(0.7, abs=0.005)


def test_an_event_after_the_search_span_is_not_looked_for():
    x = event_at(2.0) + 0.1 * event_at(0.3)
    assert onset(x, SR) / SR == pytest.approx(0.3, abs=0.005)


def test_a_one_shot_is_the_duration_asked_from_just_before_its_event():
    x = event_at(0.4)
    y = one_shot(x, SR, 1.0)
    pre = int(PRE_ROLL_SECONDS * SR)
    assert len(y) == SR and y.dtype == np.float32
    assert abs(y[0]) < 1e-6 and abs(y[-1]) < 1e-6                       # faded in and out
    start = int(round(onset(x, SR))) - pre
    np.testing.assert_array_equal(y[pre : SR - int(FADE_SECONDS * SR)], x[start + pre : start + SR - int(FADE_SECONDS * SR)])
    assert np.abs(y[: pre]).max() < 1e-3 < np.abs(y[pre : pre + int(0.02 * SR)]).max()  # the attack is whole


def test_channels_are_cut_together_and_short_material_ends_in_zeros():
    x = event_at(0.2, total=1.0, channels=2)
    y = one_shot(x, SR, 2.0)
    assert y.shape == (2 * SR, 2)
    assert not y[int(0.9 * SR) :].any()
