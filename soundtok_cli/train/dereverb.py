"""The dereverberation mask's trainer (separate/dereverb.py; resumable; part of `make train-separate`).

    python -m soundtok_cli.train.dereverb train --checkpoints checkpoints/dereverb   # 1,200 steps, 44 min
    python -m soundtok_cli.train.dereverb export --checkpoint checkpoints/dereverb/last.pt \\
        --out soundtok_cli/models/soundtok-dereverb-v1.safetensors

Examples: a clip of the corpus's training split (two thirds a voice, as the separator's trainer
draws them: shifted in pitch, coloured, half through a close microphone; the rest sound effects
and music) heard in a random room made here (`room_response`), 3 s, with a second of the room's
response to what came before; one in eight in no room at all, so that dry sound is left alone.
Half of them over a steady noise (5-40 dB below the reverberant sound), kept in the target: this
network takes out the room, not the noise. The target is the clip through the first 50 ms of the
same response (the direct sound and early reflections, which the ear hears as the source, not as
the room). Levels over 39 dB; 40 random bands of each example train (`--low-bands N`: N of them
below 560 Hz). Loss: the sub-band mask's (energy-weighted magnitude error plus 0.3 x a
compressed-magnitude term), per band. AdamW, lr 3e-3, warm-up and cosine decay, one thread.

Rooms: the response is direct sound, 3 to 15 early reflections within 50 ms, and a tail of noise
decaying 60 dB in RT60 (0.25 to 2 s, log-uniform) per octave band, high bands faster (as air and
soft surfaces absorb them), starting 3 to 30 ms after the direct sound, its energy 12 dB below
to 8 dB above the direct sound's. The benchmark's rooms (bench/dereverb.py) are made another way
(pyroomacoustics' image sources and ray tracing), so its figures are not on rooms like these.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import torch
from scipy import signal

from soundtok_cli.separate.dereverb import EARLY_SECONDS, DereverbConfig, default_bands, features, network
from soundtok_cli.train.steps import run_steps
from soundtok_cli.train.subband import example_rows, loss_of

SAMPLE_RATE = 48_000
SEGMENT_SECONDS = 3.0
BANDS_PER_EXAMPLE = 40  # of the 102: the GRU's cost per step is what limits training on a CPU
LOW_BANDS = 12  # below 560 Hz, where voices recorded close carry most of their energy
HISTORY_SECONDS = 1.0
P_DRY = 0.125
P_SPEECH = 2 / 3
P_NOISE = 0.5
OCTAVES = (125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0, 16000.0)
# each octave band's RT60 as a share of the room's (drawn uniformly in these ranges)
DECAY_SHARE = ((0.8, 1.4), (0.8, 1.3), (0.85, 1.15), (0.9, 1.1), (0.8, 1.05), (0.55, 1.0), (0.4, 0.9), (0.25, 0.8))


def room_response(rng: np.random.Generator, sample_rate: int = SAMPLE_RATE) -> tuple[np.ndarray, np.ndarray]:
    """(whole response, its first EARLY_SECONDS) of a random room, the direct sound at sample 0."""
    rt60 = float(np.exp(rng.uniform(np.log(0.25), np.log(2.0))))
    n = int(sample_rate * min(3.0, 1.1 * rt60 + 0.1))
    t = np.arange(n) / sample_rate
    spectrum = np.fft.rfft(rng.standard_normal(n))
    octave = np.log2(np.maximum(np.fft.rfftfreq(n, 1 / sample_rate), 1.0) / OCTAVES[0])
    tail = np.zeros(n)
    for b, (lo, hi) in enumerate(DECAY_SHARE):  # triangles over log frequency: they sum to one
        weight = np.clip(1 - np.abs(octave - b), 0, 1) if 0 < b < len(OCTAVES) - 1 else \
            np.clip(1 - np.abs(octave - b), 0, 1) + ((octave < 0) if b == 0 else (octave > b))
        decay = rt60 * rng.uniform(lo, hi)
        tail += np.fft.irfft(spectrum * weight, n) * np.exp(-6.91 * t / decay)
    start, rise = rng.uniform(0.003, 0.03), rng.uniform(0.005, 0.03)
    tail *= np.where(t > start, 1 - np.exp(-(t - start) / rise), 0.0)
    drr_db = rng.uniform(-8.0, 12.0)
    tail *= np.sqrt(10 ** (-drr_db / 10) / (np.sum(tail ** 2) + 1e-12))
    ir = tail
    ir[0] += 1.0
    for _ in range(int(rng.integers(3, 16))):
        at = int(rng.uniform(0.001, EARLY_SECONDS) * sample_rate)
        ir[at] += rng.uniform(0.1, 0.7) * rng.choice([-1.0, 1.0]) * np.exp(-at / sample_rate / 0.05)
    return ir, early_part(ir, sample_rate)


def early_part(ir: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The response's first EARLY_SECONDS, faded out over 5 ms."""
    cut, fade = int(EARLY_SECONDS * sample_rate), int(0.005 * sample_rate)
    early = ir.copy()[: cut + fade]
    early[cut:] *= np.cos(np.linspace(0, np.pi / 2, len(early) - cut)) ** 2
    return early


def steady_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """White, pink or brown noise (a spectral slope of 0, -3 or -6 dB per octave), unit RMS."""
    slope = rng.choice([0.0, -3.0, -6.0])
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.maximum(np.fft.rfftfreq(n, 1 / SAMPLE_RATE), 20.0)
    x = np.fft.irfft(spectrum * (f / 1000.0) ** (slope / 20 / np.log10(2)), n)
    return x / (np.sqrt(np.mean(x ** 2)) + 1e-12)


def example(sampler, n: int, p_dry: float = P_DRY) -> tuple[np.ndarray, np.ndarray]:
    """(reverberant input, target: the direct sound and early reflections) of n samples; dry
    (no room: the target is the input) with probability p_dry."""
    rng = sampler.rng
    history = int(HISTORY_SECONDS * SAMPLE_RATE)
    if rng.random() < P_SPEECH:
        dry = sampler.colour(sampler.close_microphone(sampler.voice(sampler.pick_speech(), n + history)))
    else:
        dry = sampler.colour(sampler.crop(sampler.pick_other(), n + history))
    dry = dry.astype(np.float64)
    if rng.random() < p_dry:
        wet = early = dry
    else:
        ir, early_ir = room_response(rng)
        wet, early = (signal.fftconvolve(dry, h)[: len(dry)] for h in (ir, early_ir))
    wet, early = wet[history:], early[history:]
    if rng.random() < P_NOISE:
        noise = steady_noise(rng, n) * np.sqrt(np.mean(wet ** 2)) * 10 ** (-rng.uniform(5, 40) / 20)
        wet, early = wet + noise, early + noise
    gain = 10 ** (rng.uniform(-40, -1) / 20) / (np.abs(wet).max() + 1e-9)
    return (wet * gain).astype(np.float32), (early * gain).astype(np.float32)


def training_batch(sampler, config: DereverbConfig, batch: int, low: int = 0, p_dry: float = P_DRY):
    """(features (batch, bands, frames, F), input and target band magnitudes (batch, bands, frames)),
    BANDS_PER_EXAMPLE random bands of each example."""
    from soundtok_cli.separate.model import stft

    n = int(SEGMENT_SECONDS * SAMPLE_RATE)
    bands = default_bands()
    width = np.diff(bands.edges)[None, :]
    feats, mixes, targets = [], [], []
    for _ in range(batch):
        wet, early = example(sampler, n, p_dry)
        pw = stft(torch.from_numpy(wet[None]))[0].abs().numpy().astype(np.float64) ** 2
        pe = stft(torch.from_numpy(early[None]))[0].abs().numpy().astype(np.float64) ** 2
        pooled = bands.pool(pw)
        chosen = example_rows(sampler.rng, bands.count, BANDS_PER_EXAMPLE, low, LOW_BANDS)
        feats.append(features(pooled, config)[chosen])
        mixes.append(np.sqrt(pooled * width).T[chosen].astype(np.float32))
        targets.append(np.sqrt(bands.pool(pe) * width).T[chosen].astype(np.float32))
    return tuple(torch.from_numpy(np.stack(a)) for a in (feats, mixes, targets))


def train(args) -> None:
    from soundtok_cli.train.separate_data import MixtureSampler

    torch.set_num_threads(args.threads)
    os.makedirs(args.checkpoints, exist_ok=True)
    last = os.path.join(args.checkpoints, "last.pt")
    state = torch.load(last, weights_only=False) if os.path.exists(last) else None
    config = DereverbConfig.from_json(state["config"]) if state else DereverbConfig(hidden=args.hidden)
    step = state["step"] if state else 0
    net = network(config)
    optimizer = torch.optim.AdamW(net.parameters(), args.lr)
    if state:
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        print(f"resuming at step {step}", flush=True)
    sampler = MixtureSampler(args.corpus, args.cache, seed=2000 + step, proximity=0.5)
    run_steps(net, optimizer, step, args.steps, args.lr,
              lambda: loss_of(net, *training_batch(sampler, config, args.batch, args.low_bands, args.dry)), last,
              {"config": config.to_json()})


def export(checkpoint: str, out: str) -> None:
    """The checkpoint's network as the shipped weights file (float32: 16 k parameters, 66 kB)."""
    from safetensors.torch import save_file

    state = torch.load(checkpoint, weights_only=False)
    tmp = out + ".tmp"
    save_file({k: v.float().contiguous() for k, v in state["model"].items()}, tmp,
              metadata={"config": state["config"], "step": str(state["step"])})
    os.replace(tmp, out)
    print(f"wrote {out} (step {state['step']})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m soundtok_cli.train.dereverb", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train")
    t.add_argument("--corpus", default="corpus")
    t.add_argument("--cache", default="checkpoints/separate", help="the separator trainer's caption cache")
    t.add_argument("--checkpoints", default="checkpoints/dereverb")
    t.add_argument("--steps", type=int, default=1200)
    t.add_argument("--batch", type=int, default=16)
    t.add_argument("--lr", type=float, default=3e-3)
    t.add_argument("--hidden", type=int, default=32)
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--dry", type=float, default=P_DRY, help="share of examples in no room")
    t.add_argument("--low-bands", type=int, default=0, help="of each example's bands, how many below 560 Hz")
    e = sub.add_parser("export")
    e.add_argument("--checkpoint", default="checkpoints/dereverb/last.pt")
    e.add_argument("--out", default="soundtok_cli/models/soundtok-dereverb-v1.safetensors")
    args = parser.parse_args(argv)
    if args.command == "train":
        train(args)
    else:
        export(args.checkpoint, args.out)


if __name__ == "__main__":
    main()
