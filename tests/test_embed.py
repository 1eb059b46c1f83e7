"""soundtok embed: tokens in, an embeddings store out, with the shipped audio tower."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import soundfile as sf
import zarr
from zarr.storage import ZipStore

from factories import codec_attrs, token_batch
from soundtok_cli.data import synth
from soundtok_cli.embed import audio as embed_audio
from soundtok_cli.embed.query import like_vector
from soundtok_cli.errors import InputError, UsageError
from soundtok_cli.io.sink import open_sink
from soundtok_cli.io.store import Batch
from soundtok_cli.io.stream import read_batches
from soundtok_cli.models.registry import load_codec, load_embedder

CLI = [sys.executable, "-m", "soundtok_cli.app"]
ENV = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")


@pytest.fixture(scope="module")
def codec():
    return load_codec(device="cpu")


@pytest.fixture(scope="module")
def embedder():
    return load_embedder(device="cpu")


def encode(codec, x: np.ndarray, levels: int = 8) -> np.ndarray:
    encoder = codec.encoder(48000, levels)
    return np.concatenate([encoder.push(x.astype(np.float32)), encoder.finish()])


def tokens_of(codec, sounds: dict[str, np.ndarray], levels: int = 8) -> Batch:
    names = list(sounds)
    return Batch.tokens(codec.describe(levels), "test", source=names, channel=[0] * len(names),
                        sample_rate=[48000] * len(names),
                        duration=[len(sounds[n]) / 48000 for n in names],
                        content_hash=[f"h{i}" for i in range(len(names))],
                        codes=[encode(codec, sounds[n], levels) for n in names])


@pytest.fixture(scope="module")
def sounds():
    rng = np.random.default_rng(7)
    return {
        "rain.wav": synth.rain(rng, 48000, 5.5)[0],
        "bell.wav": synth.bell(rng, 48000, 0.7)[0],
        "birds.wav": synth.birdsong(rng, 48000, 3.0)[0],
    }


@pytest.fixture(scope="module")
def tokens(codec, sounds):
    return tokens_of(codec, sounds)


def test_windows_cover_every_item_and_vectors_are_unit_length(embedder, tokens):
    out = embedder.embed_batch(tokens, window=2.0, hop=1.0)
    assert out.kind == "embeddings" and len(out) == 3
    for i, duration in enumerate(tokens.items["duration"]):
        times = out.item_array(i, "segments/start"), out.item_array(i, "segments/end")
        assert times[0][0] == 0 and times[1][-1] == pytest.approx(duration, abs=1 / 15)
        assert np.all(np.diff(times[0]) > 0) and np.all(times[1] > times[0])
        assert np.all(np.diff(times[0]) <= 1.0 + 1e-9)  # no gap between window starts beyond the hop
    # 5.5 s at a 2 s window and 1 s hop: starts 0,1,2,3 and a last window ending at 5.5 s
    assert len(out.item_array(0, "embeddings")) == 5
    assert len(out.item_array(1, "embeddings")) == 1  # shorter than a window: one segment
    norms = np.linalg.norm(out.arrays["embeddings"], axis=1)
    assert np.allclose(norms, 1, atol=1e-5)
    assert np.allclose(np.linalg.norm(out.items["embedding"], axis=1), 1, atol=1e-5)
    assert out.attrs["embedder"]["text"]["name"] == "all-MiniLM-L6-v2"
    assert out.attrs["embedder"]["codec"]["weights_sha256"] == tokens.codec["weights_sha256"]


def test_longer_windows_give_fewer_segments(embedder, tokens):
    short = embedder.embed_batch(tokens.select([0]), window=1.0, hop=0.5)
    long = embedder.embed_batch(tokens.select([0]), window=4.0, hop=2.0)
    assert len(short.arrays["embeddings"]) > len(long.arrays["embeddings"]) >= 2


def test_chunked_features_equal_one_pass(embedder, codec, monkeypatch):
    rng = np.random.default_rng(3)
    x = synth.random_sound(rng, 48000, 12.0)[0]
    codes = encode(codec, x)
    whole = embedder.features(codes)
    monkeypatch.setattr(embed_audio, "CHUNK_FRAMES", 200)
    chunked = embedder.features(codes)
    assert chunked.shape == whole.shape
    assert np.allclose(chunked.numpy(), whole.numpy(), atol=1e-4)


def test_fewer_levels_embed_near_the_full_tokens(embedder, codec, sounds):
    full = embedder.embed_batch(tokens_of(codec, sounds, 8), 2.0, 1.0).items["embedding"]
    coarse = embedder.embed_batch(tokens_of(codec, sounds, 2), 2.0, 1.0).items["embedding"]
    same = np.sum(full * coarse, axis=1)
    others = full @ coarse.T
    assert np.all(same > 0.6)
    # each item's 2-level vector is nearest to its own 8-level vector
    assert np.array_equal(others.argmax(0), np.arange(len(sounds)))


def test_tokens_of_another_codec_are_refused_naming_both(embedder):
    batch = token_batch(2, 0, codec_attrs(), source=str, channel=lambda i: 0, sample_rate=lambda i: 48000,
                        content_hash=str, min_len=10, max_len=20)
    with pytest.raises(InputError) as error:
        embedder.embed_batch(batch, 2.0, 1.0, subject="x.zarr")
    text = str(error.value)
    assert "test-codec" in text and "soundtok-codec" in text and "re-encode" in text


def test_a_window_below_one_feature_frame_is_a_usage_error(embedder):
    with pytest.raises(UsageError):
        embedder.window_frames(0.01, 1.0)


def test_like_vector_agrees_for_audio_tokens_and_embeddings(tmp_path, embedder, tokens, sounds):
    wav = tmp_path / "bell.wav"
    sf.write(wav, sounds["bell.wav"], 48000, subtype="FLOAT")
    store = tmp_path / "bell.zarr.zip"
    with open_sink(str(store)) as sink:
        sink.write(tokens.select([1]))
    emb = tmp_path / "bell.emb.zarr"
    with open_sink(str(emb), "embeddings store") as sink:
        sink.write(embedder.embed_batch(tokens.select([1]), 2.0, 1.0))
    from_audio, attrs = like_vector(str(wav), "cpu")
    from_tokens, _ = like_vector(str(store), "cpu")
    from_embeddings, _ = like_vector(str(emb), "cpu")
    assert attrs["name"] == "soundtok-embed"
    assert float(from_audio @ from_tokens) > 0.99
    assert float(from_tokens @ from_embeddings) > 0.999
    with pytest.raises(InputError, match="no such file"):
        like_vector(str(tmp_path / "missing.wav"))
    (tmp_path / "notes.txt").write_text("not audio")
    with pytest.raises(InputError):
        like_vector(str(tmp_path / "notes.txt"))


def run(args, stdin=None, cwd=None):
    return subprocess.run(args, input=stdin, capture_output=True, env=ENV, cwd=cwd, timeout=300)


def test_cli_pipeline_encode_embed_writes_a_store_other_clients_open(tmp_path, sounds):
    for name, x in sounds.items():
        sf.write(tmp_path / name, x, 48000)
    out = tmp_path / "lib.emb.zarr.zip"
    encode_run = run(CLI + ["encode", "-q", str(tmp_path / "rain.wav"), str(tmp_path / "bell.wav")])
    assert encode_run.returncode == 0, encode_run.stderr
    embed_run = run(CLI + ["embed", "-o", str(out), "--window", "1", "--hop", "1"], stdin=encode_run.stdout)
    assert embed_run.returncode == 0, embed_run.stderr
    group = zarr.open_group(ZipStore(str(out), mode="r"), mode="r")
    attrs = group.attrs["soundtok"]
    assert attrs["kind"] == "embeddings" and attrs["embedder"]["window"] == 1.0
    vectors = group["embeddings"][:]
    assert vectors.shape[1] == 384 and group["segments/item"].shape == (len(vectors),)
    assert group["items/embedding"].shape == (2, 384)
    assert sorted(os.path.basename(s) for s in group["items/source"][:]) == ["bell.wav", "rain.wav"]
    assert zipfile.ZipFile(out).testzip() is None


def test_cli_refuses_what_is_not_tokens_and_keeps_going(tmp_path, embedder, tokens):
    good = tmp_path / "good.zarr.zip"
    with open_sink(str(good)) as sink:
        sink.write(tokens.select([1]))
    emb = tmp_path / "already.emb.zarr.zip"
    with open_sink(str(emb), "embeddings store") as sink:
        sink.write(embedder.embed_batch(tokens.select([1]), 2.0, 1.0))
    out = tmp_path / "out.emb.zarr.zip"
    result = run(CLI + ["embed", str(emb), str(tmp_path / "missing.zarr.zip"), str(good), "-o", str(out)])
    stderr = result.stderr.decode()
    assert result.returncode == 1, stderr
    assert "Traceback" not in stderr
    assert any("already.emb.zarr.zip" in line and "expected tokens" in line for line in stderr.splitlines())
    assert any("missing.zarr.zip" in line for line in stderr.splitlines())
    assert len(list(read_batches(str(out), expect_kind="embeddings"))[0]) == 1
    nothing = run(CLI + ["embed", str(emb), "-o", str(tmp_path / "none.zarr.zip")])
    assert nothing.returncode == 2 and not (tmp_path / "none.zarr.zip").exists()
