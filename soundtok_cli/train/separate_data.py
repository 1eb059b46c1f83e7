"""Training mixtures for the separation model, made on the fly from the corpus (`make corpus`).

Each example is (mixture, target, query): the target is the sound the query describes, the
mixture is the target plus other sounds. Kinds of example, each as the issue asks for it:

- speech over a background (sound effects, music, procedural noise, or a crowd: several other
  voices at once), queried as speech ("speech", "a person speaking", its caption), or the other
  way round: the background queried by its caption and kept ("rain" out of "rain and a voice");
- two sound effects of different kinds (their captions far apart in the text space), one queried;
- a query for something the mixture does not hold: the target is silence, so "keep dog" on a
  recording without a dog gives near-silence rather than a guess.

Procedural clips that are two sounds under one caption (a sound laid over a background bed) are
left out: neither sound is the target alone.

Levels vary over 35 dB, target-to-rest ratios from -5 to +15 dB, and a share of the sources is
heard in a room (synthetic reverberation; the target keeps its own reverberation). So that a voice
is not known only by the few microphones and speakers of the training set, half of the sources are
heard through another colour (a random low and high shelf, sometimes a band limit) and half of the
voices are shifted by up to 3 semitones (a larger or smaller speaker: pitch and formants together).
With `proximity`, that share of the voices kept in speech examples is heard through a close
directional microphone (colour.proximity_boost): the voice network's fine-tune (train/separate.py).
With `pairs`, that share of the examples are sound-effect pairs (the rest of P_SPEECH + P_PAIR
goes to speech examples): the general network answers every query that is not a voice.
"""

from __future__ import annotations

import copy
import os

import numpy as np
import soxr

from soundtok_cli.data import synth
from soundtok_cli.separate.concepts import CROWD_QUERIES, SPEECH_QUERIES
from soundtok_cli.train.colour import proximity_boost, random_colour
from soundtok_cli.train.embed import general_captions, sentence_vectors
from soundtok_cli.train.embed_data import Clip, package, read_clips

SAMPLE_RATE = 48_000
NOT_SPEECH_PACKAGES = ("sound-icons",)  # listed as speech in the manifest, but they are instrument samples
P_SPEECH, P_PAIR = 0.5, 0.42  # the rest: a query for something absent
TARGET_TO_REST_DB = (-5.0, 15.0)  # the target's level over the rest of the mixture, drawn uniformly
P_BACKGROUND_QUERY = 0.25  # speech examples where the background is the one asked for
P_CROWD = 0.2
P_ROOM = 0.2
DIFFERENT = 0.45  # captions closer than this cosine in the text space are not "different kinds"
P_COLOUR = 0.5
P_PITCH = 0.5
PITCH_SEMITONES = 3.0


class MixtureSampler:
    def __init__(self, corpus_dir: str, cache_dir: str, seed: int = 0, split: str = "train", augment: bool = True,
                 proximity: float = 0.0, pairs: float = P_PAIR):
        self.augment = augment  # colour and pitch (see the module docstring); rooms and levels always
        self.proximity = proximity  # the share of target voices heard through a close microphone
        if not 0.0 <= pairs <= P_SPEECH + P_PAIR:
            raise ValueError(f"pairs must be within 0 and {P_SPEECH + P_PAIR}")
        self.speech_share = P_SPEECH + P_PAIR - pairs
        self.pair_share = pairs
        root = os.path.join(corpus_dir, split)
        # A procedural sound laid over a bed ("a bell tone with crackling fire") is two sounds under
        # one caption: as a target it taught "crackling fire" to keep the bell, and as an interferer
        # it could hold the very sound asked for. Left out (189 of the 610 procedural clips).
        self.clips = [c for c in read_clips(corpus_dir, split) if not (c.kind == "synth" and synth.laid_over_bed(c.caption))]
        for clip in self.clips:
            if clip.kind == "speech" and package(clip.source) in NOT_SPEECH_PACKAGES:
                clip.kind = "sfx"
        self.shards = {name: np.load(os.path.join(root, name), mmap_mode="r") for name in {c.shard for c in self.clips}}
        self.speech = np.array([i for i, c in enumerate(self.clips) if c.kind == "speech"])
        self.other = np.array([i for i, c in enumerate(self.clips) if c.kind != "speech"])
        if not len(self.speech) or not len(self.other):
            raise SystemExit(f"{root}/index.tsv needs both speech and other clips")
        self.speech_p = _length_weights(self.clips, self.speech)
        self.other_p = _length_weights(self.clips, self.other)

        texts: dict[str, int] = {}
        self.queries: list[list[int]] = []  # per clip: its caption's id, then coarser true captions
        for clip in self.clips:
            options = [clip.caption] + general_captions(clip.caption)
            self.queries.append([texts.setdefault(t, len(texts)) for t in options])
        self.speech_ids = [texts.setdefault(t, len(texts)) for t in SPEECH_QUERIES]
        self.crowd_ids = [texts.setdefault(t, len(texts)) for t in CROWD_QUERIES]
        self.texts = list(texts)
        os.makedirs(cache_dir, exist_ok=True)
        self.vectors = sentence_vectors(self.texts, os.path.join(cache_dir, "captions.npz"))
        self.rng = np.random.default_rng(seed)

    def reseeded(self, seed: int, augment: bool | None = None) -> "MixtureSampler":
        """The same clips and query vectors (loaded once) drawing from a fresh generator."""
        other = copy.copy(self)
        other.rng = np.random.default_rng(seed)
        if augment is not None:
            other.augment = augment
        return other

    # -- sources (train.subband and train.dereverb build their examples from these too) ------

    def crop(self, i: int, n: int) -> np.ndarray:
        """n samples of clip i (a short clip placed at random in silence), never a silent crop
        of a clip that has sound (up to 4 tries)."""
        clip = self.clips[i]
        data = self.shards[clip.shard]
        out = np.zeros(n, np.float32)
        for _ in range(4):
            if clip.length <= n:
                start = int(self.rng.integers(0, n - clip.length + 1))
                out[:] = 0
                out[start : start + clip.length] = data[clip.offset : clip.offset + clip.length] / 32768.0
            else:
                start = clip.offset + int(self.rng.integers(0, clip.length - n + 1))
                out[:] = data[start : start + n] / 32768.0
            if np.sqrt(np.mean(out ** 2)) > 10 ** (-55 / 20):
                break
        return out

    def voice(self, i: int, n: int) -> np.ndarray:
        """n samples of speech clip i, half the time shifted in pitch and formants."""
        if not self.augment or self.rng.random() >= P_PITCH:
            return self.crop(i, n)
        ratio = 2 ** (self.rng.uniform(-PITCH_SEMITONES, PITCH_SEMITONES) / 12)
        return pitch_shifted(self.crop(i, int(round(n * ratio))), n, ratio)

    def close_microphone(self, x: np.ndarray) -> np.ndarray:
        """x, with probability `proximity`, as a close directional microphone hears it."""
        if not self.augment or not self.proximity or self.rng.random() >= self.proximity:
            return x
        return proximity_boost(x, self.rng)

    def colour(self, x: np.ndarray) -> np.ndarray:
        """x, with probability P_COLOUR, through a random microphone-and-speaker colour."""
        if not self.augment or self.rng.random() >= P_COLOUR:
            return x
        return random_colour(x, self.rng)

    def _pick(self, pool: np.ndarray, p: np.ndarray) -> int:
        return int(pool[self.rng.choice(len(pool), p=p)])

    def pick_speech(self) -> int:
        """A speech clip's index, longer clips more often."""
        return self._pick(self.speech, self.speech_p)

    def pick_other(self) -> int:
        """A clip's index that is not speech (effects, music, procedural), longer ones more often."""
        return self._pick(self.other, self.other_p)

    def _different(self, i: int, others: list[int]) -> bool:
        v = self.vectors[self.queries[i][0]]
        return all(float(v @ self.vectors[self.queries[j][0]]) < DIFFERENT for j in others)

    def other_than(self, taken: list[int], tries: int = 20) -> int:
        """A clip that is not speech whose caption differs from every one of `taken` (the last
        one drawn after `tries`)."""
        for _ in range(tries):
            j = self.pick_other()
            if self._different(j, taken):
                return j
        return j

    def _query(self, i: int) -> int:
        ids = self.queries[i]
        return ids[0] if len(ids) == 1 or self.rng.random() < 0.4 else ids[1 + int(self.rng.integers(len(ids) - 1))]

    def room(self, x: np.ndarray) -> np.ndarray:
        """x, with probability P_ROOM, in a synthetic room."""
        if self.rng.random() >= P_ROOM:
            return x
        return synth.reverb(self.rng, x.astype(np.float64), SAMPLE_RATE, float(self.rng.uniform(0.2, 1.5)),
                            wet=float(self.rng.uniform(0.2, 0.5))).astype(np.float32)

    def crowd(self, n: int) -> np.ndarray:
        """n samples of 4 to 8 voices together in a room."""
        voices = [self.voice(self.pick_speech(), n) for _ in range(int(self.rng.integers(4, 9)))]
        return synth.reverb(self.rng, np.sum([_unit(v) for v in voices], axis=0), SAMPLE_RATE,
                            float(self.rng.uniform(0.4, 1.5)), wet=0.4).astype(np.float32)

    # -- examples -----------------------------------------------------------------------------

    def example(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mixture, target, query vector) of n samples each."""
        r = self.rng.random()
        if r < self.speech_share:
            voice = self.pick_speech()
            speech = self.room(self.close_microphone(self.voice(voice, n)))
            if self.rng.random() < P_CROWD:
                background, background_query = self.crowd(n), self.crowd_ids[int(self.rng.integers(len(self.crowd_ids)))]
            else:
                j = self.other_than([voice])
                background, background_query = self.room(self.crop(j, n)), self._query(j)
            if self.rng.random() < P_BACKGROUND_QUERY:
                return self.mix(background, [speech], background_query)
            query = (self.speech_ids[int(self.rng.integers(len(self.speech_ids)))] if self.rng.random() < 0.7
                     else self._query(voice))
            return self.mix(speech, [background], query)
        if r < self.speech_share + self.pair_share:
            a = self.pick_other()
            b = self.other_than([a])
            rest = [self.room(self.crop(b, n))]
            if self.rng.random() < 0.3:
                rest.append(self.crop(self.other_than([a, b]), n))
            return self.mix(self.room(self.crop(a, n)), rest, self._query(a))
        present = [self.pick_other(), self.pick_speech()]
        absent = self.other_than(present)
        mixture = (_unit(self.colour(self.crop(present[0], n)))
                   + _unit(self.colour(self.voice(present[1], n))) * 10 ** (self.rng.uniform(-10, 10) / 20))
        return self._level(mixture, np.zeros(n, np.float32), self.queries[absent][0])

    def mix(self, target: np.ndarray, rest: list[np.ndarray], query: int):
        """(mixture, target, query vector): the target over the rest at TARGET_TO_REST_DB, each
        source maybe coloured, at a random level."""
        target = _unit(self.colour(target))
        others = np.sum([_unit(self.colour(x)) * 10 ** (self.rng.uniform(-6, 3) / 20) for x in rest], axis=0)
        others = _unit(others) * 10 ** (-self.rng.uniform(*TARGET_TO_REST_DB) / 20)
        return self._level(target + others, target, query)

    def _level(self, mixture: np.ndarray, target: np.ndarray, query: int):
        peak = np.abs(mixture).max() + 1e-9
        gain = 10 ** (self.rng.uniform(-36, -1) / 20) / peak
        return (mixture * gain).astype(np.float32), (target * gain).astype(np.float32), self.vectors[query]

    def batch(self, size: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows = [self.example(n) for _ in range(size)]
        return tuple(np.stack(part) for part in zip(*rows))


def pitch_shifted(x: np.ndarray, n: int, ratio: float) -> np.ndarray:
    """x (about n x ratio samples) resampled to n samples: at the same rate, every frequency
    times `ratio` (pitch and formants together, as from a larger or smaller speaker)."""
    y = soxr.resample(x, SAMPLE_RATE * ratio, SAMPLE_RATE)
    return np.pad(y, (0, max(0, n - len(y))))[:n].astype(np.float32)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / (np.sqrt(np.mean(x ** 2)) + 1e-9)


def _length_weights(clips: list[Clip], pool: np.ndarray) -> np.ndarray:
    """Clips drawn in proportion to the square root of their length: long music does not drown
    short effects, and a 0.2 s beep is not drawn as often as a minute of rain."""
    w = np.sqrt(np.array([clips[i].length for i in pool], np.float64))
    return w / w.sum()
