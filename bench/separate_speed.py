"""Restoration speed: `soundtok separate --remove hum|clicks|hiss|reverb` on 60 s of 48 kHz audio.

  python -m bench.separate_speed [--seconds 60] [--channels 1] [--repeats 3]
                                 [--out bench/results/separate_speed.json]

The input is the music-like signal of bench/codec_speed.py with 50 Hz hum (5 harmonics) and
clicks added, written as a 24-bit WAV; each removal (and the signal-processing three together, and
all four) runs through the library exactly as the command does (analysis passes, chunked
processing, output file written), the best of --repeats runs. "x real time" is audio seconds per wall-clock second; the issue asks
for at least 20x on the project's machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone

import numpy as np
import soundfile as sf

from bench.codec_speed import music_like
from bench.results import write_json

TARGET = 20.0


def make_input(path: str, seconds: float, channels: int, sr: int = 48000) -> None:
    n = int(seconds * sr)
    rng = np.random.default_rng(0)
    t = np.arange(n) / sr
    x = music_like(0, n, sr).astype(np.float64)
    x += sum(0.02 * 0.6**k * np.sin(2 * np.pi * k * 50.0 * t) for k in range(1, 6))
    x[rng.integers(0, n - 10, int(seconds * 5))] += 0.3
    sf.write(path, np.repeat(x[:, None], channels, axis=1), sr, subtype="PCM_24")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="bench/results/separate_speed.json")
    args = parser.parse_args(argv)
    from soundtok_cli.separate.restore import restore_file

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        source, target = os.path.join(tmp, "in.wav"), os.path.join(tmp, "out.wav")
        make_input(source, args.seconds, args.channels)
        for remove in (["hum"], ["clicks"], ["hiss"], ["reverb"], ["hum", "clicks", "hiss"], ["hum", "clicks", "hiss", "reverb"]):
            times = []
            for _ in range(args.repeats):
                started = time.perf_counter()
                report = restore_file(source, remove, target)
                times.append(time.perf_counter() - started)
            speed = args.seconds / min(times)
            rows.append({"remove": ",".join(remove), "seconds": min(times), "x_real_time": round(speed, 1),
                         "meets_target": speed >= TARGET, "hum": report.hum, "clicks": report.clicks})
            print(f"{','.join(remove):25s} {min(times):7.2f} s  {speed:7.1f}x real time", file=sys.stderr)
    print(f"{'remove':25s} {'x real time':>12s}  ({args.seconds:.0f} s, {args.channels} ch, 48 kHz; target >= {TARGET:.0f}x)")
    for row in rows:
        print(f"{row['remove']:25s} {row['x_real_time']:12.1f}")
    write_json(args.out, {"benchmark": "separate_speed", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                          "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load": os.getloadavg()},
                          "seconds": args.seconds, "channels": args.channels, "sample_rate": 48000, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
