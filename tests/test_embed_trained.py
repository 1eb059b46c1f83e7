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


@pytest.fixture(scope="module")
def ranks():
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
    vectors = embedder.embed_batch(batch, 2.0, 1.0).items["embedding"]
    scores = TextTower.load().encode([SOUNDS[n] for n in names]) @ vectors.T
    # rank (0 = first) of the right sound for each query
    return {n: int((scores[i] > scores[i, i]).sum()) for i, n in enumerate(names)}


def test_descriptions_find_their_sounds(ranks):
    first = [n for n, rank in ranks.items() if rank == 0]
    # chance would put about one of the eight first; the shipped weights put nearly all first
    assert len(first) >= 6, ranks
    assert max(ranks.values()) <= 2, ranks
