"""Text queries pulled toward the sound of the nearest trained caption (embed/prototypes.py)."""

from __future__ import annotations

import numpy as np
import pytest

from soundtok_cli.embed import prototypes
from soundtok_cli.embed.prototypes import KNOWN, Prototypes


def unit(x):
    x = np.asarray(x, np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@pytest.fixture
def table():
    rng = np.random.default_rng(3)
    text, sound = unit(rng.standard_normal((5, 16))), unit(rng.standard_normal((5, 16)))
    return Prototypes([f"caption {i}" for i in range(5)], text, sound, "ab" * 32)


def test_a_trained_caption_is_searched_as_typed(table):
    vector, nearest = table.pull(table.text[2])
    assert nearest is None
    assert np.array_equal(vector, table.text[2])


def test_other_words_move_toward_the_sound_of_the_caption_nearest_in_meaning(table):
    rng = np.random.default_rng(4)
    query = unit(table.text[1] + 0.6 * unit(rng.standard_normal(16)))
    assert (table.text @ query).max() < KNOWN and int(np.argmax(table.text @ query)) == 1
    vector, nearest = table.pull(query)
    assert nearest == "caption 1"
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-6)
    assert vector @ table.sound[1] > query @ table.sound[1] + 0.1
    assert vector @ query > 0.5  # moved, not replaced


def test_a_table_round_trips_and_belongs_to_one_embedder(table, tmp_path, monkeypatch):
    path = tmp_path / "p.safetensors"
    prototypes.save(str(path), table.captions, table.text, table.sound, table.embedder_sha256)
    loaded = prototypes.load(str(path))
    assert loaded.captions == table.captions and loaded.embedder_sha256 == "ab" * 32
    np.testing.assert_allclose(loaded.text, table.text, atol=1e-6)
    for row in range(5):
        np.testing.assert_allclose(loaded.sound[row], table.sound[row], atol=1e-3)
    query = unit(table.text[3] + 0.7 * unit(np.arange(16.0)))
    np.testing.assert_allclose(loaded.pull(query)[0], table.pull(query)[0], atol=1e-3)
    assert not list(tmp_path.glob("*.tmp"))


def test_the_shipped_table_is_made_for_the_shipped_embedder():
    """Exporting new embedder weights without rebuilding the table (`make train-embed` does both)
    would silently turn the pull off: this fails instead."""
    from soundtok_cli.models.registry import find, sha256

    entry = find("soundtok-embed")
    table = prototypes.for_embedder({"name": entry.name, "weights_sha256": sha256(entry.path())})
    assert table is not None
    assert table.text.shape == (len(table.captions), 384)
    assert table.sound[len(table.captions) - 1].shape == (384,)
    assert {"explosion", "rain", "footsteps", "speech"} <= set(table.captions)
    assert prototypes.for_embedder({"name": entry.name, "weights_sha256": "00" * 32}) is None
    assert prototypes.for_embedder({"name": "test-embedder", "weights_sha256": sha256(entry.path())}) is None
