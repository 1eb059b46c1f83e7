"""Separation by description: speech in noise next to DeepFilterNet3, text-queried extraction of
sound effects, and speed.

  python -m bench.separation [--part speech,effects,speed] [--mixtures 24] [--effect-mixtures 20]
                             [--speed-seconds 60] [--heldout corpus/heldout] [--no-dfn]
                             [--weights CANDIDATE.safetensors] [--mask command|network|suppressor|subband]
                             [--out bench/results/separation.json]
  python -m bench.separation --part trained [--corpus corpus] [--effect-mixtures 3]   # the diagnostic below

Only material the separation model never trained on: the held-out corpus (`corpus/heldout`:
ktuberling-data voices, lincity-ng-data effects, xmoto-data music; 48 kHz int16 shards) and
procedural sounds of soundtok_cli/data/synth.py made with the benchmark's own seed
(`BENCH_SYNTH_SEED`; training used other seeds). Every mixture is fixed by its seed.

speech   Clean speech: held-out speech clips of at least 2 s, edges trimmed, joined (0.2 s apart)
         with the next clips of the same voice into utterances of 4 to 6 s. Backgrounds:
           crowd       babble of 6 to 8 other held-out voices (each a stream of their short words,
                       levels within 6 dB), in a synthetic room (RT60 0.5-1 s)
           rain        synth.rain                   traffic  lincity-ng "trafic high/low" recordings
           city        lincity-ng industry, construction, trains, harbour (clips without voices)
           music       xmoto-data music             wind     synth.wind
           pink noise  stationary pink noise
         mixed at each SNR (speech energy over background energy over the whole mixture), then
         the mixture scaled to a peak of -6 dBFS. soundtok: `extract(mix, 48000, "speech")` (the
         network's mask, the noise suppressor's gain and the sub-band network's mask averaged;
         --mask network: the network's mask alone; --mask suppressor or subband: that part
         alone, one pass over each mixture);
         DeepFilterNet3 (bench/dfn3.py) denoises the same mixtures in the same run. Figure: SI-SDR
         improvement, SI-SDR(estimate, clean) - SI-SDR(mixture, clean), mean over mixtures.
effects  Two held-out sounds of different kinds (never the same group: rain and surf are both
         water) mixed at 0 dB, 4 s; the target asked for by a plain description (the synth class
         word, the lincity-ng caption, "music"). Figure: SI-SDR improvement of the target, mean
         per target class and over all; and the same mixtures asked for with the *wrong* query
         (the interferer's description), scored against the target: what the figure is when the
         description is not used. A query `ground` refuses is skipped and reported. As the
         command runs: the general network's mask, half of it snapped onto the mixture's spectral
         patterns (--mask network: the mask alone). "both named": the mixture split into stems
         for the target's and the interferer's descriptions, the target's stem scored.
trained  Not a goal: a diagnostic of fit against generalisation. The effects protocol (two sounds at
         0 dB, 4 s, each asked for by its description, as the command runs) on recordings the
         model TRAINED on: real sound effects of the corpus's training split (`--corpus`, not the
         procedural ones, no caption the command would take for a voice) by their own captions,
         every caption with at least 3 clips of 3 s or more; the interferer's caption at least as
         far from the target's in the text space as training's "different kinds". A model that
         fits its training sounds but does not generalise scores high here and low on the
         held-out recordings; one that scores low on both has not learnt to separate them at all.
speed    x real time of `extract("speech")` and `extract("rain")` on 60 s of 48 kHz mono and
         stereo audio, torch on one thread
         (best of 2 after a warm-up), and the process's peak RSS.

SI-SDR follows bench/yardstick.py (zero-mean, no alignment: both systems return time-aligned audio,
DeepFilterNet3's delay is removed by bench/dfn3.py).
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

import numpy as np

from bench.results import cpu_name, write_json
from bench.yardstick import si_sdr

SR = 48000
SNRS = (0.0, 5.0)
BACKGROUNDS = ("crowd", "rain", "traffic", "city", "music", "wind", "pink noise")
NON_STATIONARY = ("crowd", "rain", "traffic", "city")
SPEECH_QUERY = "speech"
EFFECT_QUERY = "rain"         # the speed part also times a sound effect's path (the general network, half snapped)
SPEECH_MIN_SECONDS = 2.0      # clean speech clips (shorter ones make the babble)
UTTERANCE_SECONDS = (4.0, 6.0)
GAP_SECONDS = 0.2
BABBLE_TALKERS = (6, 8)
EFFECT_SECONDS = 4.0
EFFECT_MIN_SECONDS = 3.0      # held-out effect clips shorter than this are left out
TRAINED_MIN_CLIPS = 3         # the trained part: captions with at least this many clips
DIFFERENT_CAPTIONS = 0.45     # ... and interferers whose caption is further than this cosine (train/separate_data.py)
AUDIBLE_RMS = 1e-3            # training clips hold silent stretches: crops quieter than -60 dBFS are drawn again
PEAK = 0.5                    # mixtures are scaled to this peak (-6 dBFS)
MUST_MARGIN_DB = 1.0          # soundtok within 1 dB of DeepFilterNet3
EFFECTS_MUST_DB, EFFECTS_GOAL_DB = 4.0, 6.0
SPEED_TARGET = 20.0

TRAFFIC_CAPTIONS = ("trafic high", "trafic low")
# lincity-ng sounds named after a building: the ones without voices (no school, market, stadium,
# residential) that sound like a city at work
CITY_CAPTIONS = ("blacksmith", "coal mine", "dirt track", "harbor", "industry high", "industry light", "mill",
                 "monument construction", "ore mine", "power coal full", "power coal med", "rail train",
                 "recycle", "tip")
# lincity-ng captions that name a sound source -> (query: the caption, spelling mended; group)
HELDOUT_EFFECTS = {
    "blacksmith": ("blacksmith", "tools"),
    "monument construction": ("construction", "tools"),
    "fire": ("fire", "fire"),
    "water": ("water", "water"),
    "harbor": ("harbor", "water"),
    "rail train": ("a train", "vehicle"),
    "trafic high": ("traffic", "vehicle"),
    "trafic low": ("traffic", "vehicle"),
    "rocket": ("rocket", "rocket"),
    "rocket takeoff": ("a rocket taking off", "rocket"),
    "rocket explosion": ("an explosion", "explosion"),
    "sports croud": ("a crowd cheering", "voice"),
    "farm": ("farm", "animal"),
    "industry high": ("industry", "machine"),
    "mill": ("mill", "machine"),
    "wind mill": ("wind mill", "machine"),
}
# synth generator -> (query, group)
SYNTH_EFFECTS = {
    "rain": ("rain", "water"),
    "surf": ("ocean waves", "water"),
    "thunder": ("thunder", "storm"),
    "wind": ("wind", "wind"),
    "fire": ("crackling fire", "fire"),
    "birdsong": ("birds chirping", "animal"),
    "engine": ("an engine", "vehicle"),
    "footsteps": ("footsteps", "footsteps"),
    "door_knock": ("knocking on a door", "door"),
    "bell": ("a bell", "bell"),
    "siren": ("a siren", "siren"),
}

Extract = Callable[[np.ndarray, str], np.ndarray]
Stems = Callable[[np.ndarray, list[str]], np.ndarray]   # (mixture, descriptions) -> the first one's stem


# -- signals -----------------------------------------------------------------------------------


def as_float(x: np.ndarray) -> np.ndarray:
    """float64 samples of an int16 shard slice (scaled to +-1) or of a float array."""
    x = np.asarray(x)
    return x.astype(np.float64) / 32768 if x.dtype == np.int16 else x.astype(np.float64)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x))))


def unit(x: np.ndarray) -> np.ndarray:
    """x at RMS 1 (silence stays silence)."""
    r = rms(x)
    return x / r if r > 0 else x


def trim(x: np.ndarray, floor_db: float = -40.0) -> np.ndarray:
    """x without the leading and trailing samples below floor_db relative to its peak."""
    x = as_float(x)
    loud = np.flatnonzero(np.abs(x) > np.abs(x).max() * 10 ** (floor_db / 20)) if len(x) and x.any() else []
    return x[loud[0] : loud[-1] + 1] if len(loud) else x[:0]


def mix_at_snr(target: np.ndarray, interference: np.ndarray, snr_db: float) -> np.ndarray:
    """target + interference scaled so that 10 log10(energy(target) / energy(interference)) is
    exactly snr_db over the whole length."""
    gain = np.sqrt(np.sum(np.square(target)) / (np.sum(np.square(interference)) * 10 ** (snr_db / 10)))
    return target + gain * interference


def si_sdr_improvement(clean: np.ndarray, estimate: np.ndarray, mixture: np.ndarray) -> float:
    """SI-SDR(estimate, clean) - SI-SDR(mixture, clean), dB (bench/yardstick.py's SI-SDR)."""
    return float(si_sdr(clean, estimate) - si_sdr(clean, mixture))


def crop(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n samples of x from a random start; zero-padded at the end when x is shorter."""
    start = int(rng.integers(0, len(x) - n + 1)) if len(x) > n else 0
    out = np.zeros(n)
    piece = as_float(x[start : start + n])
    out[: len(piece)] = piece
    return out


def clip_sequence(clips: list[np.ndarray], n: int, rng: np.random.Generator, fade_s: float = 0.05) -> np.ndarray:
    """n samples of randomly chosen clips one after another, cross-faded, from a random point of the
    first: a bed longer than any one clip."""
    fade = int(fade_s * SR)
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, fade))
    first = as_float(clips[int(rng.integers(len(clips)))])
    out = first[int(rng.integers(0, max(1, len(first) - fade))) :]
    while len(out) < n:
        nxt = as_float(clips[int(rng.integers(len(clips)))])
        if len(nxt) <= 2 * fade or len(out) <= fade:
            out = np.concatenate([out, nxt])
            continue
        head = out[-fade:] * ramp[::-1] + nxt[:fade] * ramp
        out = np.concatenate([out[:-fade], head, nxt[fade:]])
    return out[:n]


def babble(talkers: list[list[np.ndarray]], n: int, rng: np.random.Generator, room: bool = True) -> np.ndarray:
    """A crowd: each talker (a list of that voice's clips) a stream of its words in random order
    with 0.05-0.3 s pauses, starting mid-stream, at levels within 6 dB of each other; summed and
    put in a synthetic room (RT60 0.5-1 s). RMS 1, n samples."""
    from soundtok_cli.data import synth

    if len(talkers) < BABBLE_TALKERS[0]:
        raise ValueError(f"a crowd needs at least {BABBLE_TALKERS[0]} talkers, got {len(talkers)}")
    out = np.zeros(n)
    for clips in talkers:
        stream = np.zeros(n)
        pos = -int(rng.uniform(0, 1.0) * SR)
        while pos < n:
            word = trim(clips[int(rng.integers(len(clips)))])
            lo, hi = max(pos, 0), min(pos + len(word), n)
            if hi > lo:
                stream[lo:hi] += word[lo - pos : hi - pos]
            pos += len(word) + int(rng.uniform(0.05, 0.3) * SR)
        out += unit(stream) * 10 ** (rng.uniform(-6, 0) / 20)
    if room:
        out = synth.reverb(rng, out, SR, float(rng.uniform(0.5, 1.0)), wet=0.4)
    return unit(out)


# -- the held-out corpus -----------------------------------------------------------------------


@dataclass(frozen=True)
class Clip:
    samples: np.ndarray  # int16 shard slice (memory-mapped) or float samples
    kind: str
    source: str
    caption: str

    @property
    def voice(self) -> str:
        """The speaker: ktuberling keeps one voice per language folder."""
        parts = self.source.split(":", 1)[-1].split("/")
        return parts[-2] if len(parts) > 1 else self.source


def read_heldout(heldout: str) -> list[Clip]:
    clips, shards = [], {}
    with open(os.path.join(heldout, "index.tsv")) as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if row["shard"] not in shards:
                shards[row["shard"]] = np.load(os.path.join(heldout, row["shard"]), mmap_mode="r")
            offset, length = int(row["offset"]), int(row["length"])
            clips.append(Clip(shards[row["shard"]][offset : offset + length], row["kind"], row["source"],
                              row["caption"]))
    return clips


@dataclass
class SpeechPools:
    utterances: list[tuple[str, np.ndarray]]   # (voice, clean speech of 4-6 s)
    talkers: dict[str, list[np.ndarray]]       # voice -> its short clips, for the babble
    traffic: list[np.ndarray]
    city: list[np.ndarray]
    music: list[np.ndarray]

    def describe(self) -> dict:
        return {"utterances": len(self.utterances),
                "utterance_seconds": round(sum(len(u) for _, u in self.utterances) / SR, 1),
                "speech_voices": sorted({v for v, _ in self.utterances}),
                "babble_voices": len(self.talkers), "traffic_clips": len(self.traffic),
                "city_clips": len(self.city), "music_tracks": len(self.music)}


def utterances(clips: list[Clip]) -> list[tuple[str, np.ndarray]]:
    """Clean speech: speech clips of at least 2 s, edges trimmed, each joined with the next ones
    of the same voice (in index order) until 4 s, cut at 6 s."""
    by_voice: dict[str, list[np.ndarray]] = {}
    for c in clips:
        if c.kind == "speech" and len(c.samples) >= SPEECH_MIN_SECONDS * SR:
            x = trim(c.samples)
            if len(x) >= SR:
                by_voice.setdefault(c.voice, []).append(x)
    out = []
    gap = np.zeros(int(GAP_SECONDS * SR))
    for voice, xs in by_voice.items():
        parts: list[np.ndarray] = []
        for x in xs:
            parts += [gap, x] if parts else [x]
            joined = np.concatenate(parts)
            if len(joined) >= UTTERANCE_SECONDS[0] * SR:
                out.append((voice, joined[: int(UTTERANCE_SECONDS[1] * SR)]))
                parts = []
    return out


def speech_pools(clips: list[Clip]) -> SpeechPools:
    talkers: dict[str, list[np.ndarray]] = {}
    for c in clips:
        if c.kind == "speech" and 0.3 * SR <= len(c.samples) < SPEECH_MIN_SECONDS * SR:
            talkers.setdefault(c.voice, []).append(c.samples)
    talkers = {v: xs for v, xs in talkers.items() if len(xs) >= 5}
    sfx = [c for c in clips if c.kind == "sfx" and len(c.samples) >= SR]
    return SpeechPools(
        utterances=utterances(clips), talkers=talkers,
        traffic=[c.samples for c in sfx if c.caption in TRAFFIC_CAPTIONS],
        city=[c.samples for c in sfx if c.caption in CITY_CAPTIONS],
        music=[c.samples for c in clips if c.kind == "music"])


# -- speech in noise ---------------------------------------------------------------------------


@dataclass
class Mixture:
    label: str          # the background (speech part) or the target class (effects part)
    snr_db: float
    target: np.ndarray  # what a perfect system returns
    mixture: np.ndarray
    query: str
    wrong_query: str = ""   # the interferer's description (effects part)
    interferer: str = ""
    origin: str = ""        # synth or heldout (effects part)


def level(target: np.ndarray, mixture: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both scaled alike so that the mixture peaks at PEAK."""
    g = PEAK / max(np.abs(mixture).max(), 1e-9)
    return target * g, mixture * g


def make_background(name: str, n: int, rng: np.random.Generator, pools: SpeechPools, voice: str) -> np.ndarray:
    from soundtok_cli.data import synth

    if name == "crowd":
        others = sorted(v for v in pools.talkers if v != voice)
        count = min(len(others), int(rng.integers(BABBLE_TALKERS[0], BABBLE_TALKERS[1] + 1)))
        chosen = rng.choice(len(others), size=count, replace=False)
        return babble([pools.talkers[others[i]] for i in chosen], n, rng)
    if name == "rain":
        return synth.rain(rng, SR, n / SR)[0].astype(np.float64)
    if name == "wind":
        return synth.wind(rng, SR, n / SR)[0].astype(np.float64)
    if name == "pink noise":
        return synth.pink(rng, n)
    if name == "traffic":
        return clip_sequence(pools.traffic, n, rng)
    if name == "city":
        return clip_sequence(pools.city, n, rng)
    if name == "music":
        return crop(pools.music[int(rng.integers(len(pools.music)))], n, rng)
    raise ValueError(f"unknown background {name!r}")


def speech_mixtures(pools: SpeechPools, count: int, snrs=SNRS, backgrounds=BACKGROUNDS, seed: int | None = None) -> list[Mixture]:
    """count mixtures per background, each at every SNR (the same speech and background, scaled):
    the utterances taken in turn, a fresh background each."""
    from soundtok_cli.train.embed_data import BENCH_SYNTH_SEED

    seed = BENCH_SYNTH_SEED if seed is None else seed
    out = []
    for b, name in enumerate(backgrounds):
        for i in range(count):
            rng = np.random.default_rng((seed, 1, b, i))
            voice, clean = pools.utterances[(b * count + i) % len(pools.utterances)]
            background = make_background(name, len(clean), rng, pools, voice)
            for snr in snrs:
                target, mixture = level(clean, mix_at_snr(clean, background, snr))
                out.append(Mixture(name, float(snr), target, mixture, SPEECH_QUERY))
    return out


def one_part(mix: np.ndarray, part: str, subband=None) -> np.ndarray:
    """One part of the speech path (soundtok_cli/separate/speech.py) alone over a whole mixture in
    one pass: the noise suppressor's gain ("suppressor") or the sub-band network's mask
    ("subband"), to show what each adds when a voice is kept."""
    from soundtok_cli.separate.speech import suppressor_gain
    from soundtok_cli.separate.subband import subband_masks

    mask_of = suppressor_gain if part == "suppressor" else lambda magnitude: subband_masks(subband, magnitude)[0]
    return through_masks(mix, lambda magnitude: {part: mask_of(magnitude)})[part]


def through_masks(mix: np.ndarray, masks_of) -> dict[str, np.ndarray]:
    """A mono mixture through each (frames, bins) mask that `masks_of` makes from its magnitudes on
    the separator's STFT frames, in one pass over the whole mixture: {name: estimate}."""
    import torch

    from soundtok_cli.separate.model import istft, stft

    spec = stft(torch.from_numpy(mix.astype(np.float32))[None])[0]
    masks = masks_of(spec.abs().numpy())
    return {name: istft((spec * torch.from_numpy(mask.astype(np.float32)))[None], len(mix))[0].numpy().astype(np.float64)
            for name, mask in masks.items()}


def run_speech(mixtures: list[Mixture], systems: dict[str, Extract], log=None) -> tuple[list[dict], dict]:
    """Per mixture: SI-SDR in and each system's improvement; and each system's seconds of work."""
    records, seconds = [], {name: 0.0 for name in systems}
    for k, m in enumerate(mixtures):
        rec = {"background": m.label, "snr_db": m.snr_db, "seconds": round(len(m.mixture) / SR, 3),
               "si_sdr_in": float(si_sdr(m.target, m.mixture)), "improvement": {}}
        for name, extract in systems.items():
            started = time.perf_counter()
            estimate = extract(m.mixture, m.query)
            seconds[name] += time.perf_counter() - started
            rec["improvement"][name] = si_sdr_improvement(m.target, estimate, m.mixture)
        records.append(rec)
        if log and (k + 1) % 10 == 0:
            log(f"speech: {k + 1}/{len(mixtures)} mixtures")
    return records, seconds


def summarise_speech(records: list[dict], systems: list[str], backgrounds=BACKGROUNDS, snrs=SNRS) -> dict:
    def mean(rows, name):
        values = [r["improvement"][name] for r in rows]
        return round(float(np.mean(values)), 2) if values else None

    rows = []
    for name in backgrounds:
        for snr in snrs:
            sel = [r for r in records if r["background"] == name and r["snr_db"] == snr]
            if sel:
                rows.append({"background": name, "snr_db": snr, "mixtures": len(sel),
                             "si_sdr_in": round(float(np.mean([r["si_sdr_in"] for r in sel])), 2),
                             "improvement": {s: mean(sel, s) for s in systems}})
    averages = []
    for group, names in (("all backgrounds", backgrounds), ("non-stationary", NON_STATIONARY)):
        for snr in list(snrs) + [None]:
            sel = [r for r in records if r["background"] in names and (snr is None or r["snr_db"] == snr)]
            if sel:
                averages.append({"group": group, "snr_db": snr, "mixtures": len(sel),
                                 "si_sdr_in": round(float(np.mean([r["si_sdr_in"] for r in sel])), 2),
                                 "improvement": {s: mean(sel, s) for s in systems}})
    verdict = {}
    if "soundtok" in systems and "DeepFilterNet3" in systems:
        overall = next(a for a in averages if a["group"] == "all backgrounds" and a["snr_db"] is None)["improvement"]
        ns = [a for a in averages if a["group"] == "non-stationary" and a["snr_db"] is None]
        verdict["must_within_1db"] = {"soundtok": overall["soundtok"], "DeepFilterNet3": overall["DeepFilterNet3"],
                                      "met": overall["soundtok"] >= overall["DeepFilterNet3"] - MUST_MARGIN_DB}
        if ns:
            ns = ns[0]["improvement"]
            verdict["goal_better_non_stationary"] = {"soundtok": ns["soundtok"], "DeepFilterNet3": ns["DeepFilterNet3"],
                                                     "met": ns["soundtok"] > ns["DeepFilterNet3"]}
    return {"rows": rows, "averages": averages, "verdict": verdict}


# -- text-queried effects ----------------------------------------------------------------------


@dataclass
class Source:
    label: str
    query: str
    group: str        # sources of one group are never mixed together
    origin: str       # "synth" or "heldout"
    make: Callable[[np.random.Generator, int], np.ndarray] = field(repr=False)
    target: bool = True   # False: only ever an interferer (speech)
    clips: int = 0


def _clip_maker(clips: list[np.ndarray]):
    def make(rng: np.random.Generator, n: int) -> np.ndarray:
        return crop(clips[int(rng.integers(len(clips)))], n, rng)
    return make


def _audible_clip_maker(clips: list[np.ndarray]):
    pick = _clip_maker(clips)

    def make(rng: np.random.Generator, n: int) -> np.ndarray:
        for _ in range(20):
            x = pick(rng, n)
            if rms(x) > AUDIBLE_RMS:
                break
        return x
    return make


def _synth_maker(generator: str):
    def make(rng: np.random.Generator, n: int) -> np.ndarray:
        from soundtok_cli.data import synth

        return synth.GENERATORS[generator](rng, SR, n / SR)[0].astype(np.float64)
    return make


def effect_sources(clips: list[Clip] | None) -> list[Source]:
    """The procedural classes, and (with the held-out corpus) the lincity-ng clips whose caption
    names a sound, music, and speech (as an interferer only)."""
    sources = [Source(gen, query, group, "synth", _synth_maker(gen)) for gen, (query, group) in SYNTH_EFFECTS.items()]
    if clips:
        by_query: dict[str, tuple[str, list[np.ndarray], str]] = {}
        for c in clips:
            if c.kind == "sfx" and c.caption in HELDOUT_EFFECTS and len(c.samples) >= EFFECT_MIN_SECONDS * SR:
                query, group = HELDOUT_EFFECTS[c.caption]
                by_query.setdefault(query, (group, [], c.caption))[1].append(c.samples)
        for query, (group, xs, caption) in by_query.items():
            label = "traffic" if query == "traffic" else caption
            sources.append(Source(f"lincity {label}", query, group, "heldout", _clip_maker(xs), clips=len(xs)))
        music = [c.samples for c in clips if c.kind == "music"]
        if music:
            sources.append(Source("music", "music", "music", "heldout", _clip_maker(music), clips=len(music)))
        speech = [c.samples for c in clips if c.kind == "speech" and len(c.samples) >= SPEECH_MIN_SECONDS * SR]
        if speech:
            sources.append(Source("speech", SPEECH_QUERY, "voice", "heldout", _clip_maker(speech), target=False,
                                  clips=len(speech)))
    return sources


def grounded(sources: list[Source], ground) -> tuple[list[Source], dict[str, str]]:
    """The sources whose query `ground` accepts, and {query: why not} for the others."""
    from soundtok_cli.errors import UsageError

    if ground is None:
        return sources, {}
    refused = {}
    for s in sources:
        if s.query not in refused:
            try:
                ground([s.query])
            except UsageError as error:  # not grounded: the model knows nothing like it
                refused[s.query] = str(error)
    return [s for s in sources if s.query not in refused], refused


def trained_sources(corpus: str, ground) -> tuple[list[Source], dict[str, np.ndarray]]:
    """The trained part's sources (module docstring): real training-split sound effects by
    caption, each caption its own group; and each caption's query vector (`ground`'s)."""
    by_caption: dict[str, list[np.ndarray]] = {}
    for c in read_heldout(os.path.join(corpus, "train")):  # every split's index reads the same way
        if c.kind == "sfx" and len(c.samples) >= EFFECT_MIN_SECONDS * SR:
            by_caption.setdefault(c.caption, []).append(c.samples)
    sources, vectors = [], {}
    for caption, xs in sorted(by_caption.items()):
        if len(xs) < TRAINED_MIN_CLIPS:
            continue
        query = ground([caption])[0]
        if query.speech:
            continue
        vectors[caption] = query.vector
        sources.append(Source(f"trained {caption}", caption, caption, "train", _audible_clip_maker(xs), clips=len(xs)))
    return sources, vectors


def effect_mixtures(sources: list[Source], count: int, seed: int | None = None,
                    apart: Callable[[Source, Source], bool] | None = None) -> list[Mixture]:
    """count mixtures per target class: the target and an interferer of another group (or one
    `apart` accepts), 0 dB, 4 s."""
    from soundtok_cli.train.embed_data import BENCH_SYNTH_SEED

    seed = BENCH_SYNTH_SEED if seed is None else seed
    apart = apart or (lambda a, b: a.group != b.group)
    n = int(EFFECT_SECONDS * SR)
    out = []
    for t, src in enumerate(sources):
        if not src.target:
            continue
        others = [s for s in sources if apart(src, s)]
        for i in range(count):
            rng = np.random.default_rng((seed, 2, t, i))
            other = others[int(rng.integers(len(others)))]
            a, b = src.make(rng, n), other.make(rng, n)
            target, mixture = level(a, mix_at_snr(a, b, 0.0))
            out.append(Mixture(src.label, 0.0, target, mixture, src.query, other.query, other.label, src.origin))
    return out


def run_effects(mixtures: list[Mixture], extract: Extract, log=None, stems: Stems | None = None) -> tuple[list[dict], float]:
    """Each mixture asked for its target and for its interferer (the wrong query); with `stems`,
    also split into stems naming both, the target's stem scored (seconds: `extract` only)."""
    records, seconds = [], 0.0
    for k, m in enumerate(mixtures):
        started = time.perf_counter()
        right = extract(m.mixture, m.query)
        wrong = extract(m.mixture, m.wrong_query)
        seconds += time.perf_counter() - started
        record = {"target": m.label, "query": m.query, "origin": m.origin, "interferer": m.interferer,
                  "wrong_query": m.wrong_query, "si_sdr_in": float(si_sdr(m.target, m.mixture)),
                  "improvement": si_sdr_improvement(m.target, right, m.mixture),
                  "wrong_query_improvement": si_sdr_improvement(m.target, wrong, m.mixture)}
        if stems is not None:
            record["stems_improvement"] = si_sdr_improvement(m.target, stems(m.mixture, [m.query, m.wrong_query]), m.mixture)
        records.append(record)
        if log and (k + 1) % 20 == 0:
            log(f"effects: {k + 1}/{len(mixtures)} mixtures")
    return records, seconds


def summarise_effects(records: list[dict]) -> dict:
    def stats(sel):
        out = {"mixtures": len(sel), "si_sdr_in": round(float(np.mean([r["si_sdr_in"] for r in sel])), 2),
               "improvement": round(float(np.mean([r["improvement"] for r in sel])), 2),
               "improvement_median": round(float(np.median([r["improvement"] for r in sel])), 2),
               "wrong_query_improvement": round(float(np.mean([r["wrong_query_improvement"] for r in sel])), 2)}
        if all("stems_improvement" in r for r in sel):
            out["stems_improvement"] = round(float(np.mean([r["stems_improvement"] for r in sel])), 2)
        return out

    rows = []
    for label in dict.fromkeys(r["target"] for r in records):
        sel = [r for r in records if r["target"] == label]
        rows.append({"target": label, "query": sel[0]["query"], "origin": sel[0]["origin"]} | stats(sel))
    averages = {}
    for group, sel in (("all", records), ("synth", [r for r in records if r["origin"] == "synth"]),
                       ("heldout", [r for r in records if r["origin"] == "heldout"]),
                       ("train", [r for r in records if r["origin"] == "train"])):
        if sel:
            averages[group] = stats(sel)
    verdict = {}
    if records:
        mean = averages["all"]["improvement"]
        verdict = {"mean_db": mean, "must_4db": mean >= EFFECTS_MUST_DB, "goal_6db": mean >= EFFECTS_GOAL_DB}
    return {"rows": rows, "averages": averages, "verdict": verdict}


# -- speed -------------------------------------------------------------------------------------


def speed_signal(seconds: float, channels: int) -> np.ndarray:
    """The music-like signal of bench/codec_speed.py (another seed per channel) over pink noise."""
    from bench.codec_speed import music_like
    from soundtok_cli.data import synth

    n = int(seconds * SR)
    rng = np.random.default_rng(0)
    cols = [music_like(0, n, SR, seed=c).astype(np.float64) + 0.02 * unit(synth.pink(rng, n)) for c in range(channels)]
    return np.stack(cols, axis=1) if channels > 1 else cols[0]


def _reset_peak_rss() -> bool:
    """Start the peak-RSS count afresh (Linux: VmHWM, reset through /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss_since_reset() -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def bench_speed(sep, seconds: float = 60.0, repeats: int = 2, log=None) -> dict:
    from bench.codec_speed import peak_rss_mb, rss_mb

    out = {"seconds": seconds, "repeats": repeats, "queries": [SPEECH_QUERY, EFFECT_QUERY], "cases": []}
    for query in out["queries"]:  # warm-up: text tower loaded, first allocations
        sep.extract(speed_signal(2.0, 1), SR, query)
    out["rss_before_mb"] = round(rss_mb(), 1)
    reset = _reset_peak_rss()
    for channels in (1, 2):
        x = speed_signal(seconds, channels)
        for query in out["queries"]:
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                sep.extract(x, SR, query)
                times.append(time.perf_counter() - started)
            case = {"query": query, "channels": channels, "best_seconds": round(min(times), 3),
                    "median_seconds": round(float(np.median(times)), 3), "x_real_time": round(seconds / min(times), 1)}
            out["cases"].append(case)
            if log:
                log(f"speed: {query!r}, {channels} channel(s): {case['x_real_time']}x real time")
    peak = _peak_rss_since_reset() if reset else None
    # the peak while extracting (model, text tower and the test signals in memory); else the
    # process's lifetime peak, which includes the other parts of the run
    out["peak_rss_mb"] = round(peak if peak is not None else peak_rss_mb(), 1)
    out["peak_rss_scope"] = "speed runs" if peak is not None else "process lifetime"
    out["process_peak_rss_mb"] = round(peak_rss_mb(), 1)
    out["target_x_real_time"] = SPEED_TARGET
    out["met"] = all(c["x_real_time"] >= SPEED_TARGET for c in out["cases"])
    return out


# -- report ------------------------------------------------------------------------------------


def _f(v, width=9, sign=True):
    return f"{'-':>{width}s}" if v is None else (f"{v:+{width}.2f}" if sign else f"{v:{width}.2f}")


def format_report(result: dict) -> str:
    lines = [f"soundtok separation benchmark — {result['model']['name']} v{result['model']['version']} "
             f"(weights {result['model']['weights_sha256'][:12]}), {result['threads']} torch thread(s), "
             f"{result['environment']['processor']}"]
    sp = result.get("speech")
    if sp:
        systems = sp["systems"]
        lines += ["", f"Speech in noise: SI-SDR improvement, dB (mean over {sp['settings']['mixtures']} mixtures "
                      f"per background and SNR; query \"{SPEECH_QUERY}\")",
                  f"{'background':16s} {'SNR':>4s} {'SI-SDR in':>9s} " + " ".join(f"{s:>14s}" for s in systems)
                  + (f" {'difference':>10s}" if len(systems) == 2 else "")]
        for r in sp["summary"]["rows"] + [None] + sp["summary"]["averages"]:
            if r is None:
                lines.append("-" * 60)
                continue
            name = r.get("background") or r["group"]
            snr = "both" if r["snr_db"] is None else f"{r['snr_db']:g}"
            vals = [r["improvement"][s] for s in systems]
            line = f"{name:16s} {snr:>4s} {r['si_sdr_in']:9.2f} " + " ".join(_f(v, 14) for v in vals)
            if len(systems) == 2 and None not in vals:
                line += f" {vals[0] - vals[1]:+10.2f}"
            lines.append(line)
        lines.append("x real time (whole mixture loop, informational): "
                     + ", ".join(f"{s} {sp['x_real_time'][s]}" for s in systems))
        v = sp["summary"]["verdict"]
        if "must_within_1db" in v:
            m = v["must_within_1db"]
            lines.append(f"must: within 1 dB of DeepFilterNet3 over all backgrounds: soundtok {m['soundtok']:+.2f} vs "
                         f"{m['DeepFilterNet3']:+.2f} dB -> {'met' if m['met'] else 'NOT met'}")
        if "goal_better_non_stationary" in v:
            g = v["goal_better_non_stationary"]
            lines.append(f"goal: better than DeepFilterNet3 on non-stationary backgrounds ({', '.join(NON_STATIONARY)}): "
                         f"{g['soundtok']:+.2f} vs {g['DeepFilterNet3']:+.2f} dB -> {'met' if g['met'] else 'not met'}")
        if sp.get("deepfilternet_error"):
            lines.append(f"DeepFilterNet3 not run: {sp['deepfilternet_error']}")
    ef = result.get("effects")
    if ef:
        lines += ["", f"Text-queried extraction: SI-SDR improvement of the target, dB (two sounds of different kinds "
                      f"at 0 dB, {EFFECT_SECONDS:g} s; mean over mixtures)",
                  f"{'target':30s} {'query':22s} {'n':>3s} {'SI-SDR in':>9s} {'right query':>11s} {'median':>7s} "
                  f"{'wrong query':>11s} {'both named':>10s}"]

        def row(name, query, r):
            stems = f" {r['stems_improvement']:+10.2f}" if "stems_improvement" in r else ""
            return (f"{name:30s} {query[:22]:22s} {r['mixtures']:3d} {r['si_sdr_in']:9.2f} {r['improvement']:+11.2f} "
                    f"{r['improvement_median']:+7.2f} {r['wrong_query_improvement']:+11.2f}{stems}")

        for r in ef["summary"]["rows"]:
            lines.append(row(r["target"], r["query"], r))
        lines.append("-" * 60)
        for group, a in ef["summary"]["averages"].items():
            lines.append(row({"all": "mean, all", "synth": "mean, procedural", "heldout": "mean, held-out recordings"}[group], "", a))
        v = ef["summary"]["verdict"]
        if v:
            lines.append(f"must: at least {EFFECTS_MUST_DB:g} dB -> {'met' if v['must_4db'] else 'NOT met'}; "
                         f"goal: {EFFECTS_GOAL_DB:g} dB or more -> {'met' if v['goal_6db'] else 'not met'} "
                         f"(mean {v['mean_db']:+.2f} dB)")
        lines.append("wrong query = the same mixture asked for the interferer's description, scored against the target; "
                     "both named = split into stems for the target's and the interferer's descriptions, the target's "
                     "stem scored")
        for query, why in ef["refused"].items():
            lines.append(f"skipped (not grounded): {query!r} — {why}")
        if ef["refused"]:
            lines.append(f"{ef['skipped_mixtures']} mixtures skipped: their target's description was refused")
    tr = result.get("trained")
    if tr:
        a = tr["summary"]["averages"]["all"]
        lines += ["", f"Trained-on recordings (a diagnostic, not a goal): the effects protocol on {len(tr['sources'])} "
                      f"training-split captions, {a['mixtures']} mixtures: right query {a['improvement']:+.2f} dB "
                      f"(median {a['improvement_median']:+.2f}), wrong query {a['wrong_query_improvement']:+.2f}, "
                      f"both named {a.get('stems_improvement', float('nan')):+.2f}"]
    spd = result.get("speed")
    if spd:
        lines += ["", f"Speed: extract(query) on {spd['seconds']:g} s of 48 kHz audio, "
                      f"{result['threads']} torch thread(s), best of {spd['repeats']}"]
        for c in spd["cases"]:
            lines.append(f"{c.get('query', SPEECH_QUERY)!r:10s} {'mono' if c['channels'] == 1 else 'stereo':8s} "
                         f"{c['x_real_time']:8.1f}x real time ({c['best_seconds']:.2f} s)")
        lines.append(f"peak RSS {spd['peak_rss_mb']:.0f} MiB ({spd['peak_rss_scope']}; "
                     f"{spd['rss_before_mb']:.0f} MiB after loading); target {SPEED_TARGET:g}x -> "
                     f"{'met' if spd['met'] else 'NOT met'}")
    return "\n".join(lines)


def _one_blas_thread():
    """numpy's BLAS on one thread (bench/dfn3.py's delay search is 1,900 dot products: OpenBLAS
    threads spinning on a busy 2-core machine made it 50x slower). The thread count, or None."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    threadpool_limits(limits=1, user_api="blas")
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", default="speech,effects,speed",
                        help="comma-separated: speech, effects, speed, trained (a diagnostic, not in the default)")
    parser.add_argument("--mixtures", type=int, default=24, help="speech mixtures per background and SNR")
    parser.add_argument("--effect-mixtures", type=int, default=20, help="mixtures per effect class")
    parser.add_argument("--heldout", default="corpus/heldout")
    parser.add_argument("--corpus", default="corpus", help="the corpus whose training split the trained part reads")
    parser.add_argument("--seed", type=int, help="another draw of the mixtures from the same clips (a robustness check; "
                                                  "default: the benchmark's own seed)")
    parser.add_argument("--no-dfn", action="store_true", help="leave DeepFilterNet3 out")
    parser.add_argument("--mask", choices=("command", "network", "suppressor", "subband"), default="command",
                        help="separate as the command does, or with one of its parts alone")
    parser.add_argument("--speed-seconds", type=float, default=60.0)
    parser.add_argument("--weights", help="score a candidate (an exported separator file) instead of the shipped weights")
    parser.add_argument("--out", help="default bench/results/separation.json (separation-trained.json for the "
                                      "trained part alone)")
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.part.split(",") if p.strip()]
    if not parts or set(parts) - {"speech", "effects", "speed", "trained"}:
        parser.error("--part takes speech, effects, speed and trained, comma-separated")
    if "trained" in parts and not os.path.exists(os.path.join(args.corpus, "train", "index.tsv")):
        parser.error(f"--part trained reads the training split: no {args.corpus}/train/index.tsv (make corpus)")
    if args.out is None:
        args.out = "bench/results/separation-trained.json" if parts == ["trained"] else "bench/results/separation.json"
    if args.mixtures < 1 or args.effect_mixtures < 1 or args.speed_seconds <= 0:
        parser.error("--mixtures, --effect-mixtures and --speed-seconds must be positive")

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    from soundtok_cli.threads import configure_torch_threads

    configure_torch_threads(workers=2)
    import torch

    blas = _one_blas_thread()

    from soundtok_cli.models.registry import load_separator
    from soundtok_cli.separate.stream import run_all

    started = time.perf_counter()
    sep = load_separator(device="cpu", path=args.weights)
    if args.mask == "subband" and sep.speech_net is None:
        parser.error(f"--mask subband: {args.weights} carries no sub-band speech mask")

    def separated(mix: np.ndarray, queries: list[str], mode: str) -> np.ndarray:
        """As the command runs it (`sep.extract` for one description), or the network's masks alone."""
        stage = sep.stage(sep.ground(queries), SR, mode, refine=args.mask != "network")
        return run_all(stage, mix, chunk=stage.chunk)

    def soundtok(mix: np.ndarray, query: str) -> np.ndarray:
        if args.mask in ("suppressor", "subband") and query == SPEECH_QUERY:
            return one_part(mix, args.mask, sep.speech_net)
        return separated(mix, [query], "keep")

    def soundtok_stems(mix: np.ndarray, queries: list[str]) -> np.ndarray:
        return separated(mix[:, None], queries, "stems")[:, 0]

    result = {"benchmark": "separation", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "model": {k: sep.identity[k] for k in ("name", "version", "weights_sha256")},
              "threads": torch.get_num_threads(), "numpy_blas_threads": blas,
              "settings": {"parts": parts, "mixtures": args.mixtures, "effect_mixtures": args.effect_mixtures,
                           "speed_seconds": args.speed_seconds, "heldout": args.heldout, "no_dfn": args.no_dfn,
                           "mask": args.mask, "seed": args.seed,
                           "snrs_db": list(SNRS), "peak": PEAK}}
    clips = read_heldout(args.heldout) if {"speech", "effects"} & set(parts) else None
    if "speech" in parts:
        systems: dict[str, Extract] = {"soundtok": soundtok}
        dfn, dfn_error = None, None
        if not args.no_dfn:
            try:
                from bench.dfn3 import DeepFilterNet3

                dfn = DeepFilterNet3()
                systems["DeepFilterNet3"] = lambda mix, query: dfn.enhance(mix)
            except Exception as error:  # reported in the table and the JSON
                dfn_error = f"{type(error).__name__}: {error}"
        pools = speech_pools(clips)
        log(f"speech: {len(pools.utterances)} utterances; making {len(BACKGROUNDS) * args.mixtures} mixtures x {len(SNRS)} SNRs")
        mixtures = speech_mixtures(pools, args.mixtures, seed=args.seed)
        records, seconds = run_speech(mixtures, systems, log)
        audio = sum(len(m.mixture) for m in mixtures) / SR
        result["speech"] = {"systems": list(systems), "deepfilternet": dfn.version if dfn else None,
                            "deepfilternet_error": dfn_error, "pools": pools.describe(),
                            "settings": {"mixtures": args.mixtures, "backgrounds": list(BACKGROUNDS),
                                         "non_stationary": list(NON_STATIONARY), "snrs_db": list(SNRS)},
                            "audio_seconds": round(audio, 1),
                            "x_real_time": {s: round(audio / max(seconds[s], 1e-9), 1) for s in systems},
                            "summary": summarise_speech(records, list(systems)), "mixtures": records}
    if "effects" in parts:
        sources, refused = grounded(effect_sources(clips), sep.ground)
        mixtures = effect_mixtures(sources, args.effect_mixtures, seed=args.seed)
        skipped = sum(args.effect_mixtures for s in effect_sources(clips) if s.target and s.query in refused)
        log(f"effects: {len(mixtures)} mixtures, {len(refused)} queries refused")
        records, seconds = run_effects(mixtures, soundtok, log, stems=soundtok_stems)
        result["effects"] = {"sources": [{"label": s.label, "query": s.query, "group": s.group, "origin": s.origin,
                                          "target": s.target, "clips": s.clips} for s in sources],
                             "refused": refused, "skipped_mixtures": skipped,
                             "settings": {"mixtures_per_class": args.effect_mixtures, "seconds": EFFECT_SECONDS, "snr_db": 0.0},
                             "summary": summarise_effects(records), "mixtures": records}
    if "trained" in parts:
        sources, vectors = trained_sources(args.corpus, sep.ground)
        mixtures = effect_mixtures(sources, args.effect_mixtures, seed=args.seed,
                                   apart=lambda a, b: float(vectors[a.query] @ vectors[b.query]) < DIFFERENT_CAPTIONS)
        log(f"trained: {len(mixtures)} mixtures of {len(sources)} training-split captions")
        records, _ = run_effects(mixtures, soundtok, log, stems=soundtok_stems)
        summary = summarise_effects(records)
        summary.pop("verdict")
        result["trained"] = {"sources": [{"caption": s.query, "clips": s.clips} for s in sources],
                             "settings": {"mixtures_per_class": args.effect_mixtures, "seconds": EFFECT_SECONDS,
                                          "snr_db": 0.0, "corpus": args.corpus},
                             "summary": summary, "mixtures": records}
    if "speed" in parts:
        # the mixtures (1.7 GB of effects at 20 a class) would count in the peak RSS reported for the separator
        mixtures = None
        result["speed"] = bench_speed(sep, args.speed_seconds, log=log)
    result["environment"] = {"python": platform.python_version(), "torch": torch.__version__,
                             "cpu_count": os.cpu_count(), "processor": cpu_name(),
                             "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY")}
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    write_json(args.out, result)
    print(format_report(result))
    log(f"wrote {args.out} in {result['wall_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
