"""A probe, not a shipped model: does a sub-band speech mask generalise to unseen voices better
than the separator's full-band network? (#6; the separator's model card, 2026-12-04.)

One small GRU (17 k parameters) shared by every STFT bin reads only that bin's and its 7
neighbours' log a-posteriori SNR against the minimum-statistics noise floor (separate/speech.py),
the bin's position and the noise suppressor's gain, so it cannot know a voice by its spectral
envelope. Trained on speech-over-background mixtures of the separator's training data (48 random
bins per example, 32 of them below 6 kHz; energy-weighted magnitude error plus 0.3 x the
separator's compressed-magnitude term), then scored on two sets made the benchmark's way: 84
mixtures of training-split real voices over training-split backgrounds, and the held-out mixtures
of `bench.separation --part speech`.

    python -m soundtok_cli.train.subband_probe train --steps 700 --out probe.pt   # 27 min, 2 threads
    python -m soundtok_cli.train.subband_probe score probe.pt
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import torch
from torch import nn

from soundtok_cli.separate.speech import noise_power, wiener_gain, suppressor_gain

NEIGHBOURS = 7


class SubbandMask(nn.Module):
    def __init__(self, hidden: int = 32):
        super().__init__()
        self.inp = nn.Linear(2 * NEIGHBOURS + 3, 48)
        self.gru = nn.GRU(48, hidden, batch_first=True)
        self.out = nn.Linear(hidden, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(bins, frames, 2 x NEIGHBOURS + 3) -> (bins, frames) mask."""
        h = torch.nn.functional.gelu(self.inp(features))
        return torch.sigmoid(self.out(self.gru(h)[0]))[..., 0]


def features(magnitude: np.ndarray, bins: np.ndarray | None = None) -> np.ndarray:
    """(frames, F) 48 kHz magnitudes -> (bins, frames, 2 x NEIGHBOURS + 3) features."""
    power = magnitude.astype(np.float64) ** 2
    noise = noise_power(power)
    gain = wiener_gain(power, noise)
    snr = np.clip((np.log(power + 1e-12) - np.log(noise + 1e-12)) / 5, -3, 3)
    count = power.shape[1]
    bins = np.arange(count) if bins is None else bins
    padded = np.pad(snr, ((0, 0), (NEIGHBOURS, NEIGHBOURS)), mode="edge")
    local = np.stack([padded[:, b : b + 2 * NEIGHBOURS + 1] for b in bins])
    position = np.broadcast_to((bins / (count - 1) * 2 - 1)[:, None, None], local.shape[:2] + (1,))
    return np.concatenate([local, position, np.log(gain[:, bins].T)[..., None]], -1).astype(np.float32)


def speech_example(sampler, n: int) -> tuple[np.ndarray, np.ndarray]:
    """A voice over a background (a crowd one time in five), as the separator's trainer makes them."""
    voice = sampler._pick(sampler.speech, sampler.speech_p)
    speech = sampler._room(sampler._voice(voice, n))
    background = sampler._crowd(n) if sampler.rng.random() < 0.2 else sampler._room(sampler._crop(sampler._other_than([voice]), n))
    mixture, target, _ = sampler._mix(speech, [background], 0)
    return mixture, target


def train(corpus: str, cache: str, out: str, steps: int, batch: int = 24, bins_per_example: int = 48) -> None:
    from soundtok_cli.separate.model import stft
    from soundtok_cli.train.separate_data import MixtureSampler

    sampler = MixtureSampler(corpus, cache, seed=77)
    net = SubbandMask()
    optimizer = torch.optim.AdamW(net.parameters(), 3e-3)
    n, started = 3 * 48000, time.time()
    for step in range(steps):
        lr = 3e-3 * min(1, (step + 1) / 50) * (0.5 * (1 + np.cos(np.pi * step / steps)) * 0.95 + 0.05)
        for group in optimizer.param_groups:
            group["lr"] = lr
        feats, mixes, targets = [], [], []
        for _ in range(batch):
            mixture, target = speech_example(sampler, n)
            x = stft(torch.from_numpy(mixture[None]))[0].abs().numpy()
            t = stft(torch.from_numpy(target[None]))[0].abs().numpy()
            bins = np.concatenate([sampler.rng.choice(128, 32, replace=False),
                                   128 + sampler.rng.choice(x.shape[1] - 128, bins_per_example - 32, replace=False)])
            feats.append(features(x, bins))
            mixes.append(x[:, bins].T)
            targets.append(t[:, bins].T)
        f, x, t = (torch.from_numpy(np.concatenate(a)) for a in (feats, mixes, targets))
        scale = torch.from_numpy(np.repeat([max(float(np.mean(a ** 0.3)), 1e-6) for a in targets], bins_per_example))[:, None]
        mask = net(f)
        compressed = (((mask * x + 1e-8) ** 0.3 - (t + 1e-8) ** 0.3).abs() / scale).mean()
        error = ((mask * x - t) ** 2).reshape(batch, -1).sum(1) / (t.reshape(batch, -1) ** 2).sum(1).clamp(min=1e-10)
        loss = error.clamp(max=3).mean() + 0.3 * compressed
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 25 == 0:
            print(f"step {step}: loss {loss.item():.3f}, {time.time() - started:.0f} s", flush=True)
        if step % 100 == 99 or step == steps - 1:
            torch.save(net.state_dict(), out)


def tuning_pools(corpus: str):
    """Training-split real voices (not espeak-ng) over training-split backgrounds, in the benchmark's pools."""
    import bench.separation as bench

    clips = bench.read_heldout(f"{corpus}/train")
    real = [c for c in clips if not (c.kind == "speech" and c.source.split(":")[0] in ("espeak", "sound-icons"))]
    speech = [c for c in real if c.kind == "speech"]
    talkers: dict[str, list] = {}
    for c in speech:
        if 0.3 * bench.SR <= len(c.samples) < bench.SPEECH_MIN_SECONDS * bench.SR:
            talkers.setdefault(c.voice, []).append(c.samples)
    sfx = [c for c in real if c.kind == "sfx" and len(c.samples) >= bench.SR]
    said = lambda c, words: any(w in c.caption for w in words)
    utterances = bench.utterances(speech)
    chosen = np.random.default_rng(7).permutation(len(utterances))[:60]
    return bench.SpeechPools(
        utterances=[utterances[i] for i in chosen], talkers={v: xs for v, xs in talkers.items() if len(xs) >= 5},
        traffic=[c.samples for c in sfx if said(c, ("engine", "car ", "motor", "truck"))],
        city=[c.samples for c in sfx if said(c, ("machine", "factory", "construction", "hammer", "drill", "crowd"))],
        music=[c.samples for c in real if c.kind == "music"][:200])


def score(weights: str, corpus: str) -> None:
    import bench.separation as bench
    from bench.yardstick import si_sdr
    from soundtok_cli.models.registry import load_separator
    from soundtok_cli.separate.model import HOP, N_FFT

    net = SubbandMask()
    net.load_state_dict(torch.load(weights, weights_only=True))
    net.eval()
    separator = load_separator(device="cpu")
    query = [dataclasses.replace(q, speech=False) for q in separator.ground(["speech"])]
    window = torch.hann_window(N_FFT)
    sets = {"training voices": bench.speech_mixtures(tuning_pools(corpus), 6, seed=4242),
            "held-out voices": bench.speech_mixtures(bench.speech_pools(bench.read_heldout(f"{corpus}/heldout")), 8)}
    for name, mixtures in sets.items():
        totals: dict[str, list[float]] = {}
        for m in mixtures:
            spec = torch.stft(torch.from_numpy(m.mixture.astype(np.float32)), N_FFT, HOP, window=window, return_complex=True).T
            magnitude = spec.abs().numpy()
            with torch.no_grad():
                sub = net(torch.from_numpy(features(magnitude))).numpy().T
            network = separator.masks(magnitude.astype(np.float32), query)[0]
            gain = suppressor_gain(magnitude)
            for label, mask in {"network": network, "suppressor": gain, "sub-band": sub,
                                "shipped (network + suppressor)": (network + gain) / 2, "sub-band + suppressor": (sub + gain) / 2,
                                "all three": (sub + gain + network) / 3}.items():
                estimate = torch.istft((spec * torch.from_numpy(mask.astype(np.float32))).T, N_FFT, HOP, window=window,
                                       length=len(m.mixture)).numpy().astype(np.float64)
                totals.setdefault(label, []).append(si_sdr(m.target, estimate) - si_sdr(m.target, m.mixture))
        print(name + ": " + ", ".join(f"{k} {np.mean(v):+.2f}" for k, v in totals.items()), flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="step", required=True)
    t = sub.add_parser("train")
    t.add_argument("--corpus", default="corpus")
    t.add_argument("--cache", default="checkpoints/separate")
    t.add_argument("--out", required=True)
    t.add_argument("--steps", type=int, default=700)
    s = sub.add_parser("score")
    s.add_argument("weights")
    s.add_argument("--corpus", default="corpus")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    if args.step == "train":
        train(args.corpus, args.cache, args.out, args.steps)
    else:
        score(args.weights, args.corpus)


if __name__ == "__main__":
    main()
