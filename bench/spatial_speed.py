"""Spatial rendering speed: binaural and ambisonic/loudspeaker renders of moving sources.

  python -m bench.spatial_speed [--seconds 20] [--sources 32] [--repeats 3] [--rate 48000]
                                [--out bench/results/spatial_speed.json]

Each case renders --seconds of noise (one independent signal per source) through the library
exactly as `soundtok spatialize --render` does (SceneRenderer, chunk by chunk, output discarded),
after one warm-up run; "x real time" is audio seconds / wall seconds of building the renderer
(air absorption, voices) plus rendering, the best of --repeats (the median is in the JSON). The
HRTF set (SOFA read, resampled to the rate, triangulated) is loaded once before timing; its load
time is reported on its own. Targets of the issue: a moving binaural source at least 100x real
time; 3rd-order ambisonics of 32 moving sources at least 10x real time.

Moving sources: source i circles the head once every 3 + i/4 s at elevation -30..60 degrees,
distance 1..4 m, alternately clockwise, so every control point has a new direction and distance
(Doppler on).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone

import numpy as np

from bench.results import cpu_name, write_json

CASES = [  # name, target, sources (0 = --sources), moving, via, room
    ("binaural, 1 moving source", "binaural", 1, True, None, None),
    ("binaural, 1 static source", "binaural", 1, False, None, None),
    ("binaural, 1 moving source, small room", "binaural", 1, True, None, "small"),
    ("hoa3, N moving sources", "hoa3", 0, True, None, None),
    ("foa, N moving sources", "foa", 0, True, None, None),
    ("7.1.4, N moving sources", "7.1.4", 0, True, None, None),
    ("binaural via hoa3, N moving sources", "binaural", 0, True, "hoa3", None),
]


def circling(i: int, seconds: float):
    from soundtok_cli.spatial.trajectory import Trajectory

    period = 3.0 + i / 4.0
    turns = int(np.ceil(seconds / period)) + 1
    steps = 4 * turns
    t = np.arange(steps + 1) * (period / 4)
    sign = 1 if i % 2 == 0 else -1
    az = (sign * 90.0 * np.arange(steps + 1)) % 360.0 - 180.0
    el = np.full(steps + 1, -30.0 + 90.0 * ((i * 0.37) % 1.0))
    dist = 1.0 + 3.0 * ((i * 0.61) % 1.0) + 0.5 * np.sin(np.arange(steps + 1))
    return Trajectory.from_positions(t, np.stack([az, el, dist], axis=1))


def run_case(target, n_sources, moving, via, room, seconds, rate, repeats):
    from soundtok_cli.spatial.render import RenderOptions, SceneRenderer, SpatialSource
    from soundtok_cli.spatial.trajectory import Trajectory

    rng = np.random.default_rng(0)
    sources = [SpatialSource(f"s{i}", (0.05 * rng.standard_normal(int(seconds * rate))).astype(np.float32),
                             circling(i, seconds) if moving else Trajectory.fixed(30.0, 0.0, 2.0))
               for i in range(n_sources)]
    options = RenderOptions(target, rate, room=room, via=via)
    times = []
    for attempt in range(repeats + 1):
        started = time.perf_counter()
        renderer = SceneRenderer(sources, options)
        frames = 0
        for chunk in renderer.chunks():
            frames += len(chunk)
        elapsed = time.perf_counter() - started
        if attempt:  # the first run warms caches (decoder filters, FFT plans)
            times.append(elapsed)
    return {"target": target, "via": via, "room": room, "sources": n_sources, "moving": moving,
            "channels": renderer.channels, "frames": frames, "seconds_best": min(times),
            "seconds_median": statistics.median(times), "x_realtime": seconds / min(times),
            "x_realtime_median": seconds / statistics.median(times)}


def format_report(result: dict) -> str:
    lines = [f"spatial rendering, {result['seconds']:g} s of audio at {result['rate']} Hz, best of "
             f"{result['repeats']} (HRTF load {result['hrtf_load_s']:.2f} s, not included)",
             f"{'case':<42} {'ch':>3} {'x real time':>12} {'median':>8}"]
    for case in result["cases"]:
        lines.append(f"{case['name']:<42} {case['channels']:>3} {case['x_realtime']:>11.1f}x {case['x_realtime_median']:>7.1f}x")
    targets = result["targets"]
    lines.append("")
    lines.append(f"issue targets: moving binaural >= 100x: {targets['binaural_moving_x']:.0f}x "
                 f"({'met' if targets['binaural_moving_met'] else 'NOT met'}); hoa3 x {result['sources']} moving >= 10x: "
                 f"{targets['hoa3_x']:.1f}x ({'met' if targets['hoa3_met'] else 'NOT met'})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.spatial_speed", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="audio per render")
    parser.add_argument("--sources", type=int, default=32, help="sources in the many-source cases")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per case; the best counts")
    parser.add_argument("--rate", type=int, default=48000, help="sample rate")
    parser.add_argument("--out", default="bench/results/spatial_speed.json", help="JSON results file")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.sources < 1 or args.repeats < 1:
        parser.error("--seconds, --sources and --repeats must be positive")

    from soundtok_cli.spatial.hrtf import hrtf_for, load_hrtf

    load_hrtf.cache_clear()
    started = time.perf_counter()
    hrtf_for(None, args.rate)
    hrtf_load = time.perf_counter() - started
    result = {"benchmark": "spatial_speed", "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "seconds": args.seconds, "rate": args.rate, "sources": args.sources, "repeats": args.repeats,
              "hrtf_load_s": hrtf_load, "cases": []}
    for name, target, n, moving, via, room in CASES:
        n = n or args.sources
        label = name.replace("N ", f"{n} ")
        if not args.quiet:
            print(f"{label} ...", file=sys.stderr, flush=True)
        case = run_case(target, n, moving, via, room, args.seconds, args.rate, args.repeats)
        result["cases"].append({"name": label, **case})
    by_name = {c["name"]: c for c in result["cases"]}
    binaural = by_name["binaural, 1 moving source"]["x_realtime"]
    hoa3 = by_name[f"hoa3, {args.sources} moving sources"]["x_realtime"]
    result["targets"] = {"binaural_moving_x": binaural, "binaural_moving_met": binaural >= 100,
                         "hoa3_x": hoa3, "hoa3_met": hoa3 >= 10}
    result["environment"] = {"python": platform.python_version(), "numpy": np.__version__,
                             "cpu_count": os.cpu_count(), "machine": platform.machine(), "processor": cpu_name(),
                             "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
                             "loadavg": os.getloadavg() if hasattr(os, "getloadavg") else None}
    write_json(args.out, result)
    print(format_report(result))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
