"""The generator's training data build: crops at a working level, and no silent mixing of builds."""

from __future__ import annotations

import json

import numpy as np
import pytest

from soundtok_cli.train.generate_data import PEAK, check_recipe, peak_normalized


def test_crops_are_scaled_to_the_working_peak_unless_silent():
    quiet = 0.01 * np.sin(np.linspace(0, 100, 4800))
    assert np.max(np.abs(peak_normalized(quiet))) == pytest.approx(PEAK)
    loud = np.clip(3 * np.sin(np.linspace(0, 100, 4800)), -1.5, 1.5)
    assert np.max(np.abs(peak_normalized(loud))) == pytest.approx(PEAK)
    room_tone = np.full(4800, 1e-4)            # -80 dBFS: left as recorded, not raised to full scale
    assert np.array_equal(peak_normalized(room_tone), room_tone)
    assert len(peak_normalized(np.zeros(0))) == 0


def test_a_build_resumes_only_its_own_recipe(tmp_path):
    out = tmp_path / "data"
    check_recipe(str(out))                     # a new directory: the recipe is written down
    recipe = json.loads((out / "RECIPE.json").read_text())
    assert recipe["peak_dbfs"] == -1.0
    (out / "shard-0000.npz").write_bytes(b"")
    check_recipe(str(out))                     # the same recipe resumes
    (out / "RECIPE.json").write_text(json.dumps(dict(recipe, peak_dbfs=None)))
    with pytest.raises(SystemExit, match="another recipe"):
        check_recipe(str(out))
    old = tmp_path / "old"
    old.mkdir()
    (old / "shard-0000.npz").write_bytes(b"")  # shards from before the recipe was recorded
    with pytest.raises(SystemExit, match="older build"):
        check_recipe(str(old))
