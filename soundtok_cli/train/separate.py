"""`make train-separate`: train the query-conditioned separation model (resumable), then export it.

    python -m soundtok_cli.train.separate train --corpus corpus --checkpoints checkpoints/separate
    python -m soundtok_cli.train.separate export --checkpoints checkpoints/separate
    python -m soundtok_cli.train.separate train --checkpoints checkpoints/separate-voice \
        --init soundtok_cli/models/soundtok-separate-v3.safetensors --steps 1600 --lr 1e-3 --proximity 0.5
    python -m soundtok_cli.train.separate export-voice --checkpoints checkpoints/separate-voice \
        --separator soundtok_cli/models/soundtok-separate-v3.safetensors --out soundtok_cli/models/soundtok-separate-v3.safetensors

The last two make the voice network, which answers the queries that ask for a voice: the network
fine-tuned with half of the kept voices heard through a close microphone (the model card).

On a GPU, make the mixtures in other processes and take larger batches, e.g. `train --device cuda
--workers 14 --batch 48`; `--init soundtok_cli/models/soundtok-separate-v3.safetensors` carries on
from the shipped weights (a fresh optimizer; `warm_start.py`) instead of starting from scratch.

Mixtures are made on the fly from the corpus's training split (`separate_data.py`); the held-out
split is left to `bench/separation.py`. The loss is the negative SI-SDR of the kept sound (the
figure the benchmark reports) plus an L1 distance between power-law compressed magnitudes, which
also covers targets that are silence (a query for something absent), where SI-SDR is undefined.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time

import numpy as np
import torch

SEGMENT_SECONDS = 3.0


def si_sdr(estimate, target, eps: float = 1e-8):
    """Per-row SI-SDR in dB of (batch, samples) tensors."""
    scale = (estimate * target).sum(-1, keepdim=True) / (target.pow(2).sum(-1, keepdim=True) + eps)
    projection = scale * target
    noise = estimate - projection
    return 10 * torch.log10(projection.pow(2).sum(-1) / (noise.pow(2).sum(-1) + eps) + eps)


def separation_loss(estimate, target, estimate_spec, target_spec, mixture_spec):
    """(loss, mean SI-SDR over rows whose target is not silent)."""
    # compressed magnitudes relative to the target's scale (the mixture's where the target is
    # silence): the same weight at every level
    compress = lambda s: (s.abs() + 1e-8).pow(0.3)
    est_c, tgt_c = compress(estimate_spec), compress(target_spec)
    audible = target.pow(2).mean(-1) > 1e-10
    reference = torch.where(audible[:, None, None], tgt_c, compress(mixture_spec))
    magnitude = ((est_c - tgt_c).abs() / reference.mean(dim=(1, 2), keepdim=True)).mean(dim=(1, 2))
    sdr = si_sdr(estimate, target)
    sdr_term = torch.where(audible, -sdr.clamp(max=40) / 20, torch.zeros_like(sdr))
    return (magnitude + sdr_term).mean(), (sdr[audible].mean() if audible.any() else sdr.new_tensor(0.0))


class MixtureStream(torch.utils.data.IterableDataset):
    """Endless training batches made in DataLoader worker processes, each from its own generator.

    On a GPU one process cannot make mixtures as fast as the model learns from them (about 45 a
    second on an H200's host, measured: 135 s of audio per s), so `--workers N` makes them in N
    processes. The sampler (memory-mapped shards, query vectors) is shared by fork."""

    def __init__(self, sampler, batch: int, n: int, seed: int):
        self.sampler, self.batch, self.n, self.seed = sampler, batch, n, seed

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        sampler = self.sampler.reseeded(self.seed * 1000 + (info.id if info else 0))
        while True:
            yield sampler.batch(self.batch, self.n)


def batches(sampler, batch: int, n: int, workers: int, seed: int):
    """An endless iterator of (mixture, target, query) batches, made here or in `workers` processes."""
    if workers <= 0:
        while True:
            yield sampler.batch(batch, n)
    yield from torch.utils.data.DataLoader(MixtureStream(sampler, batch, n, seed), batch_size=None,
                                           num_workers=workers, prefetch_factor=4, collate_fn=_as_is)


def _as_is(batch):
    """Keep the worker's numpy arrays as they are (the training step moves them to the device)."""
    return batch


def train(corpus: str, checkpoints: str, steps: int, batch: int, lr: float, device: str = "auto",
          threads: int = 0, seconds: float = SEGMENT_SECONDS, workers: int = 0, init: str | None = None,
          proximity: float = 0.0, pairs: float | None = None) -> None:
    from soundtok_cli.models.registry import pick_device
    from soundtok_cli.separate.model import SeparatorConfig, SeparatorNet, apply, stft
    from soundtok_cli.threads import configure_torch_threads
    from soundtok_cli.train.separate_data import P_PAIR, SAMPLE_RATE, MixtureSampler
    from soundtok_cli.train.warm_start import initial_weights

    configure_torch_threads(threads=threads)
    device = pick_device(device)
    os.makedirs(checkpoints, exist_ok=True)
    n = int(seconds * SAMPLE_RATE)
    latest = os.path.join(checkpoints, "latest.pt")
    state = torch.load(latest, map_location=device, weights_only=True) if os.path.exists(latest) else None
    # a checkpoint carries on with its own configuration
    config = SeparatorConfig(**state["config"]) if state else SeparatorConfig()
    model = SeparatorNet(config).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    step = 0
    if state:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step = state["step"]
        print(f"resumed at step {step}", flush=True)
    elif init:
        initial_weights(model, init)
        print(f"starting from the weights in {init}", flush=True)
    if state:  # a checkpoint carries on with its own mixtures
        proximity, pairs = state.get("proximity", 0.0), state.get("pairs", P_PAIR)
    pairs = P_PAIR if pairs is None else pairs
    sampler = MixtureSampler(corpus, checkpoints, seed=1000 + step, proximity=proximity, pairs=pairs)
    valid = sampler.reseeded(123, augment=False).batch(48, n)  # the same mixtures whatever the augmentation
    print(f"{len(sampler.speech)} speech clips, {len(sampler.other)} others, {len(sampler.texts)} query texts; "
          f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters; training on {device}", flush=True)

    def run(mix, target, query):
        mix, target, query = (torch.from_numpy(a).to(device) for a in (mix, target, query))
        estimate, estimate_spec, spec = apply(model, mix, query)
        return separation_loss(estimate, target, estimate_spec, stft(target), spec)

    def validate() -> tuple[float, float]:
        model.eval()
        with torch.no_grad():
            parts = [run(*(a[i : i + 16] for a in valid)) for i in range(0, len(valid[0]), 16)]
        model.train()
        return float(np.mean([p[0].item() for p in parts])), float(np.mean([p[1].item() for p in parts]))

    if step == 0 and init:  # where the starting weights stand on the same mixtures
        v_loss, v_sdr = validate()
        print(f"validation of {init}: loss {v_loss:.3f}, SI-SDR {v_sdr:.2f} dB", flush=True)
    warmup = 100
    started, seen = time.time(), 0.0
    stream = batches(sampler, batch, n, workers, seed=1000 + step)
    while step < steps:
        scale = min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, step / steps)))
        for group in optimizer.param_groups:
            group["lr"] = lr * max(scale, 0.05)
        loss, sdr = run(*next(stream))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        seen += batch * seconds
        if step % 20 == 0:
            print(f"step {step}: loss {loss.item():.3f}, SI-SDR {sdr.item():.1f} dB, "
                  f"{seen / (time.time() - started):.0f} s of audio per s", flush=True)
        if step % 100 == 0 or step == steps:
            tmp = latest + ".tmp"
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                        "config": config.to_json(),
                        "proximity": proximity, "pairs": pairs}, tmp)
            os.replace(tmp, latest)
        if step % 200 == 0 or step == steps:
            v_loss, v_sdr = validate()
            print(f"validation at step {step}: loss {v_loss:.3f}, SI-SDR {v_sdr:.2f} dB", flush=True)
            with open(os.path.join(checkpoints, "validation.jsonl"), "a") as f:
                f.write(json.dumps({"step": step, "loss": v_loss, "si_sdr": v_sdr}) + "\n")


def export(corpus: str, checkpoints: str, out: str) -> None:
    from safetensors.torch import save_file

    from soundtok_cli.separate.concepts import concept_words
    from soundtok_cli.train.embed import sentence_vectors
    from soundtok_cli.train.separate_data import CROWD_QUERIES, SPEECH_QUERIES, MixtureSampler

    state = torch.load(os.path.join(checkpoints, "latest.pt"), map_location="cpu", weights_only=True)
    sampler = MixtureSampler(corpus, checkpoints)
    words = concept_words([c.caption for c in sampler.clips], [[sampler.texts[i] for i in ids[1:]] for ids in sampler.queries],
                          SPEECH_QUERIES + CROWD_QUERIES)
    weights = {k: v.to(torch.float16).contiguous() for k, v in state["model"].items()}
    weights["concepts"] = torch.from_numpy(sentence_vectors(words, os.path.join(checkpoints, "concepts.npz"))).to(torch.float16)
    metadata = {"config": json.dumps(state["config"]), "step": str(state["step"]), "concepts": json.dumps(words)}
    tmp = out + ".tmp"
    save_file(weights, tmp, metadata=metadata)
    os.replace(tmp, out)
    print(f"wrote {out} ({os.path.getsize(out) / 1e6:.1f} MB) from step {state['step']}, {len(words)} concepts")


def export_voice(checkpoints: str, separator: str, out: str) -> None:
    """Write `separator`'s weights file with the network in `checkpoints` added as its voice network
    (float16 tensors "voice.*", the step in the metadata's "voice_step"): the run that fine-tuned
    the shipped network on close-microphone voices (`train --init ... --proximity 0.5`)."""
    from safetensors import safe_open

    from soundtok_cli.models.registry import VOICE_PART
    from soundtok_cli.train.weights_file import add_part

    state = torch.load(os.path.join(checkpoints, "latest.pt"), map_location="cpu", weights_only=True)
    with safe_open(separator, framework="pt") as f:
        if json.loads(f.metadata()["config"]) != state["config"]:
            raise SystemExit(f"{checkpoints}: not the same network as {separator}'s")
    add_part(separator, out, VOICE_PART, state["model"], {"voice_step": str(state["step"])})
    print(f"wrote {out} ({os.path.getsize(out) / 1e6:.1f} MB): {separator} and the voice network from {checkpoints}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="step", required=True)
    t = sub.add_parser("train")
    t.add_argument("--corpus", default="corpus")
    t.add_argument("--checkpoints", default="checkpoints/separate")
    t.add_argument("--steps", type=int, default=4400)
    t.add_argument("--batch", type=int, default=12)
    t.add_argument("--lr", type=float, default=1.5e-3)
    t.add_argument("--device", default="auto", help="auto (CUDA when there is one), cpu or cuda")
    t.add_argument("--threads", type=int, default=0, help="torch threads (default: every core)")
    t.add_argument("--seconds", type=float, default=SEGMENT_SECONDS, help="length of each training mixture")
    t.add_argument("--workers", type=int, default=0,
                   help="processes making mixtures (0: the training process; on a GPU, one per spare core)")
    t.add_argument("--init", help="exported weights to start from when there is no checkpoint yet")
    t.add_argument("--proximity", type=float, default=0.0,
                   help="share of the target voices heard through a close microphone (train/colour.py)")
    t.add_argument("--pairs", type=float, default=None,
                   help="share of the examples that are sound-effect pairs (default 0.42; speech examples shrink)")
    e = sub.add_parser("export")
    e.add_argument("--corpus", default="corpus")
    e.add_argument("--checkpoints", default="checkpoints/separate")
    e.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "models", "soundtok-separate-v3.safetensors"))
    v = sub.add_parser("export-voice", help="add a fine-tuned network to a weights file as its voice network")
    v.add_argument("--checkpoints", required=True)
    v.add_argument("--separator", required=True, help="the separator's weights file to add it to")
    v.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    if args.step == "export-voice":
        export_voice(args.checkpoints, args.separator, os.path.normpath(args.out))
    elif args.step == "train":
        train(args.corpus, args.checkpoints, args.steps, args.batch, args.lr, args.device, args.threads, args.seconds,
              args.workers, args.init, args.proximity, args.pairs)
    else:
        export(args.corpus, args.checkpoints, os.path.normpath(args.out))


if __name__ == "__main__":
    main()
