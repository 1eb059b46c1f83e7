"""`make train-generate`: build the token sequences, train the token language model (resumable), export.

    python -m soundtok_cli.train.generate build --corpus corpus --out checkpoints/generate-data
    python -m soundtok_cli.train.generate train --data checkpoints/generate-data --checkpoints checkpoints/generate
    python -m soundtok_cli.train.generate export --checkpoints checkpoints/generate

Conditioning during training, per sequence: the sentence embedding of its caption (or of a coarser
caption that is just as true, "rain" for "heavy rain with wind in the background"), the audio
embedding of the crop itself (the joint space's audio tower, as AudioLDM trains on CLAP audio
embeddings: captions made from file names are noisy, the audio embedding is not), or nothing (the
null condition, for classifier-free guidance at generation time).
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import time

import numpy as np

P_TEXT, P_AUDIO = 0.45, 0.40          # the rest: the null condition
P_GENERAL = 0.3                       # of text conditions: a coarser true caption
VALID_SHARE = 0.03


def load_sequences(data_dir: str, levels: int):
    codes, frames, captions = [], [], []
    for path in sorted(glob.glob(os.path.join(data_dir, "shard-*.npz"))):
        with np.load(path) as f:
            codes.append(f["codes"][..., :levels])
            frames.append(f["frames"].astype(np.int64))
            captions.extend(str(c) for c in f["captions"])
    if not codes:
        raise SystemExit(f"no shards in {data_dir}: run the build step first")
    return np.concatenate(codes), np.concatenate(frames), captions


def audio_vectors(data_dir: str) -> np.ndarray:
    """Each crop's audio embedding (the shipped embedder on all stored levels), cached in data_dir."""
    cache = os.path.join(data_dir, "audio-vectors.npy")
    if os.path.exists(cache):
        return np.load(cache)
    from soundtok_cli.models.registry import load_embedder

    embedder = load_embedder(device="cpu")
    out = []
    for path in sorted(glob.glob(os.path.join(data_dir, "shard-*.npz"))):
        with np.load(path) as f:
            for codes, n in zip(f["codes"], f["frames"]):
                out.append(embedder.embed_item(codes[: int(n)], int(n) / 75, 2.0, 1.0)[2])
    vectors = np.stack(out).astype(np.float32)
    np.save(cache, vectors)
    return vectors


def caption_choices(captions: list[str]) -> tuple[list[str], list[list[int]]]:
    """Unique texts and, per crop, the ids of its own caption (first) and its coarser ones."""
    from soundtok_cli.train.embed import general_captions

    texts: dict[str, int] = {}
    choices = []
    for caption in captions:
        options = [caption] + general_captions(caption)
        choices.append([texts.setdefault(t, len(texts)) for t in options])
    return list(texts), choices


class Sequences:
    """The built token sequences, split into training and validation, with their conditions:
    batches as the trainer (and `bench.generate_pattern`) draws them."""

    def __init__(self, data_dir: str, checkpoints: str, levels: int, device: str = "cpu"):
        import torch

        from soundtok_cli.train.embed import sentence_vectors

        self.device = device  # where batches and conditions are made (the model's device)
        self.codes, self.frames, captions = load_sequences(data_dir, levels)
        os.makedirs(checkpoints, exist_ok=True)
        self.texts, self.choices = caption_choices(captions)
        text_vectors = sentence_vectors(self.texts, os.path.join(checkpoints, "captions.npz"))
        self.text_vectors = torch.from_numpy(text_vectors).to(device)
        self.sound_vectors = torch.from_numpy(audio_vectors(data_dir)).to(device)
        order = np.random.default_rng(0).permutation(len(self.codes))
        n_valid = max(32, int(len(self.codes) * VALID_SHARE))
        self.valid, self.training = order[:n_valid], order[n_valid:]

    def describe(self) -> str:
        return (f"{len(self.codes)} sequences ({self.frames.sum() / 75 / 3600:.1f} h), {len(self.texts)} captions; "
                f"{len(self.valid)} for validation")

    def conditions(self, index: np.ndarray, pick: np.random.Generator, null):
        """Per sequence: its caption or a coarser one, its own audio embedding, or `null`."""
        import torch

        rows = []
        for i in index:
            r = pick.random()
            if r < P_TEXT:
                ids = self.choices[i]
                chosen = ids[0] if len(ids) == 1 or pick.random() >= P_GENERAL else ids[1 + pick.integers(len(ids) - 1)]
                rows.append(self.text_vectors[chosen])
            elif r < P_TEXT + P_AUDIO:
                rows.append(self.sound_vectors[i])
            else:
                rows.append(null)
        return torch.stack(rows)

    def batch(self, index: np.ndarray, pick: np.random.Generator, seq_frames: int):
        """(codes (B, T, levels), mask (B, T) of real frames): a random window of each sequence."""
        import torch

        levels = self.codes.shape[-1]
        length = int(min(seq_frames, self.frames[index].max()))
        x = np.zeros((len(index), length, levels), np.int64)
        mask = np.zeros((len(index), length), bool)
        for row, i in enumerate(index):
            n = int(self.frames[i])
            start = int(pick.integers(0, max(1, n - length + 1)))
            take = min(length, n - start)
            x[row, :take] = self.codes[i, start : start + take]
            mask[row, :take] = True
        return torch.from_numpy(x).to(self.device), torch.from_numpy(mask).to(self.device)

    def validation_levels(self, model, batch: int, seq_frames: int) -> list[float]:
        """Mean cross-entropy per level (nats) over the validation sequences, each conditioned on
        its own caption; the same windows every time."""
        import torch

        from soundtok_cli.generate.model import lm_loss

        model.eval()
        pick = np.random.default_rng(123)
        totals = torch.zeros(self.codes.shape[-1])
        with torch.no_grad():
            for lo in range(0, len(self.valid), batch):
                index = self.valid[lo : lo + batch]
                x, mask = self.batch(index, pick, seq_frames)
                cond = torch.stack([self.text_vectors[self.choices[i][0]] for i in index])
                totals += lm_loss(model(x, cond), x, mask)[1].cpu() * len(index)
        model.train()
        return (totals / len(self.valid)).tolist()


def learning_rate(lr: float, step: int, steps: int, warmup: int = 100) -> float:
    """Linear warm-up, then a cosine to 5 % of `lr` at `steps`."""
    scale = min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, step / steps)))
    return lr * max(scale, 0.05)


def train_step(model, optimizer, data: Sequences, rng: np.random.Generator, lr: float, step: int, steps: int,
               batch: int, seq_frames: int):
    """One optimiser step on a random batch: (loss, per-level losses, frames trained on)."""
    import torch

    from soundtok_cli.generate.model import lm_loss

    for group in optimizer.param_groups:
        group["lr"] = learning_rate(lr, step, steps)
    index = data.training[rng.integers(len(data.training), size=batch)]
    x, mask = data.batch(index, rng, seq_frames)
    cond = data.conditions(index, rng, model.null.detach())
    loss, per_level = lm_loss(model(x, cond), x, mask)
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    return loss, per_level, int(mask.sum())


def train(data_dir: str, checkpoints: str, steps: int, batch: int, lr: float, seq_frames: int,
          threads: int = 0, device: str = "cpu") -> None:
    import torch

    from soundtok_cli.generate.model import LMConfig, TokenLM
    from soundtok_cli.models.registry import pick_device
    from soundtok_cli.threads import configure_torch_threads

    configure_torch_threads(threads=threads)
    device = pick_device(device)
    config = LMConfig()
    data = Sequences(data_dir, checkpoints, config.levels, device)
    print(data.describe() + f"; training on {device}", flush=True)

    model = TokenLM(config).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    latest = os.path.join(checkpoints, "latest.pt")
    step = 0
    if os.path.exists(latest):
        state = torch.load(latest, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step = state["step"]
        print(f"resumed at step {step}", flush=True)
    rng = np.random.default_rng([1, step])

    started, seen = time.time(), 0
    while step < steps:
        loss, per_level, frames = train_step(model, optimizer, data, rng, lr, step, steps, batch, seq_frames)
        step += 1
        seen += frames
        if step % 25 == 0:
            rate = seen / 75 / (time.time() - started)
            print(f"step {step}: loss {loss.item():.3f} (levels {' '.join(f'{v:.2f}' for v in per_level.tolist())}), "
                  f"{rate:.0f} s of audio per s", flush=True)
        if step % 100 == 0 or step == steps:
            tmp = latest + ".tmp"
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                        "config": config.to_json()}, tmp)
            os.replace(tmp, latest)
        if step % 250 == 0 or step == steps:
            levels = data.validation_levels(model, batch, seq_frames)
            print(f"validation at step {step}: loss {np.mean(levels):.3f} (levels "
                  f"{' '.join(f'{v:.2f}' for v in levels)})", flush=True)
            with open(os.path.join(checkpoints, "validation.jsonl"), "a") as f:
                f.write(json.dumps({"step": step, "loss": float(np.mean(levels)), "levels": levels}) + "\n")


def export(checkpoints: str, out: str) -> None:
    import torch
    from safetensors.torch import save_file

    from soundtok_cli.generate.silence import silence_codes
    from soundtok_cli.models.registry import load_codec

    state = torch.load(os.path.join(checkpoints, "latest.pt"), map_location="cpu", weights_only=True)
    codec = load_codec(device="cpu")
    weights = {k: v.to(torch.float16).contiguous() for k, v in state["model"].items()}
    metadata = {"config": json.dumps(state["config"]), "step": str(state["step"]),
                "codec": json.dumps(codec.describe(state["config"]["levels"])),
                "silence": json.dumps(silence_codes(codec))}
    tmp = out + ".tmp"
    save_file(weights, tmp, metadata=metadata)
    os.replace(tmp, out)
    print(f"wrote {out} ({os.path.getsize(out) / 1e6:.1f} MB) from step {state['step']}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="step", required=True)
    b = sub.add_parser("build")
    b.add_argument("--corpus", default="corpus")
    b.add_argument("--out", default="checkpoints/generate-data")
    t = sub.add_parser("train")
    t.add_argument("--data", default="checkpoints/generate-data")
    t.add_argument("--checkpoints", default="checkpoints/generate")
    t.add_argument("--steps", type=int, default=1600)
    t.add_argument("--batch", type=int, default=12)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--seq-frames", type=int, default=600)
    t.add_argument("--threads", type=int, default=0, help="torch threads (default: every core)")
    t.add_argument("--device", default="auto", help="auto (CUDA when there is one), cpu or cuda")
    e = sub.add_parser("export")
    e.add_argument("--checkpoints", default="checkpoints/generate")
    e.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "models", "soundtok-generate-v2.safetensors"))
    args = parser.parse_args(argv)
    if args.step == "build":
        from soundtok_cli.train.generate_data import build

        build(args.corpus, args.out)
    elif args.step == "train":
        train(args.data, args.checkpoints, args.steps, args.batch, args.lr, args.seq_frames, args.threads, args.device)
    else:
        export(args.checkpoints, os.path.normpath(args.out))


if __name__ == "__main__":
    main()
