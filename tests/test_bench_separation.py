"""bench/separation.py measures what it says: mixtures at an exact SNR, the SI-SDR improvement
arithmetic, the crowd builder, and a smoke run of its speech and effects loops on procedural
stand-ins for the held-out corpus with stand-in extractors (no model, no corpus)."""

import os
import sys

import numpy as np
import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:  # bench/ is part of the repository, not of the installed package
    sys.path.insert(0, REPO_ROOT)

from bench import separation as bench  # noqa: E402
from soundtok_cli.data import synth  # noqa: E402
from soundtok_cli.errors import UsageError  # noqa: E402

SR = bench.SR


def _voice(rng, seconds, f0):
    """A speech-like stand-in: a few harmonic 'syllables' with pauses."""
    n = int(seconds * SR)
    t = np.arange(n) / SR
    pitch = f0 * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(1, 3) * t))
    phase = 2 * np.pi * np.cumsum(pitch) / SR
    tone = sum(np.sin(k * phase) / k for k in range(1, 6))
    envelope = np.clip(np.sin(2 * np.pi * rng.uniform(2, 4) * t + rng.uniform(0, 6)), 0, None)
    return tone * envelope * 0.3


@pytest.mark.parametrize("snr", [-5.0, 0.0, 5.0, 12.5])
def test_mixing_hits_the_snr_exactly(snr):
    rng = np.random.default_rng(0)
    target, noise = _voice(rng, 1.0, 150), rng.standard_normal(SR) * 3.0
    mix = bench.mix_at_snr(target, noise, snr)
    rest = mix - target
    assert 10 * np.log10(np.sum(target**2) / np.sum(rest**2)) == pytest.approx(snr, abs=1e-9)
    np.testing.assert_allclose(rest / np.dot(rest, noise) * np.dot(noise, noise), noise, atol=1e-9)  # only scaled
    t, m = bench.level(target, mix)
    assert np.abs(m).max() == pytest.approx(bench.PEAK)
    assert np.dot(t, t) / np.dot(m - t, m - t) == pytest.approx(10 ** (snr / 10))  # levelling keeps the SNR


def test_si_sdr_improvement_arithmetic():
    rng = np.random.default_rng(1)
    clean = rng.standard_normal(SR)
    clean -= clean.mean()
    noise = rng.standard_normal(SR)
    noise -= noise.mean()
    noise -= np.dot(noise, clean) / np.dot(clean, clean) * clean     # orthogonal to the clean signal
    mix = bench.mix_at_snr(clean, noise, 0.0)
    # noise orthogonal to the (zero-mean) clean signal: SI-SDR of the mixture is the SNR, 0 dB
    assert bench.si_sdr(clean, mix) == pytest.approx(0.0, abs=0.02)
    assert bench.si_sdr_improvement(clean, mix, mix) == 0.0                    # the mixture itself: no improvement
    perfect = bench.si_sdr_improvement(clean, clean, mix)
    assert perfect == bench.si_sdr(clean, clean) - bench.si_sdr(clean, mix) and perfect > 100  # the 1e-12 floor
    better = clean + 10 ** (-10 / 20) * noise                                 # the noise 10 dB down: +10 dB
    assert bench.si_sdr_improvement(clean, better, mix) == pytest.approx(10.0, abs=0.05)
    assert bench.si_sdr_improvement(clean, -0.3 * better, mix) == pytest.approx(10.0, abs=0.05)  # any gain


def test_babble_is_a_crowd_of_distinct_voices():
    rng = np.random.default_rng(2)
    talkers = [[_voice(rng, rng.uniform(0.4, 1.2), f0) for _ in range(4)] for f0 in (110, 140, 180, 210, 250, 95, 300)]
    n = 3 * SR
    a = bench.babble(talkers, n, np.random.default_rng(5))
    b = bench.babble(talkers, n, np.random.default_rng(5))
    assert a.shape == (n,) and np.array_equal(a, b)                  # deterministic for a seed
    assert bench.rms(a) == pytest.approx(1.0)
    # a crowd leaves no gap: every 100 ms holds speech (one talker alone has pauses)
    frames = a[: n // 4800 * 4800].reshape(-1, 4800)
    assert (np.sqrt((frames**2).mean(1)) > 0.2).all()
    one = bench.babble(talkers[:1] * 6, n, np.random.default_rng(5), room=False)
    assert one.shape == (n,)
    with pytest.raises(ValueError):
        bench.babble(talkers[:5], n, rng)


def test_trim_and_sequence():
    x = np.concatenate([np.zeros(100), np.ones(50), np.zeros(30)])
    assert len(bench.trim(x)) == 50
    assert len(bench.trim((x * 1000).astype(np.int16))) == 50
    rng = np.random.default_rng(3)
    clips = [np.full(SR // 2, v) for v in (0.1, 0.2, 0.3)]
    y = bench.clip_sequence(clips, 2 * SR, rng)
    assert y.shape == (2 * SR,) and (y > 0.05).all()                  # cross-faded, never a hole


def _pools(rng):
    voices = {f"v{i}": [_voice(rng, rng.uniform(0.4, 1.0), 100 + 30 * i) for _ in range(5)] for i in range(8)}
    utter = [(f"v{i}", _voice(rng, 2.0, 120 + 20 * i)) for i in range(3)]
    engine = [synth.engine(rng, SR, 1.0)[0] for _ in range(2)]
    city = [synth.footsteps(rng, SR, 1.0)[0], synth.door_knock(rng, SR, 1.0)[0]]
    music = [synth.chord(rng, SR, 3.0)[0]]
    return bench.SpeechPools(utter, voices, engine, city, music)


def test_speech_loop_with_stand_in_extractors():
    pools = _pools(np.random.default_rng(4))
    mixtures = bench.speech_mixtures(pools, 1, seed=7)
    assert [m.label for m in mixtures] == [b for b in bench.BACKGROUNDS for _ in bench.SNRS]
    again = bench.speech_mixtures(pools, 1, seed=7)
    assert all(np.array_equal(m.mixture, n.mixture) for m, n in zip(mixtures, again))
    other = bench.speech_mixtures(pools, 1, seed=8)  # --seed: another draw of backgrounds from the same pools
    assert not np.array_equal(other[0].mixture, mixtures[0].mixture)
    for m in mixtures:
        rest = m.mixture - m.target
        assert 10 * np.log10(np.sum(m.target**2) / np.sum(rest**2)) == pytest.approx(m.snr_db, abs=1e-6)
    lookup = {id(m.mixture): m.target for m in mixtures}
    systems = {"oracle": lambda mix, query: lookup[id(mix)], "identity": lambda mix, query: mix}
    records, seconds = bench.run_speech(mixtures, systems)
    assert set(seconds) == {"oracle", "identity"}
    assert all(r["improvement"]["identity"] == 0.0 and r["improvement"]["oracle"] > 50 for r in records)
    summary = bench.summarise_speech(records, ["oracle", "identity"])
    assert len(summary["rows"]) == len(bench.BACKGROUNDS) * len(bench.SNRS)
    groups = {(a["group"], a["snr_db"]) for a in summary["averages"]}
    assert ("non-stationary", None) in groups and ("all backgrounds", 0.0) in groups
    # the verdict compares soundtok with DeepFilterNet3 when both ran
    summary = bench.summarise_speech([r | {"improvement": {"soundtok": r["improvement"]["identity"],
                                                         "DeepFilterNet3": r["improvement"]["oracle"]}}
                                      for r in records], ["soundtok", "DeepFilterNet3"])
    assert summary["verdict"]["must_within_1db"]["met"] is False
    assert summary["verdict"]["goal_better_non_stationary"]["met"] is False


def test_effects_loop_with_stand_in_extractors():
    sources = bench.effect_sources(None)[:4]                    # rain, surf, thunder, wind: procedural only

    def ground(queries):
        if queries == ["ocean waves"]:
            raise UsageError("cannot ground it")
        return queries

    kept, refused = bench.grounded(sources, ground)
    assert [s.label for s in kept] == ["rain", "thunder", "wind"] and list(refused) == ["ocean waves"]
    mixtures = bench.effect_mixtures(kept, 1, seed=3)
    assert len(mixtures) == 3
    groups = {s.query: s.group for s in kept}
    assert all(groups[m.query] != groups[m.wrong_query] for m in mixtures)   # never two of one kind
    lookup = {id(m.mixture): m for m in mixtures}

    def oracle(mix, query):  # the right description gives the target, any other the rest
        m = lookup[id(mix)]
        return m.target if query == m.query else mix - m.target

    def first_stem(mix, queries):  # stems naming the target first: its stem
        return oracle(mix, queries[0])

    records, _ = bench.run_effects(mixtures, oracle, stems=first_stem)
    assert all(r["improvement"] > 50 and r["wrong_query_improvement"] < -10 for r in records)
    assert all(r["stems_improvement"] > 50 for r in records)
    assert bench.summarise_effects(records)["averages"]["all"]["stems_improvement"] > 50
    assert "both named" in bench.format_report(
        {"model": {"name": "m", "version": "1", "weights_sha256": "0" * 12}, "threads": 1,
         "environment": {"processor": "cpu"},
         "effects": {"summary": bench.summarise_effects(records), "refused": {}, "skipped_mixtures": 0}})
    records, _ = bench.run_effects(mixtures, lambda mix, query: mix)
    assert all(r["improvement"] == 0.0 == r["wrong_query_improvement"] and "stems_improvement" not in r
               for r in records)
    summary = bench.summarise_effects(records)
    assert [r["target"] for r in summary["rows"]] == ["rain", "thunder", "wind"]
    assert summary["averages"]["all"]["improvement"] == 0.0 and not summary["verdict"]["must_4db"]


def test_a_mask_of_ones_gives_back_the_mixture_and_a_half_mask_half_of_it():
    from bench.separation import through_masks

    rng = np.random.default_rng(4)
    mix = rng.standard_normal(SR // 2) * 0.1
    out = through_masks(mix, lambda magnitude: {"all": np.ones_like(magnitude), "half": np.full_like(magnitude, 0.5),
                                                "none": np.zeros_like(magnitude)})
    assert set(out) == {"all", "half", "none"} and all(len(x) == len(mix) for x in out.values())
    assert np.max(np.abs(out["all"] - mix)) < 1e-5
    assert np.max(np.abs(out["half"] - 0.5 * mix)) < 1e-5 and np.max(np.abs(out["none"])) == 0


def test_the_trained_part_reads_training_split_effects_by_caption(tmp_path):
    """Captions with at least TRAINED_MIN_CLIPS long clips, no voices, no procedural sounds; the
    interferer's caption far enough from the target's; silent crops drawn again."""
    from types import SimpleNamespace

    n = int(bench.EFFECT_MIN_SECONDS * SR) + SR
    rng = np.random.default_rng(7)
    clips = ([("sfx", "rain")] * 3 + [("sfx", "wind")] * 3 + [("sfx", "engine")] * 3 + [("sfx", "dog")] * 2
             + [("speech", "a voice")] * 3 + [("synth", "bell")] * 3 + [("sfx", "a man talking")] * 3)
    audio = []
    for i, _ in enumerate(clips):
        x = rng.standard_normal(n) * 0.1
        if i == 0:
            x[: n - SR // 2] = 0.0  # a clip that is silent but for its last half second
        audio.append(np.int16(x * 32767))
    split = tmp_path / "train"
    split.mkdir()
    np.save(split / "shard-0000.npy", np.concatenate(audio))
    rows = ["shard\toffset\tlength\tkind\tsource\tcaption"]
    rows += [f"shard-0000.npy\t{i * n}\t{n}\t{kind}\ttest:{i}\t{caption}" for i, (kind, caption) in enumerate(clips)]
    (split / "index.tsv").write_text("\n".join(rows) + "\n")
    axes = {"rain": 0, "wind": 1, "engine": 0, "a man talking": 2}  # rain and engine: the same direction, too close

    def ground(texts):
        return [SimpleNamespace(vector=np.eye(3)[axes[t]], speech=t == "a man talking") for t in texts]

    sources, vectors = bench.trained_sources(str(tmp_path), ground)
    assert [s.query for s in sources] == ["engine", "rain", "wind"] and all(s.clips == 3 for s in sources)
    assert all(s.origin == "train" and s.group == s.query for s in sources)
    mixtures = bench.effect_mixtures(sources, 4, seed=1,
                                     apart=lambda a, b: float(vectors[a.query] @ vectors[b.query]) < bench.DIFFERENT_CAPTIONS)
    assert len(mixtures) == 12
    assert {(m.query, m.wrong_query) for m in mixtures} <= {("rain", "wind"), ("engine", "wind"), ("wind", "rain"),
                                                            ("wind", "engine")}
    rain = sources[1]
    for seed in range(20):  # a crop of the silent stretch is drawn again
        assert bench.rms(rain.make(np.random.default_rng(seed), SR)) > bench.AUDIBLE_RMS
