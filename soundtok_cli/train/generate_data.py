"""Training sequences for the token language model: captioned crops of up to 8 s, as codec tokens.

Crops come from the corpus' training clips (minus the packages the embedder and the benchmarks keep
out, `embed_data.HELDOUT_PACKAGES`), balanced across kinds so 16 h of music do not drown the
effects, plus fresh procedural sounds of the training synthesis seed (rain, wind, fire, surf,
birdsong...: the ambiences generation is mostly asked for). Crops are encoded once at `LEVELS`
levels and saved in resumable shards; the model trains on tokens only.
"""

from __future__ import annotations

import glob
import json
import os
import time

import numpy as np

from soundtok_cli.data import synth
from soundtok_cli.train import embed_data

SAMPLE_RATE = 48000
HOP = 640
CROP_FRAMES = 600                    # 8 s at 75 frames/s
CROP_SAMPLES = CROP_FRAMES * HOP
LEVELS = 8
SHARD_CROPS = 1024
SYNTH_CROPS = 2500
SYNTH_SEED = 2                       # not embed_data.SYNTH_SEED (1) nor the benchmark seed
# Every crop is scaled to this peak before encoding, as sound libraries deliver their files: the
# model then generates at a working level. Crops kept at their recorded levels (v1 up to step
# 1,100) taught it to generate at -30 to -72 dBFS RMS.
PEAK = 10 ** (-1 / 20)
SILENT = 10 ** (-60 / 20)            # crops quieter than this stay as they are (room tone, fades)
# crops per clip by kind: (first crop, one more per this many seconds, at most)
PLAN = {"music": (1, 60, 2), "sfx": (1, 30, 3), "speech": (0.5, 60, 1), "synth": (1, 30, 2)}


def plan_crops(corpus: str, seed: int = 0) -> list[tuple[int, int]]:
    """(clip index, crop number) pairs, shuffled, then the procedural crops as (-1, n)."""
    rng = np.random.default_rng(seed)
    clips = embed_data.read_clips(corpus)
    plan = []
    for i, clip in enumerate(clips):
        if embed_data.package(clip.source) in embed_data.HELDOUT_PACKAGES:
            continue
        first, per, most = PLAN.get(clip.kind, (1, 30, 2))
        count = min(most, int(first >= 1 or rng.random() < first) + int(clip.length / SAMPLE_RATE // per))
        plan += [(i, k) for k in range(count)]
    plan += [(-1, n) for n in range(SYNTH_CROPS)]
    rng.shuffle(plan)
    return plan


def crop(clips, corpus: str, shards: dict, entry: tuple[int, int]) -> tuple[np.ndarray, str]:
    index, number = entry
    if index < 0:
        rng = np.random.default_rng([SYNTH_SEED, number])
        x, caption = synth.random_sound(rng, SAMPLE_RATE, CROP_SAMPLES / SAMPLE_RATE)
        return np.asarray(x, np.float64), caption
    clip = clips[index]
    if clip.shard not in shards:
        shards[clip.shard] = np.load(os.path.join(corpus, "train", clip.shard), mmap_mode="r")
    audio = shards[clip.shard][clip.offset : clip.offset + clip.length]
    rng = np.random.default_rng([index, number])
    start = int(rng.integers(0, max(1, len(audio) - CROP_SAMPLES + 1)))
    x = np.asarray(audio[start : start + CROP_SAMPLES], np.float64) / 32768.0
    caption = embed_data.spoken_caption(clip.caption, rng) if clip.kind == "speech" else clip.caption
    return x, caption


def peak_normalized(audio: np.ndarray) -> np.ndarray:
    peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
    return audio * (PEAK / peak) if peak > SILENT else audio


def check_recipe(out: str) -> None:
    """Shards are only resumed from a build of the same recipe: a data directory from before crops
    were peak-normalised (or of other levels or lengths) is refused rather than silently mixed."""
    recipe = {"peak_dbfs": round(20 * np.log10(PEAK), 3), "levels": LEVELS, "crop_frames": CROP_FRAMES}
    marker = os.path.join(out, "RECIPE.json")
    if os.path.exists(marker):
        with open(marker) as f:
            found = json.load(f)
        if found != recipe:
            raise SystemExit(f"{out} was built with another recipe ({found}, now {recipe}): remove it or pass --out")
        return
    if glob.glob(os.path.join(out, "shard-*.npz")):
        raise SystemExit(f"{out} holds shards of an older build (crops at their recorded levels): remove it or pass --out")
    os.makedirs(out, exist_ok=True)
    with open(marker, "w") as f:
        json.dump(recipe, f)


def build(corpus: str, out: str, batch: int = 16) -> None:
    """Encode every shard of crops that is not on disk yet (an interrupted build resumes)."""
    import torch
    import torch.nn.functional as F

    from soundtok_cli.models.registry import load_codec

    check_recipe(out)
    codec = load_codec(device="cpu")
    clips = embed_data.read_clips(corpus)
    plan = plan_crops(corpus)
    shards: dict = {}
    total = -(-len(plan) // SHARD_CROPS)
    for shard in range(total):
        path = os.path.join(out, f"shard-{shard:04d}.npz")
        if os.path.exists(path):
            continue
        started = time.time()
        entries = plan[shard * SHARD_CROPS : (shard + 1) * SHARD_CROPS]
        crops = [crop(clips, corpus, shards, e) for e in entries]
        frames = np.array([max(1, min(CROP_FRAMES, -(-len(x) // HOP))) for x, _ in crops], np.int16)
        codes = np.zeros((len(crops), CROP_FRAMES, LEVELS), np.uint16)
        order = np.argsort(frames)  # batches of similar length: little padding to encode
        for lo in range(0, len(order), batch):
            chosen = order[lo : lo + batch]
            n = int(frames[chosen].max())
            x = np.zeros((len(chosen), n * HOP), np.float32)
            for row, i in enumerate(chosen):
                audio = crops[i][0][: n * HOP]
                x[row, : len(audio)] = peak_normalized(audio)
            with torch.inference_mode():
                latent = codec.model.encoder(F.pad(torch.from_numpy(x), (HOP, HOP)))
                c = codec.model.quantizer.encode(latent, LEVELS).to(torch.int32).numpy()
            codes[chosen, :n] = c[:, :n]
        tmp = path + ".tmp.npz"
        np.savez(tmp, codes=codes, frames=frames, captions=np.array([c for _, c in crops]))
        os.replace(tmp, path)
        print(f"shard {shard + 1}/{total}: {len(crops)} crops, {frames.sum() / 75 / 3600:.2f} h "
              f"in {time.time() - started:.0f} s", flush=True)
    with open(os.path.join(out, "READY"), "w") as f:
        f.write(f"{len(plan)} crops\n")

