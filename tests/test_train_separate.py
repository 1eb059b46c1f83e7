"""The separation trainer's loss: SI-SDR where the target is audible, a level-independent spectral
distance everywhere (also where the target is silence: a query for something absent)."""

import numpy as np
import pytest
import torch

from soundtok_cli.separate.model import SeparatorNet, apply, stft
from soundtok_cli.train.separate import separation_loss, si_sdr
from soundtok_cli.train.colour import proximity_boost, random_colour
from soundtok_cli.train.separate_data import SAMPLE_RATE, pitch_shifted


def test_si_sdr_ignores_scale_and_sees_noise():
    g = torch.Generator().manual_seed(0)
    target = torch.randn(2, 4800, generator=g)
    assert torch.all(si_sdr(0.3 * target, target) > 60)
    noisy = target + 0.1 * torch.randn(2, 4800, generator=g)
    assert torch.allclose(si_sdr(noisy, target), torch.full((2,), 20.0), atol=0.5)


def test_loss_rewards_the_target_and_handles_silent_targets():
    g = torch.Generator().manual_seed(1)
    target = torch.randn(3, 9600, generator=g) * torch.tensor([[1.0], [0.01], [0.0]])   # the last is silence
    other = torch.randn(3, 9600, generator=g)
    mixture = target + other
    perfect, perfect_sdr = separation_loss(target, target, stft(target), stft(target), stft(mixture))
    passthrough, through_sdr = separation_loss(mixture, target, stft(mixture), stft(target), stft(mixture))
    assert torch.isfinite(perfect) and torch.isfinite(passthrough)
    assert perfect < passthrough and perfect_sdr > through_sdr
    assert through_sdr < 0    # averaged over the two audible rows only: 0 dB and -40 dB


def test_untrained_model_runs_and_learns_a_step():
    torch.manual_seed(0)
    model = SeparatorNet()
    mixture, target = torch.randn(2, 24000) * 0.1, torch.randn(2, 24000) * 0.05
    query = torch.nn.functional.normalize(torch.randn(2, 384), dim=-1)
    estimate, estimate_spec, spec = apply(model, mixture, query)
    mask = model(spec.abs(), query).detach()
    assert estimate.shape == mixture.shape and float(mask.min()) >= 0 and float(mask.max()) <= 1
    loss, _ = separation_loss(estimate, target, estimate_spec, stft(target), spec)
    loss.backward()
    assert all(p.grad is not None for p in model.film.parameters())   # the query reaches the loss


def _peak_hz(x: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / SAMPLE_RATE)[np.argmax(spectrum)])


def test_pitch_shift_moves_every_frequency_by_the_ratio_and_keeps_the_length():
    n, ratio = SAMPLE_RATE, 2 ** (3 / 12)
    t = np.arange(int(round(n * ratio))) / SAMPLE_RATE
    shifted = pitch_shifted(np.sin(2 * np.pi * 200 * t).astype(np.float32), n, ratio)
    assert shifted.shape == (n,) and shifted.dtype == np.float32
    assert abs(_peak_hz(shifted) - 200 * ratio) < 2


def test_colour_changes_the_balance_not_the_length():
    rng = np.random.default_rng(0)
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    x = (np.sin(2 * np.pi * 100 * t) + np.sin(2 * np.pi * 10000 * t)).astype(np.float32)
    ratios = []
    for _ in range(20):
        y = random_colour(x, rng)
        assert y.shape == x.shape and y.dtype == np.float32 and np.isfinite(y).all()
        spectrum = np.abs(np.fft.rfft(y))
        ratios.append(20 * np.log10(spectrum[10000] / spectrum[100]))  # 1 Hz bins
    assert max(ratios) - min(ratios) > 10  # the low/high balance varies from draw to draw


def test_a_close_microphone_lifts_a_voices_fundamental_and_leaves_its_formants():
    rng = np.random.default_rng(1)
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    x = (np.sin(2 * np.pi * 60 * t) + np.sin(2 * np.pi * 120 * t) + np.sin(2 * np.pi * 2000 * t)).astype(np.float32)
    before = np.abs(np.fft.rfft(x))
    lifts = []
    for _ in range(20):
        y = proximity_boost(x, rng)
        assert y.shape == x.shape and y.dtype == np.float32
        after = np.abs(np.fft.rfft(y))  # 1 Hz bins
        lift = 20 * np.log10(after[[60, 120, 2000]] / before[[60, 120, 2000]])
        assert 3.0 < lift[0] <= 18.0 and lift[1] < lift[0] and abs(lift[2]) < 0.2, lift
        lifts.append(lift[0])
    assert max(lifts) - min(lifts) > 4  # the amount varies from draw to draw


class _CountingSampler:
    """Stands in for MixtureSampler: each batch is filled with its generator's next draw."""

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)

    def reseeded(self, seed: int) -> "_CountingSampler":
        return _CountingSampler(seed)

    def batch(self, size: int, n: int):
        value = np.float32(self.rng.random())
        return np.full((size, n), value, np.float32), np.zeros((size, n), np.float32), np.ones((size, 384), np.float32)


def test_mixtures_come_from_worker_processes_each_with_its_own_draws():
    from soundtok_cli.train.separate import batches

    stream = batches(_CountingSampler(), 3, 10, workers=2, seed=5)
    made = [next(stream) for _ in range(4)]
    assert all(m.shape == (3, 10) and t.shape == (3, 10) and q.shape == (3, 384) for m, t, q in made)
    firsts = [float(m[0, 0]) for m, _, _ in made]
    assert len(set(firsts)) == 4   # two workers, two generators: no batch repeats another
    again = batches(_CountingSampler(), 3, 10, workers=2, seed=5)
    assert [float(next(again)[0][0, 0]) for _ in range(4)] == firsts   # the seed fixes the stream
    here = batches(_CountingSampler(7), 2, 5, workers=0, seed=5)
    assert next(here)[0].shape == (2, 5)


def test_training_can_start_from_the_shipped_weights():
    from safetensors.torch import load_file

    from soundtok_cli.models.registry import find
    from soundtok_cli.separate.model import SeparatorConfig
    from soundtok_cli.train.warm_start import initial_weights

    path = find("soundtok-separate").path()
    model = SeparatorNet(SeparatorConfig())
    initial_weights(model, path)
    shipped = load_file(path)
    for name, value in model.state_dict().items():
        assert torch.equal(value, shipped[name].float()), name


def test_training_keeps_its_share_of_close_microphone_voices_when_resumed(tmp_path, capsys):
    from soundtok_cli.train.separate import main
    from test_separate_subband import tiny_corpus

    corpus = tiny_corpus(tmp_path / "corpus")
    common = ["train", "--corpus", corpus, "--checkpoints", str(tmp_path / "ck"), "--batch", "2", "--seconds", "0.5",
              "--threads", "1"]
    main([*common, "--steps", "1", "--proximity", "0.5"])
    assert torch.load(tmp_path / "ck" / "latest.pt", weights_only=True)["proximity"] == 0.5
    main([*common, "--steps", "2"])  # resumed: the checkpoint's share, not the option's default of none
    assert "resumed at step 1" in capsys.readouterr().out
    last = torch.load(tmp_path / "ck" / "latest.pt", weights_only=True)
    assert last["step"] == 2 and last["proximity"] == 0.5


def test_a_fine_tuned_network_travels_as_the_voice_network(tmp_path):
    from safetensors.torch import load_file

    from soundtok_cli.models.registry import find, load_separator
    from soundtok_cli.train.separate import main
    from test_separate_subband import tiny_corpus

    shipped = find("soundtok-separate").path()
    corpus = tiny_corpus(tmp_path / "corpus")
    main(["train", "--corpus", corpus, "--checkpoints", str(tmp_path / "ck"), "--batch", "2", "--seconds", "0.5",
          "--threads", "1", "--steps", "1", "--init", shipped])
    out = str(tmp_path / "with-voice.safetensors")
    main(["export-voice", "--checkpoints", str(tmp_path / "ck"), "--separator", shipped, "--out", out])
    trained = torch.load(tmp_path / "ck" / "latest.pt", weights_only=True)["model"]
    written, before = load_file(out), load_file(shipped)
    for name, value in trained.items():
        assert torch.equal(written[f"voice.{name}"], value.half()), name
        assert torch.equal(written[name], before[name]), name  # the general network is left as it was
    assert load_separator(device="cpu", path=out).voice_net is not None


def test_voice_queries_take_the_voice_network_and_others_the_general_one():
    from soundtok_cli.separate.model import SeparatorConfig
    from soundtok_cli.separate.neural import Query, QuerySeparator

    torch.manual_seed(0)
    general, voice_net = SeparatorNet(SeparatorConfig()), SeparatorNet(SeparatorConfig())
    vectors = np.eye(4, 384, dtype=np.float32)
    separator = QuerySeparator(general, vectors, ["a", "b", "c", "d"], {}, voice_net=voice_net)
    alone = QuerySeparator(general, vectors, ["a", "b", "c", "d"], {})  # the same general network, no voice network
    voice, other = (Query("q", vectors[0], 1.0, [], speech=flag) for flag in (True, False))
    magnitude = np.abs(np.random.default_rng(2).standard_normal((40, 513))).astype(np.float32)
    masks = separator.masks(magnitude, [voice, other, voice])
    np.testing.assert_array_equal(masks[0], masks[2])
    np.testing.assert_array_equal(masks[1], separator._net_masks(separator.net, magnitude, [other])[0])
    np.testing.assert_array_equal(masks[0], separator._net_masks(separator.voice_net, magnitude, [voice])[0])
    assert np.abs(masks[0] - masks[1]).max() > 0.01
    # a file without a voice network: every query takes the general one
    np.testing.assert_array_equal(alone.masks(magnitude, [voice])[0], masks[1])


def test_procedural_sounds_laid_over_a_bed_are_left_out_of_the_mixtures(tmp_path):
    from soundtok_cli.train.separate_data import MixtureSampler
    from test_separate_subband import tiny_corpus

    corpus = tmp_path / "corpus"
    tiny_corpus(corpus)
    index = corpus / "train" / "index.tsv"
    rows = index.read_text().splitlines()
    n = 4 * 48000  # re-caption the three non-speech clips as procedural sounds, one laid over a bed
    captions = ["a bell tone with crackling fire in the background", "an explosion with debris falling", "pink noise"]
    rows[3:6] = [f"shard-0000.npy\t{i * n}\t{n}\tsynth\tsynth:{i}\t{c}" for i, c in zip(range(2, 5), captions)]
    index.write_text("\n".join(rows) + "\n")
    sampler = MixtureSampler(str(corpus), str(tmp_path / "cache"))
    kept = [c.caption for c in sampler.clips]
    assert "a bell tone with crackling fire in the background" not in kept
    assert {"an explosion with debris falling", "pink noise", "a male voice speaking"} <= set(kept)
    assert all(sampler.clips[i].caption != captions[0] for i in sampler.other)
    mixture, target, query = sampler.batch(4, 4800)
    assert mixture.shape == target.shape == (4, 4800) and query.shape == (4, 384)


def test_pairs_sets_the_share_of_sound_pair_examples(tmp_path):
    from soundtok_cli.train.separate_data import P_PAIR, P_SPEECH, MixtureSampler
    from test_separate_subband import tiny_corpus

    corpus = tiny_corpus(tmp_path / "corpus")
    speech_examples = {}
    for pairs in (0.0, P_PAIR, P_SPEECH + P_PAIR):
        sampler = MixtureSampler(corpus, str(tmp_path / "cache"), seed=4, pairs=pairs)
        calls = []
        close_microphone = sampler.close_microphone  # only speech examples hear a voice through it
        sampler.close_microphone = lambda x: calls.append(1) or close_microphone(x)
        for _ in range(200):
            sampler.example(4800)
        speech_examples[pairs] = len(calls) / 200
    assert speech_examples[P_SPEECH + P_PAIR] == 0.0                       # every example a pair (or an absent sound)
    assert abs(speech_examples[P_PAIR] - P_SPEECH) < 0.08                  # the default recipe
    assert abs(speech_examples[0.0] - (P_SPEECH + P_PAIR)) < 0.08          # no pairs at all
    with pytest.raises(ValueError):
        MixtureSampler(corpus, str(tmp_path / "cache"), pairs=P_SPEECH + P_PAIR + 0.01)
