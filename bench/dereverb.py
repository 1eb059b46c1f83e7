"""Dereverberation quality: `separate --remove reverb` on held-out speech in simulated rooms,
side by side with weighted prediction error (WPE, the `nara_wpe` package), the textbook method.

  python -m bench.dereverb [--clips 30] [--music-clips 8] [--heldout corpus/heldout]
                           [--weights FILE] [--no-wpe] [--out bench/results/dereverb.json]

Clean references: the first --clips held-out speech clips (corpus/heldout, never trained or tuned
on) of at least 2 s, and the middle 8 s of the first --music-clips held-out music clips. Each is
heard in a room of each size, with half a second of silence after it for the tail:

  small   RT60 0.3-0.5 s (the target of Sabine's formula; the table gives the measured mean)
  medium  RT60 0.6-0.9 s
  large   RT60 1.0-1.5 s

Rooms are shoeboxes from pyroomacoustics (image sources to order 3, then ray tracing, air
absorption; 3-12 x 3-15 x 2.5-5 m, source and microphone at random places 1-4 m apart): a
different model of a room from the exponentially decaying noise the network was trained on.
The reference is what a listener hears as the source: the clean clip through the room's
response up to 50 ms after the direct sound (direct sound and early reflections). Figures:
SI-SDR improvement against that reference (median and 10th percentile over clips, dB), the
multi-scale log-mel distance to it before and after (bench/yardstick.py; lower is better), and
x real time on one thread. A dry row puts the clean speech itself through each method: how much
each changes sound that has no room to remove (SI-SDR of the output against the input); the
recorded voices have some room of their own, so espeak-ng's voice (when installed) is put through
too, as sound with no room at all.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timezone

import numpy as np

from bench.restoration import music_clips, speech_clips
from bench.results import write_json
from bench.yardstick import mel_distance, si_sdr

SR = 48000
ROOMS = {"small": (0.3, 0.5), "medium": (0.6, 0.9), "large": (1.0, 1.5)}
EARLY_SECONDS = 0.05
TAIL_SECONDS = 0.5
MIN_SPEECH_SECONDS = 2.0


def room_response(rng: np.random.Generator, rt60: float) -> tuple[np.ndarray, float]:
    """A shoebox room's response (pyroomacoustics) and its measured RT60."""
    import pyroomacoustics as pra

    for _ in range(100):
        dim = np.array([rng.uniform(3, 12), rng.uniform(3, 15), rng.uniform(2.5, 5)])
        source, mic = dim * rng.uniform(0.15, 0.85, 3), dim * rng.uniform(0.15, 0.85, 3)
        if 1.0 <= np.linalg.norm(source - mic) <= 4.0:
            break
    pra.random.seed(int(rng.integers(2 ** 31)))  # its ray tracer draws from its own generators
    absorption, _ = pra.inverse_sabine(rt60, dim)
    room = pra.ShoeBox(dim, fs=SR, materials=pra.Material(absorption), max_order=3, ray_tracing=True,
                       air_absorption=True)
    room.set_ray_tracing(receiver_radius=0.5, n_rays=5000, energy_thres=1e-5)
    room.add_source(source)
    room.add_microphone(mic)
    room.compute_rir()
    return np.asarray(room.rir[0][0], np.float64), float(room.measure_rt60()[0][0])


def early(ir: np.ndarray) -> np.ndarray:
    """The response up to EARLY_SECONDS after the direct sound (its strongest peak), faded over 5 ms."""
    cut = int(np.argmax(np.abs(ir))) + int(EARLY_SECONDS * SR)
    fade = int(0.005 * SR)
    out = ir[: cut + fade].copy()
    out[cut:] *= np.cos(np.linspace(0, np.pi / 2, len(out) - cut)) ** 2
    return out


def convolve(x: np.ndarray, ir: np.ndarray) -> np.ndarray:
    """x heard through ir, as long as x."""
    from scipy.signal import fftconvolve

    return fftconvolve(x, ir)[: len(x)]


SENTENCES = ("The north wind and the sun were disputing which was the stronger.",
             "A traveller came along, wrapped in a warm cloak.",
             "Then the sun shone out warmly, and at once the traveller took off his cloak.")


def espeak_voices() -> list[np.ndarray]:
    """espeak-ng's voice (truly dry: no microphone, no room) reading SENTENCES at 48 kHz, or []
    when espeak-ng is not installed. The recorded held-out voices carry some room of their own."""
    import shutil
    import subprocess
    import tempfile

    import soundfile as sf
    import soxr

    if shutil.which("espeak-ng") is None:
        return []
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, sentence in enumerate(SENTENCES):
            path = f"{tmp}/{i}.wav"
            subprocess.run(["espeak-ng", "-v", ("en", "en-us", "en+f3")[i], "-w", path, sentence], check=True)
            x, rate = sf.read(path)
            out.append(soxr.resample(x, rate, SR))
    return out


def soundtok(weights: str | None):
    from soundtok_cli.models.registry import load_dereverber
    from soundtok_cli.separate.dereverb import DereverbStage
    from soundtok_cli.separate.stream import run_all

    net = load_dereverber(path=weights)

    def run(y: np.ndarray) -> np.ndarray:
        stage = DereverbStage(net, SR)
        return run_all(stage, y, chunk=stage.chunk)

    return run


def wpe(y: np.ndarray) -> np.ndarray:
    """nara_wpe's single-channel WPE with its documented settings for 16 kHz (frames of 32 ms every
    8 ms, 10 taps after a delay of 3 frames, 3 iterations), the frames scaled to 48 kHz."""
    from nara_wpe.utils import istft, stft
    from nara_wpe.wpe import wpe as weighted_prediction_error

    spec = stft(y[None], size=1536, shift=384)  # (1, frames, bins)
    out = weighted_prediction_error(spec.transpose(2, 0, 1), taps=10, delay=3, iterations=3).transpose(1, 2, 0)
    return istft(out, size=1536, shift=384)[0][: len(y)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=30)
    parser.add_argument("--music-clips", type=int, default=8)
    parser.add_argument("--heldout", default="corpus/heldout")
    parser.add_argument("--weights", default=None, help="a candidate weights file instead of the shipped one")
    parser.add_argument("--no-wpe", action="store_true")
    parser.add_argument("--out", default="bench/results/dereverb.json")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    every = speech_clips(args.heldout, 10 ** 6)  # all of them: the first few may all be short
    speech = [x for x in every if len(x) >= MIN_SPEECH_SECONDS * SR][: args.clips]
    music = [x[: 8 * SR] for x in music_clips(args.heldout, args.music_clips)] if args.music_clips else []
    methods = {"soundtok": soundtok(args.weights)} | ({} if args.no_wpe else {"WPE": wpe})
    pad = np.zeros(int(TAIL_SECONDS * SR))
    rows = []
    for kind, clips in (("speech", speech), ("music", music)):
        for room, (lo, hi) in ROOMS.items() if clips else ():
            scores = {m: {"gain": [], "mel": [], "seconds": 0.0} for m in methods}
            before, mel_before, rt60s = [], [], []
            for i, x in enumerate(clips):
                rng = np.random.default_rng((i, len(room), len(kind)))
                ir, rt60 = room_response(rng, rng.uniform(lo, hi))
                x = np.concatenate([x, pad])
                y, reference = convolve(x, ir), convolve(x, early(ir))
                rt60s.append(rt60)
                before.append(si_sdr(reference, y))
                mel_before.append(mel_distance(reference, y))
                for name, method in methods.items():
                    started = time.perf_counter()
                    out = method(y)
                    scores[name]["seconds"] += time.perf_counter() - started
                    scores[name]["gain"].append(si_sdr(reference, out) - before[-1])
                    scores[name]["mel"].append(mel_distance(reference, out))
            seconds = sum(len(x) + len(pad) for x in clips) / SR
            for name, s in scores.items():
                rows.append({"source": kind, "room": room, "method": name, "clips": len(clips),
                             "rt60_measured_s": round(float(np.mean(rt60s)), 2),
                             "si_sdr_in_median": round(float(np.median(before)), 2),
                             "improvement_median_db": round(float(np.median(s["gain"])), 2),
                             "improvement_p10_db": round(float(np.percentile(s["gain"], 10)), 2),
                             "mel_distance_in": round(float(np.mean(mel_before)), 3),
                             "mel_distance_out": round(float(np.mean(s["mel"])), 3),
                             "x_real_time": round(seconds / s["seconds"], 1)})
                print(f"{kind} {room} {name}: {np.median(s['gain']):+.2f} dB", file=sys.stderr)
    dry, dry_synthetic, synthetic = {}, {}, espeak_voices()
    for name, method in methods.items():
        if speech:
            dry[name] = round(float(np.median([si_sdr(x, method(x)) for x in speech])), 2)
        if synthetic:
            dry_synthetic[name] = round(float(np.median([si_sdr(x, method(x)) for x in synthetic])), 2)
    print(f"{'source':7s} {'room':7s} {'RT60':>5s} {'method':9s} {'SI-SDR in':>9s} {'improvement':>11s} {'p10':>7s} "
          f"{'mel in':>7s} {'mel out':>7s} {'x RT':>6s}")
    for r in rows:
        print(f"{r['source']:7s} {r['room']:7s} {r['rt60_measured_s']:5.2f} {r['method']:9s} {r['si_sdr_in_median']:9.2f} "
              f"{r['improvement_median_db']:+11.2f} {r['improvement_p10_db']:+7.2f} {r['mel_distance_in']:7.3f} "
              f"{r['mel_distance_out']:7.3f} {r['x_real_time']:6.1f}")
    for name, value in dry.items():
        print(f"dry speech through {name}: SI-SDR {value:.2f} dB against the input (median)")
    for name, value in dry_synthetic.items():
        print(f"espeak-ng's voice (no room at all) through {name}: SI-SDR {value:.2f} dB against the input (median)")
    if not synthetic:
        print("espeak-ng not found: no synthetic dry voices")
    write_json(args.out, {"benchmark": "dereverb", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                          "weights": args.weights or "shipped", "speech_clips": len(speech), "music_clips": len(music),
                          "rows": rows, "dry_speech_si_sdr_db": dry, "dry_espeak_si_sdr_db": dry_synthetic or None})
    return 0


if __name__ == "__main__":
    sys.exit(main())
