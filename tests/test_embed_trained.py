"""The shipped embedder is really trained: a description finds the sound it describes.

Procedural sounds made here with a seed of the test's own (not training clips), embedded from
their tokens, ranked against class words and short descriptions.
"""

import numpy as np
import pytest

from soundtok_cli.data import synth
from soundtok_cli.embed.text import TextTower
from soundtok_cli.io.store import Batch
from soundtok_cli.models.registry import load_codec, load_embedder

SOUNDS = {  # generator: what a user would type
    "rain": "rain",
    "thunder": "thunder",
    "birdsong": "birds",
    "siren": "a siren",
    "drums": "drums",
    "whoosh": "a whoosh",
    "door_knock": "knocking on a door",
    "fire": "a crackling fire",
}


PARAPHRASES = {  # the same sounds in other words than the training captions'
    "rain": "a rainstorm",
    "thunder": "a storm with thunder",
    "birdsong": "birds singing",
    "siren": "an emergency vehicle siren",
    "drums": "a drum beat",
    "whoosh": "something swishing past",
    "door_knock": "someone knocking at the door",
    "fire": "flames burning",
}


@pytest.fixture(scope="module")
def embedded():
    """(names, item vectors, embedder) of one procedural sound per generator in SOUNDS."""
    codec, embedder = load_codec(device="cpu"), load_embedder(device="cpu")
    rng = np.random.default_rng(20261126)
    names = list(SOUNDS)
    codes = []
    for name in names:
        x = synth.GENERATORS[name](rng, 48000, 4.0)[0].astype(np.float32)
        encoder = codec.encoder(48000, 8)
        codes.append(np.concatenate([encoder.push(x), encoder.finish()]))
    batch = Batch.tokens(codec.describe(8), "test", source=names, channel=[0] * len(names),
                         sample_rate=[48000] * len(names), duration=[4.0] * len(names),
                         content_hash=names, codes=codes)
    return names, embedder.embed_batch(batch, 2.0, 1.0).items["embedding"], embedder


def rank_of_right_sound(queries: np.ndarray, names: list[str], vectors: np.ndarray) -> dict[str, int]:
    """Per query i (asking for sound i): the rank (0 = first) of sound i."""
    scores = queries @ vectors.T
    return {n: int((scores[i] > scores[i, i]).sum()) for i, n in enumerate(names)}


@pytest.fixture(scope="module")
def ranks(embedded):
    names, vectors, _ = embedded
    return rank_of_right_sound(TextTower.load().encode([SOUNDS[n] for n in names]), names, vectors)


def test_descriptions_find_their_sounds(ranks):
    first = [n for n, rank in ranks.items() if rank == 0]
    # chance would put about one of the eight first; the shipped weights put nearly all first
    assert len(first) >= 6, ranks
    assert max(ranks.values()) <= 2, ranks


def test_paraphrases_pulled_toward_trained_captions_land_on_their_sounds(embedded):
    """As `soundtok search` reads them (embed/prototypes.py): the right sound stays first for most
    and the query lands much nearer to it than the words' own vector does."""
    from soundtok_cli.embed.prototypes import for_embedder

    names, vectors, embedder = embedded
    typed = TextTower.load().encode([PARAPHRASES[n] for n in names])
    table = for_embedder(embedder.identity)
    pulled = np.stack([table.pull(v)[0] for v in typed])
    ranks = rank_of_right_sound(pulled, names, vectors)
    assert sum(rank == 0 for rank in ranks.values()) >= 6, ranks
    right_typed = np.einsum("ij,ij->i", typed, vectors)
    right_pulled = np.einsum("ij,ij->i", pulled, vectors)
    assert np.mean(right_pulled - right_typed) > 0.2, (right_typed, right_pulled)
