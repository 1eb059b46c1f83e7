"""Generation: never a loop, fidelity to the prompt, and speed — the goals of `soundtok generate`.

    python -m bench.generate [--minutes 10] [--tokens-cache checkpoints/retrieval-tokens.npz]
                             [--threads N] [--rows 1,4,16] [--device auto|cpu|cuda]
                             [--json bench/results/generate.json]

Never a loop: for a few prompts, `--minutes` of tokens (default 10) from the generator as shipped
(no-repeat rule on), from the same model and seed with the rule off, and a plain loop of real
held-out material (up to 30 s of clips of the prompt's class from the retrieval benchmark's library,
at the generator's 4 levels) repeated to the same length. Measured on the coarse (level-0) tokens:
the share of 1 s windows (75 frames) whose tokens occur more than once, windows made only of
silence codes left out, and the longest stretch (not all silence) that occurs twice.

Fidelity: each of the retrieval benchmark's class words is a prompt; the generated clips are
embedded from their tokens by the shipped embedder and the library of held-out real clips (the
retrieval benchmark's 1,454, tokens cache) is ranked by each clip's best window (kept so the figures
compare with earlier runs; `soundtok search` now also weighs the whole clip). Precision@10 of the
prompted class, next to the class' share of the library (a random ranking) and to real clips of that
class as queries (leave-one-out, also at 4 levels): the ceiling the embedder allows. And text
agreement: does the generated clip's audio embedding rank its own prompt first among the class
words? The same clips, decoded, also give the level the model generates at (RMS and peak dBFS;
`generate -o x.wav` normalises, a token stream decoded elsewhere does not).

One-shots: for a few one-shot prompts, 2 s takes as `generate -d 2s` makes them and as
`generate --one-shot -d 2s` cuts them (the same tokens): how long until the sound arrives, how loud
the first and last 10 ms are next to the loudest.

Speed: frames made per second as x real time (75 frames = 1 s), for 1, 4 and 16 rows at once (`--rows`), with
guidance (the default, 5.0) and without (1.0); and one item end to end (generate, then decode to
48 kHz audio with the codec).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import datetime, timezone

import numpy as np

from bench.results import cpu_name, write_json
from soundtok_cli.generate import DEFAULT_GUIDANCE

PROMPTS = {  # prompt -> the class whose real clips make the plain loop
    "rain on a tin roof": "water",
    "wind in the trees": "wind",
    "a crackling campfire": "fire",
}
LOOP_SECONDS = 30.0
WINDOW_SECONDS = 1.0
TOP_K = 10
EMBED_WINDOW, EMBED_HOP = 2.0, 1.0      # the embedder's defaults, as soundtok search --like uses them
SPEED_ROWS = (1, 4, 16)
GUIDANCE = DEFAULT_GUIDANCE             # the sampler's default
PARTS = ("repetition", "fidelity", "oneshot", "speed")
_HASH_BASE = np.uint64(0x9E3779B97F4A7C15)


# ---------------------------------------------------------------------------------------------
# never a loop

def repeated_windows(coarse: np.ndarray, window: int, silence) -> dict:
    """Windows of `window` consecutive tokens that are not all silence, and how many of them have
    tokens that occur at least twice (at any two positions, overlapping included)."""
    coarse = np.ascontiguousarray(coarse, np.uint16)
    total = max(0, len(coarse) - window + 1)
    if total == 0:
        return {"windows": 0, "silent_windows": 0, "repeated": 0, "share": 0.0}
    loud = np.concatenate([[0], np.cumsum(~np.isin(coarse, list(silence)))])
    keep = (loud[window:] - loud[:-window]) > 0
    windows = np.lib.stride_tricks.sliding_window_view(coarse, window)[keep]
    as_bytes = np.ascontiguousarray(windows).view(np.dtype((np.void, 2 * window)))[:, 0]
    _, inverse, counts = np.unique(as_bytes, return_inverse=True, return_counts=True)
    repeated = int((counts[inverse] > 1).sum())
    considered = int(keep.sum())
    return {"windows": considered, "silent_windows": total - considered, "repeated": repeated,
            "share": repeated / considered if considered else 0.0}


def _has_repeat(tokens: np.ndarray, length: int, loud: np.ndarray, inverse: np.ndarray, prefix: np.ndarray) -> bool:
    """Whether some stretch of `length` tokens, not all silence, occurs twice. Stretches are
    grouped by a polynomial hash (mod 2^64), then compared token by token."""
    starts = np.flatnonzero((loud[length:] - loud[:-length]) > 0)
    keys = (prefix[starts + length] - prefix[starts]) * inverse[starts]
    order = np.argsort(keys, kind="stable")
    _, first, counts = np.unique(keys[order], return_index=True, return_counts=True)
    for f, c in zip(first[counts > 1], counts[counts > 1]):
        members = list(starts[order[f : f + c]])
        while len(members) > 1:  # the same key: equal tokens, unless two stretches collide
            head = tokens[members[0] : members[0] + length]
            others = [m for m in members[1:] if not np.array_equal(tokens[m : m + length], head)]
            if len(others) < len(members) - 1:
                return True
            members = others
    return False


def longest_repeat(coarse: np.ndarray, silence) -> int:
    """Frames in the longest stretch of tokens, not all silence, that occurs twice (0: none)."""
    tokens = np.asarray(coarse, np.uint64)
    n = len(tokens)
    if n < 2:
        return 0
    loud = np.concatenate([[0], np.cumsum(~np.isin(coarse, list(silence)))])
    # window hashes sum(t[s + j] * B^j) = (prefix[s + L] - prefix[s]) * B^-s, in wrapping uint64 arithmetic
    inverse_base = np.uint64(pow(int(_HASH_BASE), -1, 2**64))
    powers = np.cumprod(np.concatenate([[np.uint64(1)], np.full(n - 1, _HASH_BASE)]), dtype=np.uint64)
    inverse = np.cumprod(np.concatenate([[np.uint64(1)], np.full(n - 1, inverse_base)]), dtype=np.uint64)
    prefix = np.concatenate([[np.uint64(0)], np.cumsum((tokens + np.uint64(1)) * powers, dtype=np.uint64)])
    # a repeated stretch that is not all silence holds a shorter one at either end: the answer is monotone
    lo, hi = 0, n
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _has_repeat(tokens, mid, loud, inverse, prefix):
            lo = mid
        else:
            hi = mid
    return lo


def repetition_figures(coarse: np.ndarray, window: int, silence, frame_rate: float) -> dict:
    figures = repeated_windows(coarse, window, silence)
    longest = longest_repeat(coarse, silence)
    return {**figures, "seconds": len(coarse) / frame_rate, "longest_repeat_frames": longest,
            "longest_repeat_seconds": longest / frame_rate}


def loop_material(library, cls: str, frames: int, levels: int) -> tuple[np.ndarray, int]:
    """Up to `frames` frames of real (not procedural) clips of class `cls`, longest first, at `levels`."""
    sources, labels, codes, _ = library
    real = [c for s, lab, c in zip(sources, labels, codes) if cls in lab and not s.startswith("synth:")]
    if not real:
        raise SystemExit(f"the library holds no real clips of class '{cls}' to loop")
    real.sort(key=len, reverse=True)
    parts, have = [], 0
    for c in real:
        if have >= frames:
            break
        parts.append(c[: frames - have, :levels])
        have += len(parts[-1])
    return np.concatenate(parts), len(parts)


def looped(material: np.ndarray, frames: int) -> np.ndarray:
    return np.concatenate([material] * -(-frames // len(material)))[:frames]


def generate_long(generator, conditions: np.ndarray, frames: int, seed: int, no_repeat: bool) -> tuple[np.ndarray, int]:
    """(rows, frames, levels) tokens with the default settings, and the no-repeat interventions."""
    stats: dict = {}
    chunks = list(generator.stream(conditions, frames, seed=seed, no_repeat=no_repeat, stats=stats))
    return np.concatenate(chunks, axis=1), int(stats.get("no_repeat_interventions", 0))


def bench_repetition(generator, prompts: dict[str, str], vectors: np.ndarray, library, minutes: float, seed: int,
                     log) -> dict:
    rate = generator.frame_rate
    frames = round(minutes * 60 * rate)
    window = round(WINDOW_SECONDS * rate)
    silence = generator.silence
    out: dict = {"minutes": minutes, "window_frames": window, "silence_codes": sorted(silence), "prompts": {}}
    runs = {}
    for name, no_repeat in (("rule on", True), ("rule off", False)):
        log(f"repetition: {len(prompts)} prompts x {minutes:g} min, no-repeat {name}")
        started = time.perf_counter()
        tokens, interventions = generate_long(generator, vectors, frames, seed, no_repeat)
        runs[name] = tokens
        out[name] = {"interventions": interventions, "wall_seconds": time.perf_counter() - started}
    for row, (prompt, cls) in enumerate(prompts.items()):
        material, clips = loop_material(library, cls, round(LOOP_SECONDS * rate), generator.levels)
        entry = {name: repetition_figures(runs[name][row, :, 0], window, silence, rate) for name in runs}
        entry["loop"] = {**repetition_figures(looped(material, frames)[:, 0], window, silence, rate),
                         "material_class": cls, "material_clips": clips, "material_seconds": len(material) / rate}
        out["prompts"][prompt] = entry
    return out


# ---------------------------------------------------------------------------------------------
# fidelity

def precision_at_k(scores: np.ndarray, relevant: np.ndarray, k: int, exclude: np.ndarray | None = None) -> np.ndarray:
    """Per query: relevant clips among the k best scored, over k; `exclude` (per query, a clip
    index) leaves the query's own clip out of its ranking."""
    scores = np.array(scores, np.float64)
    if exclude is not None:
        scores[np.arange(len(scores)), exclude] = -np.inf
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    hits = relevant[top]
    if exclude is not None:
        hits &= top != np.asarray(exclude)[:, None]
    return hits.sum(axis=1) / k


def own_rank(similarity: np.ndarray, own: np.ndarray) -> np.ndarray:
    """1-based rank of each row's own column among its columns (1: the own column scores highest)."""
    return (similarity > similarity[np.arange(len(own)), own][:, None]).sum(axis=1) + 1


def item_vectors(embedder, codes: list[np.ndarray], frame_rate: float) -> np.ndarray:
    return np.stack([embedder.embed_item(c, len(c) / frame_rate, EMBED_WINDOW, EMBED_HOP)[2] for c in codes])


def embed_library(embedder, codec_identity: dict, library):
    from soundtok_cli.io.store import Batch

    sources, _, codes, durations = library
    batch = Batch.tokens(codec_identity, "bench", source=sources, channel=[0] * len(sources),
                         sample_rate=[48000] * len(sources), duration=durations,
                         content_hash=[str(i) for i in range(len(sources))], codes=codes)
    return embedder.embed_batch(batch, EMBED_WINDOW, EMBED_HOP)


def output_levels(codec, tokens: np.ndarray) -> dict:
    """RMS and peak (dBFS) of generated token items decoded by `codec` at 48 kHz, as a token stream
    decoded elsewhere sounds (no normalisation)."""
    rms, peak = [], []
    for codes in tokens:
        audio = np.concatenate(list(codec.decode(codes))).astype(np.float64)
        rms.append(10 * np.log10(np.mean(audio ** 2) + 1e-20))
        peak.append(20 * np.log10(np.max(np.abs(audio)) + 1e-10))
    rms, peak = np.array(rms), np.array(peak)
    return {"rms_dbfs_median": float(np.median(rms)), "rms_dbfs_p10": float(np.percentile(rms, 10)),
            "rms_dbfs_p90": float(np.percentile(rms, 90)), "peak_dbfs_median": float(np.median(peak)),
            "peak_dbfs_max": float(peak.max())}


def bench_fidelity(generator, embedder, embedded, library, classes: list[str], class_vectors: np.ndarray,
                   samples: int, seconds: float, seed: int, log, codec=None) -> dict:
    """Generated clips per class word against the library `embedded` (its labels in `library`);
    with `codec`, also the level of the generated clips decoded."""
    from bench.retrieval import clip_scores

    rate = generator.frame_rate
    labels = library[1]
    n = len(labels)
    member = np.array([[c in lab for lab in labels] for c in classes])          # (classes, clips)
    frames = round(seconds * rate)
    log(f"fidelity: {len(classes)} class words x {samples} clips of {seconds:g} s")
    started = time.perf_counter()
    conditions = np.repeat(class_vectors, samples, axis=0)
    tokens = np.concatenate(list(generator.stream(conditions, frames, seed=seed)), axis=1)
    generate_s = time.perf_counter() - started
    asked = np.repeat(np.arange(len(classes)), samples)
    generated = item_vectors(embedder, list(tokens), rate)

    log(f"fidelity: real clips as queries at {generator.levels} levels (leave-one-out)")
    real_rows = [(ci, i) for ci in range(len(classes)) for i in np.flatnonzero(member[ci])]
    real_clips = sorted({i for _, i in real_rows})
    real_vectors = dict(zip(real_clips, item_vectors(embedder, [library[2][i][:, : generator.levels]
                                                                for i in real_clips], rate)))
    real = np.stack([real_vectors[i] for _, i in real_rows])
    real_class = np.array([ci for ci, _ in real_rows])
    real_self = np.array([i for _, i in real_rows])

    out: dict = {"samples": samples, "seconds": seconds, "library_clips": n, "k": TOP_K,
                 "generate_seconds": generate_s, "classes": {}}
    text_generated = own_rank(generated @ class_vectors.T, asked)
    text_real = own_rank(real @ class_vectors.T, real_class)
    for ci, cls in enumerate(classes):
        mine, real_mine = generated[asked == ci], real_class == ci
        cosines = mine @ class_vectors.T
        entry = {"library_clips": int(member[ci].sum()), "random": float(member[ci].mean()),
                 "text_rank1_generated": float(np.mean(text_generated[asked == ci] == 1)),
                 "text_rank1_real": float(np.mean(text_real[real_mine] == 1)),
                 "text_cosine_own": float(cosines[:, ci].mean()),
                 "text_cosine_others": float(np.delete(cosines, ci, axis=1).mean())}
        for ranking in ("segment", "item"):
            entry[f"precision_generated_{ranking}"] = float(precision_at_k(
                clip_scores(mine, embedded, ranking), member[ci], TOP_K).mean())
            entry[f"precision_real_{ranking}"] = float(precision_at_k(
                clip_scores(real[real_mine], embedded, ranking), member[ci], TOP_K, real_self[real_mine]).mean())
        out["classes"][cls] = entry
    per_class = list(out["classes"].values())
    out["mean"] = {key: float(np.mean([e[key] for e in per_class])) for key in per_class[0] if key != "library_clips"}
    out["text_rank_generated_mean"] = float(text_generated.mean())
    if codec is not None:
        out["level"] = output_levels(codec, tokens)
    return out


# ---------------------------------------------------------------------------------------------
# one-shots

ONE_SHOT_PROMPTS = ("a door slams", "a gunshot", "an explosion", "a dog barks", "glass breaking",
                    "a hand clap", "knocking on a door", "a metal hit")
ONE_SHOT_SECONDS = 2.0
ENVELOPE_SECONDS = 0.01


def shot_figures(audio: np.ndarray, rate: int) -> dict:
    """Where a clip's sound is, by a 10 ms RMS envelope: the lead-in (time until the level first
    comes within 20 dB of the clip's loudest 10 ms), the first 10 ms and the last 10 ms relative
    to that loudest (an abrupt end at a high level clicks)."""
    hop = int(ENVELOPE_SECONDS * rate)
    frames = len(audio) // hop
    level = 10 * np.log10(np.mean(audio[: frames * hop].astype(np.float64).reshape(frames, hop) ** 2, axis=1) + 1e-20)
    top = level.max()
    return {"lead_in_s": float(np.argmax(level >= top - 20) * ENVELOPE_SECONDS),
            "first_db": float(level[0] - top), "last_db": float(level[-1] - top)}


def bench_one_shot(generator, codec, vectors: np.ndarray, samples: int, seed: int, log) -> dict:
    """`generate -d 2s` against `generate --one-shot -d 2s` on one-shot prompts: the same tokens
    (a one-shot is made 1 s longer; a take's first frames do not depend on its length), the plain
    clip its first 2 s, the one-shot cut by generate/oneshot.py."""
    from soundtok_cli.generate.oneshot import SEARCH_SECONDS, one_shot

    rate = generator.frame_rate
    frames = round((ONE_SHOT_SECONDS + SEARCH_SECONDS) * rate)
    log(f"one-shots: {len(ONE_SHOT_PROMPTS)} prompts x {samples} takes of {ONE_SHOT_SECONDS:g} s")
    rows = {"plain": [], "one-shot": []}
    for vector in vectors:
        tokens = np.concatenate(list(generator.stream(np.repeat(vector[None], samples, axis=0), frames, seed=seed)),
                                axis=1)
        for codes in tokens:
            audio = np.concatenate(list(codec.decode(codes)))
            rows["plain"].append(shot_figures(audio[: int(ONE_SHOT_SECONDS * 48000)], 48000))
            rows["one-shot"].append(shot_figures(one_shot(audio, 48000, ONE_SHOT_SECONDS), 48000))
    out = {"prompts": list(ONE_SHOT_PROMPTS), "takes": samples, "seconds": ONE_SHOT_SECONDS}
    for name, figures in rows.items():
        lead = np.array([f["lead_in_s"] for f in figures])
        out[name] = {"lead_in_median_s": float(np.median(lead)), "lead_in_p90_s": float(np.percentile(lead, 90)),
                     "lead_in_over_100ms": float(np.mean(lead > 0.1)),
                     "first_10ms_db_median": float(np.median([f["first_db"] for f in figures])),
                     "last_10ms_db_median": float(np.median([f["last_db"] for f in figures])),
                     "last_10ms_over_minus_40db": float(np.mean([f["last_db"] > -40 for f in figures]))}
    return out


# ---------------------------------------------------------------------------------------------
# speed

def timed(generator, conditions: np.ndarray, frames: int, guidance: float) -> float:
    started = time.perf_counter()
    for _ in generator.stream(conditions, frames, guidance=guidance):
        pass
    return time.perf_counter() - started


def bench_speed(generator, codec, condition: np.ndarray, seconds: float, repeats: int, rows_list, log) -> dict:
    rate = generator.frame_rate
    frames = round(seconds * rate)
    timed(generator, condition[None], frames, GUIDANCE)  # warm-up: the first runs of a process are slower
    cases = []
    for rows in rows_list:
        for guidance in (GUIDANCE, 1.0):
            log(f"speed: {rows} rows, guidance {guidance:g}, {seconds:g} s x{repeats}")
            times = [timed(generator, np.repeat(condition[None], rows, axis=0), frames, guidance)
                     for _ in range(repeats)]
            best = min(times)
            cases.append({"rows": rows, "guidance": guidance, "seconds": times,
                          "x_realtime": rows * seconds / best, "x_realtime_per_row": seconds / best})
    log(f"speed: one item end to end ({seconds:g} s: generate, decode to 48 kHz) x{repeats}")
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        tokens = np.concatenate(list(generator.stream(condition[None], frames)), axis=1)[0]
        generate_s = time.perf_counter() - started
        audio = np.concatenate(list(codec.decode(tokens)))
        runs.append((time.perf_counter() - started, generate_s, len(audio)))
    total_s, generate_s, samples = min(runs)
    end_to_end = {"seconds": seconds, "samples": int(samples), "generate_seconds": generate_s,
                  "decode_seconds": total_s - generate_s, "x_realtime": seconds / total_s,
                  "generate_x_realtime": seconds / generate_s, "decode_x_realtime": seconds / (total_s - generate_s),
                  "total_seconds": [r[0] for r in runs]}
    return {"seconds": seconds, "repeats": repeats, "cases": cases, "end_to_end": end_to_end}


# ---------------------------------------------------------------------------------------------

def checkpoint_generator(path: str, codec, device: str):
    """A trainer checkpoint (checkpoints/generate/latest.pt) as a generator, the way export ships it."""
    import torch

    from soundtok_cli.generate.model import LMConfig, TokenLM
    from soundtok_cli.generate.sampler import TokenGenerator
    from soundtok_cli.generate.silence import silence_codes
    from soundtok_cli.models.registry import file_sha256

    state = torch.load(path, map_location="cpu", weights_only=True)
    model = TokenLM(LMConfig(**state["config"]))
    model.load_state_dict(state["model"])
    identity = {"name": "soundtok-generate", "version": f"checkpoint step {state['step']}",
                "weights_sha256": file_sha256(path), "codec": codec.describe(model.config.levels)}
    return TokenGenerator(model, identity, silence_codes(codec), device)


def format_report(result: dict) -> str:
    lines = [f"generation: {result['model']['name']} {result['model']['version']} "
             f"(weights {result['model']['weights_sha256'][:12]}), device {result['device']}, "
             f"{result['threads']} threads, {result['environment']['processor']}"]
    rep = result.get("repetition")
    if rep:
        lines += ["", f"never a loop: {rep['minutes']:g} min per prompt; coarse tokens, {rep['window_frames']}-frame "
                      "(1 s) windows, windows of silence only left out",
                  f"{'prompt':<22} {'tokens':<24} {'repeated windows':>18} {'share':>7} {'longest repeat':>15}"]
        for prompt, entry in rep["prompts"].items():
            loop = entry["loop"]
            names = {"rule on": "generator (as shipped)", "rule off": "no-repeat rule off",
                     "loop": f"loop of {loop['material_seconds']:.0f} s real ({loop['material_clips']})"}
            for i, (key, label) in enumerate(names.items()):
                r = entry[key]
                lines.append(f"{prompt if i == 0 else '':<22} {label:<24} {r['repeated']:>8} / {r['windows']:<7} "
                             f"{r['share']:>7.3f} {r['longest_repeat_seconds']:>13.2f} s")
        lines.append(f"the no-repeat rule intervened on {rep['rule on']['interventions']} frames in all "
                     f"({len(rep['prompts'])} prompts); loop: real held-out clips of the prompt's class (how many "
                     "in parentheses) repeated to the same length")
    fid = result.get("fidelity")
    if fid:
        lines += ["", f"fidelity: {fid['samples']} clips x {fid['seconds']:g} s per class word; precision@{fid['k']} "
                      f"of the prompted class among {fid['library_clips']} held-out real clips (best window)",
                  f"{'class':<15} {'clips':>5} {'random':>7} {'generated':>10} {'real (LOO)':>11}   "
                  f"{'text rank 1: generated':>22} {'real':>6}"]
        rows = list(fid["classes"].items()) + [("mean", fid["mean"])]
        for cls, e in rows:
            clips = e.get("library_clips", "")
            lines.append(f"{cls:<15} {clips:>5} {e['random']:>7.3f} {e['precision_generated_segment']:>10.3f} "
                         f"{e['precision_real_segment']:>11.3f}   {e['text_rank1_generated']:>22.2f} "
                         f"{e['text_rank1_real']:>6.2f}")
        m = fid["mean"]
        lines.append(f"by item vector: generated {m['precision_generated_item']:.3f}, real "
                     f"{m['precision_real_item']:.3f}; text cosine of generated clips to their prompt "
                     f"{m['text_cosine_own']:.3f}, to the other class words {m['text_cosine_others']:.3f}; "
                     f"mean rank of the prompt {fid['text_rank_generated_mean']:.1f} of {len(fid['classes'])} "
                     f"(random: rank 1 {1 / len(fid['classes']):.3f})")
        if "level" in fid:
            lv = fid["level"]
            lines.append(f"level of the generated clips decoded (no normalisation): RMS median "
                         f"{lv['rms_dbfs_median']:.1f} dBFS (10-90 %: {lv['rms_dbfs_p10']:.1f} to {lv['rms_dbfs_p90']:.1f}), "
                         f"peak median {lv['peak_dbfs_median']:.1f} dBFS, highest {lv['peak_dbfs_max']:.1f} dBFS")
    shot = result.get("oneshot")
    if shot:
        lines += ["", f"one-shots: {len(shot['prompts'])} prompts x {shot['takes']} takes of {shot['seconds']:g} s "
                      "(10 ms envelope; lead-in: until within 20 dB of the loudest 10 ms)",
                  f"{'':<22} {'lead-in median':>14} {'90th pct':>9} {'> 100 ms':>9} {'first 10 ms':>12} "
                  f"{'last 10 ms':>11} {'last > -40 dB':>14}"]
        for name, label in (("plain", "generate -d 2s"), ("one-shot", "generate --one-shot")):
            r = shot[name]
            lines.append(f"{label:<22} {r['lead_in_median_s']:>12.3f} s {r['lead_in_p90_s']:>7.3f} s "
                         f"{r['lead_in_over_100ms']:>9.2f} {r['first_10ms_db_median']:>9.1f} dB "
                         f"{r['last_10ms_db_median']:>8.1f} dB {r['last_10ms_over_minus_40db']:>14.2f}")
    sp = result.get("speed")
    if sp:
        lines += ["", f"speed: x real time ({sp['seconds']:g} s per row, best of {sp['repeats']}; all rows together / "
                      "each row)",
                  f"{'rows':>4} {'guidance':>9} {'together':>10} {'each row':>10}"]
        for c in sp["cases"]:
            guidance = f"{c['guidance']:.1f}" if c["guidance"] != 1.0 else "off"
            lines.append(f"{c['rows']:>4} {guidance:>9} {c['x_realtime']:>9.1f}x {c['x_realtime_per_row']:>9.1f}x")
        e = sp["end_to_end"]
        lines.append(f"end to end, one item of {e['seconds']:g} s (best run): generate {e['generate_x_realtime']:.1f}x, decode to "
                     f"48 kHz {e['decode_x_realtime']:.1f}x, together {e['x_realtime']:.1f}x real time")
        if result["device"] != "cuda":
            lines.append("no GPU measured: " + ("none is present" if not result["environment"]["cuda_available"]
                                                 else "run with --device cuda"))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.generate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of each long generation (repetition)")
    parser.add_argument("--samples", type=int, default=4, help="generated clips per class word (fidelity)")
    parser.add_argument("--clip-seconds", type=float, default=5.0, help="length of each generated clip (fidelity)")
    parser.add_argument("--speed-seconds", type=float, default=10.0, help="audio per row in each speed run")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per speed case; the best counts")
    parser.add_argument("--rows", default=",".join(map(str, SPEED_ROWS)),
                        help="rows generated at once in the speed cases, comma-separated (takes, or prompts)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--parts", default=",".join(PARTS), help="which measurements, comma-separated")
    parser.add_argument("--checkpoint", help="score a trainer checkpoint (checkpoints/generate/latest.pt) "
                        "instead of the shipped weights")
    parser.add_argument("--corpus", default="corpus", help="corpus for the held-out clips when not cached")
    parser.add_argument("--tokens-cache", default="checkpoints/retrieval-tokens.npz",
                        help="the retrieval benchmark's encoded clips (made from --corpus when missing)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="torch threads (soundtok generate uses all cores)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (auto picks CUDA when present)")
    parser.add_argument("--json", default="bench/results/generate.json")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if not parts or set(parts) - set(PARTS):
        parser.error(f"--parts takes {', '.join(PARTS)}")
    try:
        rows = [int(r) for r in args.rows.split(",")]
    except ValueError:
        rows = []
    if not rows or min(rows) < 1:
        parser.error("--rows takes positive whole numbers, comma-separated (e.g. 1,4,16)")
    if args.minutes <= 0 or args.samples < 1 or args.clip_seconds <= 0 or args.speed_seconds <= 0 \
            or args.repeats < 1 or args.threads < 1:
        parser.error("--minutes, --samples, --clip-seconds, --speed-seconds, --repeats and --threads must be positive")

    def log(message: str) -> None:
        if not args.quiet:
            print(message, file=sys.stderr, flush=True)

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    from bench.retrieval import CLASSES, encode_clips, load_tokens, save_tokens
    from soundtok_cli.embed.text import encode_queries
    from soundtok_cli.errors import UsageError
    from soundtok_cli.models.registry import load_codec, load_embedder, load_generator, pick_device

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    device = pick_device(args.device)
    codec = load_codec(device=device)
    if args.checkpoint:
        generator = checkpoint_generator(args.checkpoint, codec, device)
    else:
        try:
            generator = load_generator(device=device)
        except (FileNotFoundError, UsageError) as e:
            parser.error(f"no generator weights ({e}); score a training checkpoint with --checkpoint")
    result: dict = {"benchmark": "generate", "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "model": {k: generator.identity[k] for k in ("name", "version", "weights_sha256")},
                    "device": device, "threads": args.threads, "seed": args.seed}

    library = None
    if "repetition" in parts or "fidelity" in parts:
        if os.path.exists(args.tokens_cache):
            library = load_tokens(args.tokens_cache)
        else:
            log(f"encoding the held-out clips of {args.corpus} (once; kept in {args.tokens_cache})")
            library = encode_clips(codec, args.corpus)
            save_tokens(args.tokens_cache, *library)
    classes = list(CLASSES)
    vectors = encode_queries(list(PROMPTS) + classes)
    prompt_vectors, class_vectors = vectors[: len(PROMPTS)], vectors[len(PROMPTS) :]

    if "repetition" in parts:
        result["repetition"] = bench_repetition(generator, PROMPTS, prompt_vectors, library, args.minutes,
                                                args.seed, log)
    if "fidelity" in parts:
        embedder = load_embedder(device=device)
        log(f"fidelity: embedding {len(library[0])} library clips")
        embedded = embed_library(embedder, codec.describe(library[2][0].shape[1]), library)
        result["fidelity"] = bench_fidelity(generator, embedder, embedded, library, classes, class_vectors,
                                            args.samples, args.clip_seconds, args.seed, log, codec=codec)
    if "oneshot" in parts:
        result["oneshot"] = bench_one_shot(generator, codec, encode_queries(list(ONE_SHOT_PROMPTS)), args.samples,
                                           args.seed, log)
    if "speed" in parts:
        result["speed"] = bench_speed(generator, codec, prompt_vectors[0], args.speed_seconds, args.repeats,
                                      rows, log)
    result["environment"] = {"python": platform.python_version(), "torch": torch.__version__,
                             "cpu_count": os.cpu_count(), "processor": cpu_name(),
                             "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
                             "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
                             "cuda_available": torch.cuda.is_available(),
                             "cuda_device": torch.cuda.get_device_name() if device == "cuda" else None}
    result["wall_seconds"] = time.perf_counter() - started
    write_json(args.json, result)
    print(format_report(result))
    print(f"\nwrote {args.json} in {result['wall_seconds']:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
