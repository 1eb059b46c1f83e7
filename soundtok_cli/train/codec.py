"""Train the soundtok codec: `python -m soundtok_cli.train.codec --corpus corpus` (or `make train-codec`).

Resumable: the latest checkpoint in --checkpoints is loaded at start and written every
--save-every steps (plain state dicts, loaded with weights_only=True). Runs on the CPU, or on a
CUDA GPU when one is present (--device auto). `--export` writes the shipped safetensors weights.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time

import torch

from soundtok_cli.codec.config import CodecConfig
from soundtok_cli.codec.model import CodecModel
from soundtok_cli.train.data import SegmentSampler
from soundtok_cli.train.losses import complex_loss, mel_loss


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--corpus", default="corpus")
    p.add_argument("--checkpoints", default="checkpoints/codec")
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--batch", type=int, default=12)
    p.add_argument("--frames", type=int, default=64, help="frames per training segment (75 per second)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="auto")
    p.add_argument("--save-every", type=int, default=100)
    p.add_argument("--dropout", type=float, default=0.5, help="probability of training on a random prefix of levels")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def restart_dead_codes(model: CodecModel, usage: torch.Tensor, latents: torch.Tensor) -> int:
    """Give codewords unused since the last check a random encoder output of that level."""
    restarted = 0
    with torch.no_grad():
        residual = latents
        for i, level in enumerate(model.quantizer.levels):
            z = torch.nn.functional.normalize(level.project_in(residual), dim=1)
            flat = z.transpose(1, 2).reshape(-1, z.shape[1])
            dead = (usage[i] == 0).nonzero().flatten()
            if len(dead):
                pick = torch.randint(0, flat.shape[0], (len(dead),), device=flat.device)
                level.codebook.data[dead] = flat[pick]
                restarted += len(dead)
            index = level.nearest(z)
            residual = residual - level.project_out(level.lookup(index))
    return restarted


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else ("cpu" if args.device == "auto" else args.device)
    torch.manual_seed(args.seed)
    config = CodecConfig()
    model = CodecModel(config).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.8, 0.99), weight_decay=1e-4)
    os.makedirs(args.checkpoints, exist_ok=True)
    latest = os.path.join(args.checkpoints, "latest.pt")
    step = 0
    if os.path.exists(latest):
        state = torch.load(latest, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step = int(state["step"])
        print(f"resumed from {latest} at step {step}", flush=True)
    sampler = SegmentSampler(args.corpus, "train", seed=args.seed + step)
    print("corpus hours:", json.dumps({k: round(v, 2) for k, v in sampler.hours().items()}), flush=True)
    hop = config.hop
    length = (args.frames + 2) * hop
    usage = torch.zeros(config.levels, config.codebook_size, device=device)
    log = open(os.path.join(args.checkpoints, "log.jsonl"), "a")
    started = time.time()
    while step < args.steps:
        lr = args.lr * min(1.0, (step + 1) / 500) * 0.5 * (1 + math.cos(math.pi * min(step / args.steps, 1.0)))
        for group in optimizer.param_groups:
            group["lr"] = max(lr, args.lr * 0.02)
        x = torch.from_numpy(sampler.batch(args.batch, length)).to(device)
        n_levels = config.levels
        if torch.rand(()) < args.dropout:
            n_levels = int(torch.randint(1, config.levels + 1, ()))
        latent = model.encoder(x)
        quantized, codes, commit, codebook = model.quantizer(latent, n_levels)
        y = model.synthesize(quantized)
        target = x[:, 2 * hop : args.frames * hop]
        l_mel = mel_loss(target, y, config.sample_rate)
        l_cplx = complex_loss(target, y)
        loss = l_mel + 0.5 * l_cplx + 0.25 * commit + codebook
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        for i in range(codes.shape[-1]):
            usage[i] += torch.bincount(codes[..., i].flatten(), minlength=config.codebook_size)
        if step % 50 == 0 or step == 1:
            restarted = restart_dead_codes(model, usage, latent.detach()) if step % 200 == 0 else 0
            used = (usage[:4] > 0).float().mean().item()
            if step % 200 == 0:
                usage.zero_()
            record = {"step": step, "loss": round(loss.item(), 4), "mel": round(l_mel.item(), 4),
                      "cplx": round(l_cplx.item(), 4), "levels": n_levels, "used_l0_3": round(used, 3),
                      "restarted": restarted, "lr": round(lr, 6), "s_per_step": round((time.time() - started) / 50, 3)}
            started = time.time()
            print(json.dumps(record), flush=True)
            log.write(json.dumps(record) + "\n")
            log.flush()
        if step % args.save_every == 0 or step == args.steps:
            tmp = latest + ".tmp"
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step}, tmp)
            os.replace(tmp, latest)


if __name__ == "__main__":
    main()
