"""The sub-band speech mask's trainer (separate/subband.py; resumable; the second half of `make
train-separate`): train it, add it to a separator's weights file, score it against the speech path.

    python -m soundtok_cli.train.subband train --checkpoints checkpoints/subband   # 700 steps, 32-41 min
    python -m soundtok_cli.train.subband export --checkpoint checkpoints/subband/last.pt \
        --separator soundtok_cli/models/soundtok-separate-v3.safetensors --out soundtok_cli/models/soundtok-separate-v3.safetensors
    python -m soundtok_cli.train.subband score checkpoints/subband/last.pt

Examples are the separator's speech-over-background mixtures (train/separate_data.py: a voice,
half the time shifted in pitch and formants, in a room or not, over sound effects, music,
procedural noise or a crowd, -5 to 15 dB), with half the voices (--proximity) as a close
microphone hears them (train/colour.py: the training split's recorded voices have almost nothing
below 150 Hz, where a male voice on a directional microphone carries much of its energy), 3 s
each, 24 per step; each contributes 48 random bins of the modelled ones. AdamW, lr 3e-3, 50
steps of warm-up, cosine decay, one thread. The loss is the energy-weighted magnitude error of the
kept speech (what SI-SDR weighs) plus 0.3 x the separator's compressed-magnitude term (quiet bins
matter to the ear). The features are measured against the minimum-statistics noise floor, or with
`--floor residual` against the floor the speech path's first pass finds at run time (separate/
speech.py: the voice network's mask and the suppressor's gain, their residual smoothed; it runs
the separator's network on every example, about 1 s more per step).

`score` makes three sets the benchmark's way (bench/separation.py): mixtures of training-split
real voices over training-split backgrounds (known voices), the same voices shifted 4 to 6
semitones (past the training's +-3, so unknown to the separator's network), and the benchmark's
held-out speech mixtures (unseen voices), and reports the SI-SDR improvement of each mask, their
averages, and each sub-band mask in the speech path as `--keep speech` combines them
(separate/speech.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os

import numpy as np
import torch

from soundtok_cli.separate.subband import SubbandConfig, SubbandMask, features
from soundtok_cli.train.steps import run_steps

SEGMENT_SECONDS = 3.0
BINS_PER_EXAMPLE = 48
LOW_BINS = 12  # below 560 Hz, where a low voice and rumble share the bins


def speech_example(sampler, n: int) -> tuple[np.ndarray, np.ndarray]:
    """A voice over a background (a crowd one time in five), as the separator's trainer makes
    them; with the sampler's `proximity`, the voice as a close microphone hears it."""
    voice = sampler.pick_speech()
    speech = sampler.room(sampler.close_microphone(sampler.voice(voice, n)))
    background = (sampler.crowd(n) if sampler.rng.random() < 0.2
                  else sampler.room(sampler.crop(sampler.other_than([voice]), n)))
    mixture, target, _ = sampler.mix(speech, [background], 0)
    return mixture, target


def example_bins(rng, config: SubbandConfig, low: int) -> np.ndarray:
    """The BINS_PER_EXAMPLE bins an example trains, `low` of them among the lowest LOW_BINS."""
    return example_rows(rng, config.bins, BINS_PER_EXAMPLE, low, LOW_BINS)


def example_rows(rng, count: int, take: int, low: int, lowest: int) -> np.ndarray:
    """`take` of `count` rows (bins or bands) drawn without repeats, sorted, `low` of them among the
    `lowest` first rows (the dereverberation trainer draws its bands with it too)."""
    if not low:
        return np.sort(rng.choice(count, take, replace=False))
    low_rows = rng.choice(lowest, low, replace=False)
    rest = rng.choice(np.arange(lowest, count), take - low, replace=False)
    return np.sort(np.concatenate([low_rows, rest]))


def residual_floor(separator):
    """The noise floor `--keep speech` gives the sub-band mask at run time (separate/speech.py's
    first pass: the voice network's mask and the suppressor's gain, their residual smoothed), as a
    function of an example's (frames, bins) magnitudes."""
    from soundtok_cli.separate.speech import first_pass, residual_noise_power

    query = separator.ground(["speech"])

    def floor(magnitude: np.ndarray) -> np.ndarray:
        network = separator.masks(magnitude.astype(np.float32), query)[0]
        return residual_noise_power(np.asarray(magnitude, np.float64) ** 2, first_pass(network, magnitude))

    return floor


def training_batch(sampler, config: SubbandConfig, batch: int, low: int = 0, floor=None):
    """`floor`: magnitudes -> the noise power the features are measured against (None: the
    minimum statistics)."""
    from soundtok_cli.separate.model import stft

    n = int(SEGMENT_SECONDS * 48000)
    feats, mixes, targets = [], [], []
    for _ in range(batch):
        mixture, target = speech_example(sampler, n)
        x = stft(torch.from_numpy(mixture[None]))[0].abs().numpy()
        t = stft(torch.from_numpy(target[None]))[0].abs().numpy()
        bins = example_bins(sampler.rng, config, low)
        feats.append(features(x, config, bins, noise=None if floor is None else floor(x))[0])
        mixes.append(x[:, bins].T)
        targets.append(t[:, bins].T)
    return tuple(torch.from_numpy(np.stack(a)) for a in (feats, mixes, targets))


def loss_of(net: SubbandMask, f: torch.Tensor, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """f (batch, bins, frames, features), x and t (batch, bins, frames) magnitudes."""
    batch = len(f)
    mask = net(f.flatten(0, 1)).view_as(x)
    scale = t.pow(0.3).mean(dim=(1, 2), keepdim=True).clamp(min=1e-6)
    compressed = (((mask * x + 1e-8) ** 0.3 - (t + 1e-8) ** 0.3).abs() / scale).mean()
    error = (mask * x - t).pow(2).reshape(batch, -1).sum(1) / t.pow(2).reshape(batch, -1).sum(1).clamp(min=1e-10)
    return error.clamp(max=3).mean() + 0.3 * compressed


def train(args) -> None:
    from soundtok_cli.train.separate_data import MixtureSampler

    torch.set_num_threads(args.threads)
    os.makedirs(args.checkpoints, exist_ok=True)
    last = os.path.join(args.checkpoints, "last.pt")
    if os.path.exists(last):
        state = torch.load(last, weights_only=False)
        config, step = SubbandConfig.from_json(state["config"]), state["step"]
        low = state.get("low_bins", 0)  # a resumed run keeps its checkpoint's sampling too
        proximity = state.get("proximity", 0.0)
        floor_name = state.get("floor", "minimum")
        print(f"resuming at step {step}", flush=True)
    else:
        config = SubbandConfig(neighbours=args.neighbours, lookahead=args.lookahead, hidden=args.hidden,
                               bidirectional=not args.causal, harmonics=args.harmonics)
        state, step, low, proximity, floor_name = None, 0, args.low_bins, args.proximity, args.floor
    net = SubbandMask(config)
    optimizer = torch.optim.AdamW(net.parameters(), args.lr)
    if state:
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
    sampler = MixtureSampler(args.corpus, args.cache, seed=1000 + step, proximity=proximity)
    floor = None
    if floor_name == "residual":
        from soundtok_cli.models.registry import load_separator

        floor = residual_floor(load_separator(device="cpu", path=args.separator))
    run_steps(net, optimizer, step, args.steps, args.lr,
              lambda: loss_of(net, *training_batch(sampler, config, args.batch, low, floor)), last,
              {"config": config.to_json(), "low_bins": low, "proximity": proximity, "floor": floor_name})


def load_checkpoint(path: str) -> SubbandMask:
    """A trainer checkpoint, or the sub-band mask inside a separator's weights file (.safetensors)."""
    if path.endswith(".safetensors"):
        from soundtok_cli.models.registry import load_separator

        net = load_separator(device="cpu", path=path).speech_net
        if net is None:
            raise SystemExit(f"{path} carries no sub-band speech mask")
        return net
    state = torch.load(path, weights_only=False)
    net = SubbandMask(SubbandConfig.from_json(state["config"]))
    net.load_state_dict(state["model"])
    return net.eval()


def export(checkpoint: str, separator: str, out: str) -> None:
    """Write `separator`'s weights file with the sub-band mask added (float16 tensors "subband.*",
    its configuration in the metadata's "subband"): the speech path travels with the separator."""
    from soundtok_cli.models.registry import SUBBAND_PART
    from soundtok_cli.train.weights_file import add_part

    net = load_checkpoint(checkpoint)
    add_part(separator, out, SUBBAND_PART, net.state_dict(),
             {"subband": net.config.to_json(), "subband_step": str(torch.load(checkpoint, weights_only=False)["step"])})
    print(f"wrote {out} ({os.path.getsize(out) / 1e6:.1f} MB): {separator} and the sub-band mask from {checkpoint}")


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


def shifted_pools(pools):
    """The pools with each utterance shifted 4 to 6 semitones, down and up in turn (pitch and
    formants together): voices past the training's +-3 semitones, so that the separator's network
    no longer knows them, without the benchmark's own voices (a third set to choose on)."""
    from soundtok_cli.train.separate_data import pitch_shifted

    rng = np.random.default_rng(11)
    shifted = []
    for i, (voice, clean) in enumerate(pools.utterances):
        ratio = 2 ** ((1 if i % 2 else -1) * rng.uniform(4, 6) / 12)
        shifted.append((voice, pitch_shifted(clean, int(len(clean) / ratio), ratio)))
    return dataclasses.replace(pools, utterances=shifted)


def _label(path: str) -> str:
    """checkpoints/sb-x/last.pt -> "sb-x"; other files by their own name."""
    stem = os.path.splitext(os.path.basename(path))[0]
    return os.path.basename(os.path.dirname(os.path.abspath(path))) if stem == "last" else stem


def score(args) -> None:
    import bench.separation as bench
    from bench.yardstick import si_sdr
    from soundtok_cli.models.registry import load_separator
    from soundtok_cli.separate.speech import speech_mask, suppressor_gain
    from soundtok_cli.separate.subband import subband_masks

    torch.set_num_threads(args.threads)
    nets = {_label(p): load_checkpoint(p) for p in args.checkpoint}
    separator = load_separator(device="cpu")
    query = separator.ground(["speech"])
    known = tuning_pools(args.corpus)
    sets = {"known voices": bench.speech_mixtures(known, 6, seed=4242),
            "shifted voices": bench.speech_mixtures(shifted_pools(known), 6, seed=4243),
            "held-out voices": bench.speech_mixtures(bench.speech_pools(bench.read_heldout(f"{args.corpus}/heldout")), 8)}

    def masks_of(magnitude: np.ndarray) -> dict[str, np.ndarray]:
        network = separator.masks(magnitude.astype(np.float32), query)[0]
        masks = {"network": network}
        for label, net in nets.items():
            masks[label] = subband_masks(net, magnitude)[0]
        gain = suppressor_gain(magnitude)
        masks["suppressor"] = gain
        masks["network + suppressor (version 2)"] = (network + gain) / 2
        for label, net in nets.items():
            masks[f"{label} + suppressor"] = (masks[label] + gain) / 2
            masks[f"{label} + both, as --keep speech runs"] = speech_mask(network, magnitude, subband=net)
        return masks

    report = {}
    for name, mixtures in sets.items():
        totals: dict[str, list[float]] = {}
        for m in mixtures:
            for label, estimate in bench.through_masks(m.mixture, masks_of).items():
                totals.setdefault(label, []).append(si_sdr(m.target, estimate) - si_sdr(m.target, m.mixture))
        report[name] = {k: round(float(np.mean(v)), 2) for k, v in totals.items()}
        print(name + ": " + ", ".join(f"{k} {v:+.2f}" for k, v in report[name].items()), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="step", required=True)
    t = sub.add_parser("train")
    t.add_argument("--corpus", default="corpus")
    t.add_argument("--cache", default="checkpoints/separate", help="the separator trainer's caption cache")
    t.add_argument("--checkpoints", default="checkpoints/subband")
    t.add_argument("--steps", type=int, default=700,
                   help="longer fits the training voices better and unseen ones worse (the model card)")
    t.add_argument("--batch", type=int, default=24)
    t.add_argument("--lr", type=float, default=3e-3)
    t.add_argument("--neighbours", type=int, default=SubbandConfig.neighbours)
    t.add_argument("--lookahead", type=int, default=SubbandConfig.lookahead)
    t.add_argument("--hidden", type=int, default=SubbandConfig.hidden)
    t.add_argument("--causal", action="store_true", help="a one-way GRU (cheaper at run time)")
    t.add_argument("--harmonics", type=int, default=SubbandConfig.harmonics,
                   help="read the SNR at 2x .. (N+1)x each bin's frequency")
    t.add_argument("--low-bins", type=int, default=0,
                   help=f"of the {BINS_PER_EXAMPLE} bins an example trains, this many among the lowest {LOW_BINS} (below 560 Hz)")
    t.add_argument("--proximity", type=float, default=0.5,
                   help="the share of voices heard as by a close microphone (+6..+18 dB below 100-250 Hz)")
    t.add_argument("--floor", choices=("minimum", "residual"), default="minimum",
                   help="measure the features against the minimum statistics, or against the residual of "
                        "the speech path's first pass as at run time (needs --separator's voice network)")
    t.add_argument("--separator", help="the separator weights whose first pass --floor residual reads "
                                       "(default: the shipped ones)")
    t.add_argument("--threads", type=int, default=1)
    e = sub.add_parser("export")
    e.add_argument("--checkpoint", default="checkpoints/subband/last.pt")
    e.add_argument("--separator", required=True, help="the separator's weights file to add the mask to")
    e.add_argument("--out", required=True)
    s = sub.add_parser("score")
    s.add_argument("checkpoint", nargs="+")
    s.add_argument("--corpus", default="corpus")
    s.add_argument("--json")
    s.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if args.step == "export":
        export(args.checkpoint, args.separator, args.out)
    else:
        {"train": train, "score": score}[args.step](args)


if __name__ == "__main__":
    main()
