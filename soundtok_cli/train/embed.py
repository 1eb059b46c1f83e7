"""`make train-embed`: build the token examples, then train the audio tower (resumable).

    python -m soundtok_cli.train.embed build --corpus corpus --out checkpoints/embed-data
    python -m soundtok_cli.train.embed train --data checkpoints/embed-data --checkpoints checkpoints/embed
        [--init soundtok_cli/models/soundtok-embed-v1.safetensors]   # fine-tune the shipped tower
    python -m soundtok_cli.train.embed export --checkpoints checkpoints/embed
    python -m soundtok_cli.train.embed prototypes --data checkpoints/embed-data
"""

from __future__ import annotations

import argparse
import os
import re
import time

import numpy as np

from soundtok_cli.train import embed_data as data


def build(corpus: str, out: str, passes: int = 1, batch: int = 32) -> None:
    """Encode every shard of examples of the first `passes` passes that is not on disk yet."""
    import torch
    import torch.nn.functional as F

    from soundtok_cli.models.registry import load_codec

    codec = load_codec(device="cpu")
    crops = data.CropSource(corpus)
    os.makedirs(out, exist_ok=True)
    total = data.shard_count(crops)
    for pass_index, shard in ((p, s) for p in range(passes) for s in range(total)):
        name = f"shard-{shard:04d}.npz" if pass_index == 0 else f"shard-p{pass_index}-{shard:04d}.npz"
        path = os.path.join(out, name)
        if os.path.exists(path):
            continue
        started = time.time()
        codes, frames, captions = [], [], []
        pending: list[tuple[np.ndarray, int]] = []

        def flush():
            x = torch.from_numpy(np.stack([p[0] for p in pending]))
            with torch.inference_mode():
                latent = codec.model.encoder(F.pad(x, (data.HOP, data.HOP)))
                codes.append(codec.model.quantizer.encode(latent, data.LEVELS).to(torch.int32).numpy().astype(np.uint16))
            frames.extend(p[1] for p in pending)
            pending.clear()

        for x, caption in data.shard_examples(crops, shard, pass_index):
            pending.append(data.fit(x))
            captions.append(caption)
            if len(pending) == batch:
                flush()
        if pending:
            flush()
        tmp = path + ".tmp.npz"
        np.savez(tmp, codes=np.concatenate(codes), frames=np.array(frames, np.int16), captions=np.array(captions))
        os.replace(tmp, path)
        print(f"pass {pass_index + 1}, shard {shard + 1}/{total}: {len(captions)} examples in {time.time() - started:.0f} s", flush=True)


def code_vectors(codec, levels: int):
    """(levels, codebook, dim): each level's code vectors as the codec decoder receives them."""
    import torch

    out = []
    with torch.no_grad():
        for level in codec.model.quantizer.levels[:levels]:
            codes = torch.arange(codec.config.codebook_size)[None]
            out.append(level.project_out(level.lookup(codes))[0].t())
    return torch.stack(out)


LEVEL_CHOICES = (1, 2, 4, 8)


class Examples:
    """All built shards in memory as the tower's input: per example and per number of levels in
    LEVEL_CHOICES, the pooled codec latent (frames beyond the example's length are zero), with
    its length in pooled frames, caption ids and the captions' sentence embeddings (U, 384).
    The tower's input layer is fixed (the codec's code vectors), so this is computed once."""

    def __init__(self, directory: str, text_cache: str, tower):
        self.directory, self.text_cache, self.tower = directory, text_cache, tower
        self.loaded: list[str] = []
        self.pooled = {k: [] for k in LEVEL_CHOICES}
        self.lengths = np.zeros(0, np.int64)
        self.captions: list[str] = []

    def _pool(self, codes: np.ndarray, frames: np.ndarray) -> None:
        import torch

        ratio = self.tower.frame_ratio
        width = -(-codes.shape[1] // ratio)
        with torch.no_grad():
            for k in LEVEL_CHOICES:
                out = torch.zeros(len(codes), self.tower.config.code_dim, width)
                for n in np.unique(frames):
                    rows = np.flatnonzero(frames == n)
                    x = torch.from_numpy(codes[rows, :n, :k].astype(np.int64))
                    out[rows, :, : -(-n // ratio)] = self.tower.pooled_latent(x)
                self.pooled[k].append(out.to(torch.float16))

    def refresh(self, holdout: str | None = None, only: str | None = None) -> bool:
        names = sorted(n for n in os.listdir(self.directory) if n.endswith(".npz") and ".tmp" not in n
                       and n != holdout and n not in self.loaded and (only is None or n == only))
        for name in names:
            with np.load(os.path.join(self.directory, name)) as f:
                frames = f["frames"].astype(np.int64)
                self._pool(f["codes"], frames)
                self.lengths = np.concatenate([self.lengths, -(-frames // self.tower.frame_ratio)])
                self.captions.extend(str(c) for c in f["captions"])
            self.loaded.append(name)
        if names:
            import torch

            self.inputs = {k: torch.cat(v) for k, v in self.pooled.items()}
            self.pooled = {k: [v] for k, v in self.inputs.items()}
            general = [general_captions(c) for c in self.captions]
            self.unique = sorted(set(self.captions).union(*general))
            index = {c: i for i, c in enumerate(self.unique)}
            self.caption_ids = np.array([index[c] for c in self.captions], np.int64)
            self.general_ids = [[index[g] for g in gs] for gs in general]
            self.text = sentence_vectors(self.unique, self.text_cache)
        return bool(names)

    def pick_captions(self, index: np.ndarray, rng: np.random.Generator, general: float) -> np.ndarray:
        """Each example's own caption, or with probability `general` one of its general ones."""
        ids = self.caption_ids[index].copy()
        for row, i in enumerate(index):
            if self.general_ids[i] and rng.random() < general:
                ids[row] = self.general_ids[i][rng.integers(len(self.general_ids[i]))]
        return ids


_SPEECH = re.compile(r"\bvoice\b|\bspeaking\b|\bsaying\b|narration")
_MUSIC = re.compile(r"^(soft )?music\b|\bmelody\b|\bchords?\b|\bbpm\b")
_DISTANT = re.compile(r"\bdistant\b|far away|in the distance")


_STOPWORDS = frozenset(
    "a an the and with in on of at to for from by as is it its into over under far away distant "
    "quiet faint small large room hall heard times time bpm major minor loud soft sound sounds "
    "voice response when selected background reverberant".split())
_QUOTES = re.compile(r'"[^"]*"')


def keywords(caption: str) -> list[str]:
    """The caption's content words (no quoted text, numbers, note names or function words)."""
    words = re.findall(r"[a-z][a-z-]{2,}", _QUOTES.sub(" ", caption.lower()))
    return [w for w in dict.fromkeys(words) if w not in _STOPWORDS]


def general_captions(caption: str) -> list[str]:
    """Coarser captions that are just as true as `caption`: a search often names only the kind of
    sound ("speech", "music") or one word of it ("rain", "explosion"), not the file's
    particulars. All stay true of mixtures and rooms too: every named sound is in them."""
    out = []
    if _SPEECH.search(caption):
        out += ["speech", "a person speaking", "someone talking", "a voice"]
        if "female" in caption:
            out.append("a woman speaking")
        elif "male" in caption:
            out.append("a man speaking")
    elif _MUSIC.search(caption):
        out += ["music", "a piece of music", "a song"]
    else:
        out += keywords(caption)[:4]
    if out and _DISTANT.search(caption):
        out = [f"{c}, far away" for c in out]
    return out


def sentence_vectors(texts: list[str], cache: str) -> np.ndarray:
    """all-MiniLM-L6-v2 embeddings of texts, cached across runs (captions repeat a lot)."""
    known: dict[str, np.ndarray] = {}
    if os.path.exists(cache):
        with np.load(cache) as f:
            known = dict(zip((str(t) for t in f["texts"]), f["vectors"]))
    missing = [t for t in texts if t not in known]
    if missing:
        from soundtok_cli.embed.text import TextTower

        vectors = TextTower.load().encode(missing)
        known.update(zip(missing, vectors))
        tmp = cache + ".tmp.npz"
        np.savez(tmp, texts=np.array(list(known)), vectors=np.stack(list(known.values())))
        os.replace(tmp, cache)
    return np.stack([known[t] for t in texts]).astype(np.float32)


def contrastive_loss(audio, text, caption_ids, scale):
    """Symmetric InfoNCE where every pair sharing a caption counts as a positive."""
    import torch

    logits = scale * audio @ text.t()
    positive = caption_ids[:, None] == caption_ids[None, :]
    log_a2t = logits.log_softmax(1)
    log_t2a = logits.log_softmax(0)
    a2t = -(torch.logsumexp(log_a2t.masked_fill(~positive, float("-inf")), 1)).mean()
    t2a = -(torch.logsumexp(log_t2a.masked_fill(~positive, float("-inf")), 0)).mean()
    return (a2t + t2a) / 2


GENERAL_CAPTION_SHARE = 0.3


def sample_batch(examples: Examples, rng: np.random.Generator, size: int):
    """Random examples at a random number of levels, each cut to a random 1 to 2 s part a third
    of the time, so short items and low bitrates embed as well as full ones."""
    import torch

    index = rng.choice(len(examples.lengths), size=size, replace=False)
    levels = LEVEL_CHOICES[rng.integers(len(LEVEL_CHOICES))]
    pooled = examples.inputs[levels][index].to(torch.float32)
    lengths = examples.lengths[index].copy()
    for row in np.flatnonzero(rng.random(size) < 1 / 3):
        keep = int(rng.integers(min(lengths[row], 15), lengths[row] + 1))
        start = int(rng.integers(0, lengths[row] - keep + 1))
        pooled[row, :, :keep] = pooled[row, :, start : start + keep].clone()
        pooled[row, :, keep:] = 0
        lengths[row] = keep
    ids = examples.pick_captions(index, rng, GENERAL_CAPTION_SHARE)
    return pooled, torch.from_numpy(lengths), torch.from_numpy(examples.text[ids]), torch.from_numpy(ids)


def validate(model, held: Examples, device: str = "cpu") -> dict:
    """Caption -> audio retrieval over the held-out shard: for each distinct caption, is one of its
    examples among the 10 nearest (R@10), and the median rank of its best example."""
    import torch

    with torch.no_grad():
        audio = torch.cat([model(held.inputs[8][i : i + 256].to(device, torch.float32),
                                 torch.from_numpy(held.lengths[i : i + 256]).to(device)).cpu()
                           for i in range(0, len(held.lengths), 256)]).numpy()
    scores = held.text @ audio.T  # (captions, examples)
    order = np.argsort(-scores, axis=1)
    relevant = held.caption_ids[order] == np.arange(len(held.unique))[:, None]
    best = relevant.argmax(1)
    return {"R@1": float(np.mean(best < 1)), "R@10": float(np.mean(best < 10)),
            "median_rank": float(np.median(best + 1)), "captions": len(held.unique)}


def calibrated_log_scale(model, examples: "Examples", batch: int, device: str) -> float:
    """The log temperature under which `model` (exported weights, which do not keep it) has the
    lowest loss on a few batches: fine-tuning from exported weights then starts where training
    left off instead of at the initial temperature, which would first undo what was learnt."""
    import torch

    rng = np.random.default_rng(0)
    batches = [tuple(t.to(device) for t in sample_batch(examples, rng, batch)) for _ in range(4)]
    with torch.no_grad():
        outputs = [(model(p, n), text, ids) for p, n, text, ids in batches]
        losses = {s: np.mean([contrastive_loss(a, text, ids, torch.tensor(s)).item() for a, text, ids in outputs])
                  for s in (10.0, 14.3, 20.0, 30.0, 45.0, 65.0, 100.0)}
    return float(np.log(min(losses, key=losses.get)))


def train(data_dir: str, checkpoints: str, steps: int, batch: int, lr: float, holdout: str,
          device: str = "cpu", init: str | None = None) -> None:
    import copy

    import torch

    from soundtok_cli.embed.model import AudioTower, TowerConfig
    from soundtok_cli.models.registry import load_codec, pick_device
    from soundtok_cli.train.warm_start import initial_weights

    device = pick_device(device)
    os.makedirs(checkpoints, exist_ok=True)
    model = AudioTower(TowerConfig())
    model.code_vectors.copy_(code_vectors(load_codec(device="cpu"), model.config.max_levels))
    pooler = copy.deepcopy(model)  # the examples are pooled on the CPU (frozen code vectors), whatever the device
    examples = Examples(data_dir, os.path.join(checkpoints, "captions.npz"), pooler)
    examples.refresh(holdout)
    held = Examples(data_dir, os.path.join(checkpoints, "captions.npz"), pooler)
    held.refresh(holdout=None, only=holdout)
    model.to(device)
    print(f"training on {device}", flush=True)
    log_scale = torch.nn.Parameter(torch.tensor(np.log(1 / 0.07), dtype=torch.float32, device=device))
    optimizer = torch.optim.AdamW(list(model.parameters()) + [log_scale], lr=lr, weight_decay=0.01)
    latest = os.path.join(checkpoints, "latest.pt")
    step = 0
    if os.path.exists(latest):
        state = torch.load(latest, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        log_scale.data.fill_(float(state["log_scale"]))
        step = int(state["step"])
    elif init:
        initial_weights(model, init)
        log_scale.data.fill_(calibrated_log_scale(model, examples, batch, device))
        print(f"starting from the weights in {init}, temperature 1/{log_scale.exp().item():.0f}", flush=True)
    rng = np.random.default_rng(step)
    started, losses = time.time(), []
    while step < steps:
        if step % 100 == 0 and examples.refresh(holdout):
            print(f"step {step}: {len(examples.lengths)} examples, {len(examples.unique)} captions", flush=True)
        for group in optimizer.param_groups:
            warm = min(1.0, (step + 1) / 200)
            group["lr"] = float(lr * warm * 0.5 * (1 + np.cos(np.pi * min(1.0, step / steps))))
        pooled, lengths, text, ids = (t.to(device) for t in sample_batch(examples, rng, batch))
        loss = contrastive_loss(model(pooled, lengths), text, ids, log_scale.exp().clamp(max=100))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        step += 1
        if step % 250 == 0 or step == steps:
            model.eval()
            print(f"step {step} validation {validate(model, held, device)}", flush=True)
            model.train()
        if step % 50 == 0 or step == steps:
            print(f"step {step} loss {np.mean(losses):.3f} scale {log_scale.exp().item():.1f} "
                  f"{(time.time() - started) / len(losses):.2f} s/step", flush=True)
            losses, started = [], time.time()
            tmp = latest + ".tmp"
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "log_scale": float(log_scale.detach()), "step": step}, tmp)
            os.replace(tmp, latest)


def export(checkpoints: str, out: str) -> None:
    """The latest checkpoint -> shipped float16 safetensors, with the tower's shape and the codec
    it reads in the metadata."""
    import json

    import torch
    from safetensors.torch import save_file

    from soundtok_cli.embed.model import TowerConfig
    from soundtok_cli.models.registry import load_codec

    state = torch.load(os.path.join(checkpoints, "latest.pt"), map_location="cpu", weights_only=True)
    codec = load_codec(device="cpu").describe(levels=1)
    identity = {k: codec[k] for k in ("name", "version", "weights_sha256", "sample_rate", "frame_rate",
                                      "codebook_size")}
    weights = {k: v.to(torch.float16).contiguous() for k, v in state["model"].items()}
    metadata = {"config": json.dumps(TowerConfig().to_json()), "codec": json.dumps(identity),
                "step": str(state["step"])}
    tmp = out + ".tmp"
    save_file(weights, tmp, metadata=metadata)
    os.replace(tmp, out)
    print(f"wrote {out} ({os.path.getsize(out) / 1e6:.1f} MB) from step {state['step']}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m soundtok_cli.train.embed")
    sub = parser.add_subparsers(dest="step", required=True)
    b = sub.add_parser("build", help="encode captioned crops of the corpus into token shards")
    b.add_argument("--corpus", default="corpus")
    b.add_argument("--out", default="checkpoints/embed-data")
    b.add_argument("--passes", type=int, default=2, help="passes over the corpus (other crops each time)")
    b.add_argument("--threads", type=int, default=2)
    t = sub.add_parser("train", help="train the audio tower on the built shards (resumable)")
    t.add_argument("--data", default="checkpoints/embed-data")
    t.add_argument("--checkpoints", default="checkpoints/embed")
    t.add_argument("--steps", type=int, default=11000)
    t.add_argument("--batch", type=int, default=192)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--holdout", default="shard-0000.npz", help="shard kept out to measure retrieval")
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--device", default="auto", help="auto (CUDA when there is one), cpu or cuda")
    t.add_argument("--init", help="exported weights to start from when there is no checkpoint yet")
    e = sub.add_parser("export", help="write the shipped weights from the latest checkpoint")
    e.add_argument("--checkpoints", default="checkpoints/embed")
    e.add_argument("--out", default="soundtok_cli/models/soundtok-embed-v1.safetensors")
    e.add_argument("--threads", type=int, default=1)
    p = sub.add_parser("prototypes", help="write the caption-sound table that search pulls queries toward "
                       "(run after export: it is tied to the shipped weights)")
    p.add_argument("--data", default="checkpoints/embed-data")
    p.add_argument("--checkpoints", default="checkpoints/embed", help="where the caption text cache lives")
    p.add_argument("--out", default="soundtok_cli/models/soundtok-embed-v1-prototypes.safetensors")
    p.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    if args.step == "build":
        build(args.corpus, args.out, args.passes)
    elif args.step == "train":
        train(args.data, args.checkpoints, args.steps, args.batch, args.lr, args.holdout, args.device, args.init)
    elif args.step == "export":
        export(args.checkpoints, args.out)
    else:
        from soundtok_cli.train.embed_prototypes import build as build_prototypes

        build_prototypes(args.data, args.out, os.path.join(args.checkpoints, "captions.npz"))


if __name__ == "__main__":
    main()
