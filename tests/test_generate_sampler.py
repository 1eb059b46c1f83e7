"""The token sampler: seeded, streamed in chunks, primed, and never repeating a 1 s coarse stretch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from soundtok_cli.generate.model import LMConfig, TokenLM, lm_loss
from soundtok_cli.generate.norepeat import NoRepeat
from soundtok_cli.generate.sampler import TokenGenerator

SILENCE = {7}


def repeated_windows(tokens: np.ndarray, window: int, silence: set[int]) -> int:
    seen, repeats = set(), 0
    for i in range(len(tokens) - window + 1):
        stretch = tuple(int(t) for t in tokens[i : i + window])
        if all(t in silence for t in stretch):
            continue
        repeats += stretch in seen
        seen.add(stretch)
    return repeats


def small_model(seed: int = 0) -> TokenLM:
    torch.manual_seed(seed)
    return TokenLM(LMConfig(dim=32, codebook_size=64))


def small_generator(model: TokenLM | None = None) -> TokenGenerator:
    return TokenGenerator(model or small_model(), {"codec": {"frame_rate": 75}}, sorted(SILENCE))


def looping_generator() -> TokenGenerator:
    """A model that always says the same coarse token: left alone, it is one endless loop."""
    model = small_model()
    with torch.no_grad():
        head = model.heads[0][2]
        head.weight.zero_()
        head.bias.zero_()
        head.bias[12] = 5.0
    return small_generator(model)


def unit(rows: int = 1) -> np.ndarray:
    v = np.random.default_rng(3).standard_normal((rows, 384)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_norepeat_forbids_what_followed_the_same_stretch():
    guard = NoRepeat(window=4, silence=set())
    for token in [1, 2, 3, 4, 9, 1, 2, 3]:
        assert token not in guard.forbidden()
        guard.push(token)
    assert guard.forbidden() == {4}   # 1 2 3 4 happened: 4 may not follow 1 2 3 again


def test_norepeat_lets_silence_repeat():
    guard = NoRepeat(window=3, silence={0})
    for token in [0, 0, 0, 0, 0]:
        assert not guard.forbidden()
        guard.push(token)


def test_norepeat_forgets_beyond_capacity():
    guard = NoRepeat(window=3, silence=set(), capacity=2)
    for token in [1, 2, 3, 8, 9, 5, 6, 1, 2]:
        guard.push(token)
    assert guard.forbidden() == set()   # 1 2 -> 3 was more than 2 stretches ago


def test_same_seed_same_tokens_and_chunks_add_up():
    gen = small_generator()
    a = np.concatenate(list(gen.stream(unit(), 200, seed=5, chunk_frames=64)), axis=1)
    b = np.concatenate(list(gen.stream(unit(), 200, seed=5, chunk_frames=200)), axis=1)
    c = np.concatenate(list(gen.stream(unit(), 200, seed=6)), axis=1)
    assert a.shape == (1, 200, 4) and a.dtype == np.uint16
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_chunks_arrive_as_made():
    gen = small_generator()
    chunks = gen.stream(unit(), 10_000_000, seed=1, chunk_frames=50)
    first = next(chunks)   # an endless request still yields its first chunk at once
    assert first.shape == (1, 50, 4)


@pytest.mark.parametrize("guidance", [1.0, 3.0])
def test_no_one_second_stretch_twice_even_from_a_looping_model(guidance):
    gen = looping_generator()
    stats: dict = {}
    tokens = np.concatenate(list(gen.stream(unit(), 1500, seed=2, temperature=0.02, guidance=guidance,
                                            stats=stats)), axis=1)[0, :, 0]
    plain = np.concatenate(list(gen.stream(unit(), 1500, seed=2, temperature=0.02, guidance=guidance,
                                           no_repeat=False)), axis=1)[0, :, 0]
    assert repeated_windows(plain, 75, SILENCE) > 1000      # the model alone loops (1426 of 1426 windows)
    assert repeated_windows(tokens, 75, SILENCE) == 0
    assert stats["no_repeat_interventions"] > 0


def test_prime_counts_as_already_made():
    gen = looping_generator()
    prime = np.full((75, 4), 12, np.uint16)   # one 1 s stretch the model would go on repeating
    made = np.concatenate(list(gen.stream(unit(), 600, seed=1, temperature=0.02, prime=prime)), axis=1)[0, :, 0]
    both = np.concatenate([prime[:, 0], made])
    assert repeated_windows(both, 75, SILENCE) == 0


def test_rows_are_independent_streams():
    gen = small_generator()
    conds = unit(3)
    together = np.concatenate(list(gen.stream(conds, 100, seed=4)), axis=1)
    assert together.shape == (3, 100, 4)
    assert not np.array_equal(together[0], together[1])


def test_loss_ignores_padding():
    model = TokenLM(LMConfig(dim=32, codebook_size=64))
    codes = torch.randint(0, 64, (2, 20, 4))
    mask = torch.ones(2, 20, dtype=torch.bool)
    mask[1, 10:] = False
    logits = model(codes, torch.zeros(2, 384))
    changed = codes.clone()
    changed[1, 10:] = 0   # padding content must not matter to the loss of the valid frames
    loss, per_level = lm_loss(logits, codes, mask)
    loss2, _ = lm_loss(model(changed, torch.zeros(2, 384)), changed, mask)
    assert per_level.shape == (4,)
    assert torch.allclose(loss, loss2)
