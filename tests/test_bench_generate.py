"""bench/generate.py measures what it says: repeated 1 s stretches, precision@k, and a smoke run of
its generation parts on an untrained model (a few frames)."""

import os
import sys

import numpy as np
import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:  # bench/ is part of the repository, not of the installed package
    sys.path.insert(0, REPO_ROOT)

from bench import generate as bench  # noqa: E402

SILENCE = {15, 80}
WINDOW = 75


def test_a_loop_repeats_everywhere():
    rng = np.random.default_rng(0)
    period = rng.integers(100, 1024, 300)
    tokens = bench.looped(period[:, None], 2000)[:, 0]
    r = bench.repeated_windows(tokens, WINDOW, SILENCE)
    assert r["windows"] == 2000 - WINDOW + 1 and r["silent_windows"] == 0
    assert r["repeated"] == r["windows"] and r["share"] == 1.0
    assert bench.longest_repeat(tokens, SILENCE) == 2000 - 300
    assert bench.longest_repeat(np.full(3000, 7), SILENCE) == 2999     # one token held: overlapping repeats


def test_fresh_random_tokens_never_repeat():
    tokens = np.random.default_rng(1).integers(100, 1024, 5000)
    r = bench.repeated_windows(tokens, WINDOW, SILENCE)
    assert r["repeated"] == 0 and r["share"] == 0.0 and r["windows"] == 5000 - WINDOW + 1
    assert bench.longest_repeat(tokens, SILENCE) < 5


def test_one_stretch_copied_is_found_exactly():
    tokens = np.random.default_rng(2).integers(100, 1024, 3000)
    tokens[2000:2120] = tokens[500:620]      # 120 frames occur twice, nothing else
    r = bench.repeated_windows(tokens, WINDOW, SILENCE)
    assert r["repeated"] == 2 * (120 - WINDOW + 1)
    assert bench.longest_repeat(tokens, SILENCE) == 120


def test_silence_is_left_out():
    rng = np.random.default_rng(3)
    loud = rng.integers(100, 1024, 400)
    silent = rng.choice(sorted(SILENCE), 300)
    tokens = np.concatenate([loud[:200], silent, loud[200:], silent])
    r = bench.repeated_windows(tokens, WINDOW, SILENCE)
    # windows wholly inside a silent run are not counted; the rest never repeat
    assert r["silent_windows"] == 2 * (300 - WINDOW + 1)
    assert r["repeated"] == 0 and r["windows"] == len(tokens) - WINDOW + 1 - r["silent_windows"]
    # the silent runs share long stretches of silence only, which do not count
    assert bench.longest_repeat(tokens, SILENCE) < 5
    only_silence = np.tile(np.array(sorted(SILENCE)), 500)
    assert bench.repeated_windows(only_silence, WINDOW, SILENCE)["windows"] == 0
    assert bench.longest_repeat(only_silence, SILENCE) == 0


def test_precision_at_k_leaves_the_query_out():
    relevant = np.array([True, True, False, False, True])
    scores = np.array([[9.0, 8.0, 7.0, 1.0, 0.0]])
    assert bench.precision_at_k(scores, relevant, 2)[0] == 1.0
    assert bench.precision_at_k(scores, relevant, 2, np.array([0]))[0] == 0.5   # clip 0 is the query itself
    assert bench.own_rank(np.array([[0.1, 0.5, 0.3], [0.9, 0.2, 0.1]]), np.array([2, 0])).tolist() == [2, 1]


@pytest.fixture(scope="module")
def looping_generator():
    """An untrained model pushed to pick coarse token 7 every frame: a loop unless the rule stops it."""
    import torch

    from soundtok_cli.generate.model import LMConfig, TokenLM
    from soundtok_cli.generate.sampler import TokenGenerator
    from soundtok_cli.models.registry import load_codec

    torch.manual_seed(0)
    model = TokenLM(LMConfig(dim=64, layers=1))
    with torch.no_grad():
        model.heads[0][-1].bias[7] = 30.0
    codec = load_codec(device="cpu")
    identity = {"name": "soundtok-generate", "version": "1", "weights_sha256": "untrained", "codec": codec.describe(4)}
    return TokenGenerator(model, identity, sorted(SILENCE)), codec


def test_repetition_part_rule_on_off_and_loop(looping_generator):
    generator, _ = looping_generator
    rng = np.random.default_rng(4)
    library = (["lincity-ng-data", "synth:rain", "openarena-data"], [{"water"}, {"water"}, {"water"}],
               [rng.integers(100, 1024, (n, 8)).astype(np.uint16) for n in (150, 400, 100)], [2.0, 5.3, 1.3])
    vector = rng.standard_normal((1, 384)).astype(np.float32)
    out = bench.bench_repetition(generator, {"rain": "water"}, vector / np.linalg.norm(vector), library,
                                 minutes=600 / 75 / 60, seed=0, log=lambda _: None)
    entry = out["prompts"]["rain"]
    assert entry["rule on"]["repeated"] == 0 and entry["rule on"]["longest_repeat_frames"] < WINDOW
    assert out["rule on"]["interventions"] > 0
    assert entry["rule off"]["share"] == 1.0 and out["rule off"]["interventions"] == 0
    # the loop: the real (not procedural) clips of the class, longest first, repeated
    assert entry["loop"]["material_clips"] == 2 and entry["loop"]["material_seconds"] == 250 / 75
    assert entry["loop"]["share"] == 1.0 and entry["loop"]["longest_repeat_frames"] == 600 - 250


def test_fidelity_and_speed_parts_run(looping_generator):
    from soundtok_cli.models.registry import load_embedder

    generator, codec = looping_generator
    rng = np.random.default_rng(5)
    labels = [{"rain"}, {"rain"}, {"wind"}, set(), {"wind"}]
    codes = [rng.integers(0, 1024, (int(n), 8)).astype(np.uint16) for n in rng.integers(60, 300, len(labels))]
    library = ([f"clip{i}" for i in range(len(labels))], labels, codes, [len(c) / 75 for c in codes])
    embedder = load_embedder(device="cpu")
    embedded = bench.embed_library(embedder, codec.describe(8), library)
    vectors = rng.standard_normal((2, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    out = bench.bench_fidelity(generator, embedder, embedded, library, ["rain", "wind"], vectors,
                               samples=2, seconds=1.0, seed=0, log=lambda _: None, codec=codec)
    level = out["level"]   # the looping generator's tokens decoded: real audio, some level below full scale
    assert -120 < level["rms_dbfs_p10"] <= level["rms_dbfs_median"] <= level["rms_dbfs_p90"] < level["peak_dbfs_max"]
    assert out["classes"]["rain"]["random"] == 0.4 and out["classes"]["wind"]["library_clips"] == 2
    for entry in out["classes"].values():   # k = 10 > 5 clips: every query sees the whole library
        assert entry["precision_generated_segment"] == pytest.approx(entry["library_clips"] / 10)
        assert entry["precision_real_segment"] == pytest.approx((entry["library_clips"] - 1) / 10)
    speed = bench.bench_speed(generator, codec, vectors[0], seconds=0.2, repeats=1, rows_list=(1, 2),
                              log=lambda _: None)
    assert [(c["rows"], c["guidance"]) for c in speed["cases"]] == [(1, bench.GUIDANCE), (1, 1.0), (2, bench.GUIDANCE), (2, 1.0)]
    assert speed["end_to_end"]["samples"] >= 0.2 * 48000
    assert "speed: x real time" in bench.format_report({
        "model": generator.identity, "device": "cpu", "threads": 1, "speed": speed,
        "environment": {"processor": "test", "cuda_available": False}})


def test_shot_figures_find_the_lead_in_and_an_abrupt_end():
    rng = np.random.default_rng(2)
    x = 1e-4 * rng.standard_normal(48000)
    x[14400:] += 0.3 * rng.standard_normal(48000 - 14400)       # the sound arrives at 0.3 s and goes on to the end
    figures = bench.shot_figures(x, 48000)
    assert figures["lead_in_s"] == pytest.approx(0.3, abs=0.011)
    assert figures["first_db"] < -60 and figures["last_db"] > -3
