"""Codec speed and memory: soundtok next to EnCodec 24 kHz (6 kbps), same run, same threads.

  python -m bench.codec_speed [--seconds 60] [--threads 2] [--levels 8] [--repeats 3]
                              [--long-seconds 600] [--device cpu|cuda|auto]
                              [--batch 64 --batch-seconds 10]
                              [--out bench/results/codec_speed.json]

Speed: N seconds of synthetic music-like audio (harmonic notes with decaying envelopes plus noise)
are encoded and decoded after a warm-up; "x real time" is audio seconds per wall-clock second, the
best of --repeats runs. soundtok goes through the library API exactly as `soundtok encode` /
`soundtok decode` do (48 kHz input pushed in 2 s chunks into the streaming encoder; decoding
block by block), at --levels (8 levels = 6 kbps, EnCodec's bitrate here). EnCodec is the 24 kHz
model (random weights: speed only) at 6 kbps, given the same duration at 24 kHz as one (1, 1, T)
tensor, which is how its API is used.

Batched (--batch N): N clips of --batch-seconds each, encoded in one call by each codec: soundtok
through `NeuralCodec.encode_clips` (the same codes as the streaming encoder), EnCodec through
`model.encode` on an (N, 1, T) tensor, as its batch-64 GPU figure in ANCHORS.md was measured.
"x real time" is N x seconds of audio per wall-clock second, host-to-device copies included.

Memory: --long-seconds of audio are generated and pushed 2 s at a time into one streaming encoder,
then the codes are decoded block by block and the audio discarded (as a writer would consume it);
resident memory (RSS) is sampled after every chunk. Flat memory means the RSS after the first 10 %
of the file and the peak over the whole file are about the same, whatever the length.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
import time
from datetime import datetime, timezone

import numpy as np

from bench.results import cpu_name, write_json

CHUNK_SECONDS = 2
NOTE_SECONDS = 0.25


def music_like(start: int, n: int, sr: int, seed: int = 0) -> np.ndarray:
    """Samples [start, start + n) of an endless, deterministic music-like signal at rate sr:
    a new note (4 harmonics, decaying) every 0.25 s over a bed of noise. Any chunking of the
    same range gives the same samples, so long files can be generated piece by piece."""
    table = np.random.default_rng(seed).integers(0, 37, 64)  # semitones above 110 Hz
    t = (start + np.arange(n)) / sr
    note = np.floor(t / NOTE_SECONDS).astype(np.int64)
    f0 = 110.0 * 2.0 ** (table[note % len(table)] / 12.0)
    since = t - note * NOTE_SECONDS
    envelope = np.exp(-6.0 * since)
    tone = sum(np.sin(2 * np.pi * k * f0 * since) / k for k in range(1, 5))
    noise = np.empty(n)
    first, last = start // sr, (start + n - 1) // sr  # noise comes in 1 s blocks seeded by block index
    for block in range(first, last + 1):
        values = np.random.default_rng((seed, block)).standard_normal(sr)
        lo, hi = max(start, block * sr), min(start + n, (block + 1) * sr)
        noise[lo - start : hi - start] = values[lo - block * sr : hi - block * sr]
    return (0.3 * envelope * tone + 0.03 * noise).astype(np.float32)


def rss_mb() -> float:
    """Current resident set size of this process in MiB."""
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        pass
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:  # not Linux and no psutil: the lifetime peak is the best available
        return peak_rss_mb()


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far in MiB (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


class Timer:
    def __init__(self, device: str):
        self.device = device

    def sync(self) -> None:
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()

    def __call__(self, fn, *args):
        self.sync()
        start = time.perf_counter()
        out = fn(*args)
        self.sync()
        return time.perf_counter() - start, out


def soundtok_encode(codec, x: np.ndarray, levels: int) -> np.ndarray:
    encoder = codec.encoder(codec.config.sample_rate, levels)
    step = CHUNK_SECONDS * codec.config.sample_rate
    parts = [encoder.push(x[i : i + step]) for i in range(0, len(x), step)]
    parts.append(encoder.finish())
    return np.concatenate(parts)


def soundtok_decode(codec, codes: np.ndarray) -> np.ndarray:
    return np.concatenate(list(codec.decode(codes)))


def best_of(timer: Timer, repeats: int, fn, *args):
    times, out = [], None
    for _ in range(repeats):
        seconds, out = timer(fn, *args)
        times.append(seconds)
    return times, out


def speed_entry(seconds: float, times: list[float]) -> dict:
    return {"x_realtime": seconds / min(times), "x_realtime_median": seconds / statistics.median(times),
            "seconds": times}


def bench_soundtok(codec, seconds: float, levels: int, repeats: int, timer: Timer, log) -> dict:
    sr = codec.config.sample_rate
    warm = music_like(0, CHUNK_SECONDS * sr, sr, seed=1)
    soundtok_decode(codec, soundtok_encode(codec, warm, levels))
    x = music_like(0, int(seconds * sr), sr)
    log(f"soundtok: encoding {seconds:g} s x{repeats}")
    enc_times, codes = best_of(timer, repeats, soundtok_encode, codec, x, levels)
    log(f"soundtok: decoding {seconds:g} s x{repeats}")
    dec_times, y = best_of(timer, repeats, soundtok_decode, codec, codes)
    return {"name": f"soundtok {levels} levels", "kbps": codec.config.bitrate_kbps(levels), "sample_rate": sr,
            "frames": int(len(codes)), "decoded_samples": int(len(y)),
            "encode": speed_entry(seconds, enc_times), "decode": speed_entry(seconds, dec_times)}


def bench_encodec(model, seconds: float, repeats: int, device: str, timer: Timer, log) -> dict:
    import torch

    sr = model.sample_rate
    warm = torch.from_numpy(music_like(0, CHUNK_SECONDS * sr, sr, seed=1)).to(device)[None, None]
    x = torch.from_numpy(music_like(0, int(seconds * sr), sr)).to(device)[None, None]

    encodec_decode(model, encodec_encode(model, warm))
    log(f"encodec: encoding {seconds:g} s x{repeats}")
    enc_times, frames = best_of(timer, repeats, encodec_encode, model, x)
    log(f"encodec: decoding {seconds:g} s x{repeats}")
    dec_times, y = best_of(timer, repeats, encodec_decode, model, frames)
    return {"name": "EnCodec (random weights)", "kbps": 6.0, "sample_rate": sr,
            "codebooks": int(frames[0][0].shape[1]), "frames": int(frames[0][0].shape[-1]),
            "parameters": int(sum(p.numel() for p in model.parameters())),
            "encode": speed_entry(seconds, enc_times), "decode": speed_entry(seconds, dec_times)}


def bench_batched(codec, encodec_model, count: int, seconds: float, levels: int, repeats: int, timer: Timer, log) -> dict:
    """Encode `count` clips of `seconds` at once with each codec (see the module docstring)."""
    import torch

    sr = codec.config.sample_rate
    clips = np.stack([music_like(0, int(seconds * sr), sr, seed=10 + i) for i in range(count)])
    codec.encode_clips(clips[:2, : CHUNK_SECONDS * sr], levels)  # warm-up
    log(f"soundtok: encoding {count} x {seconds:g} s at once x{repeats}")
    times, codes = best_of(timer, repeats, codec.encode_clips, clips, levels)
    out = {"clips": count, "clip_seconds": seconds, "soundtok": {"levels": levels, "frames": int(codes.shape[1]),
                                                                "encode": speed_entry(count * seconds, times)}}
    if encodec_model is not None:
        esr = encodec_model.sample_rate
        x = torch.from_numpy(np.stack([music_like(0, int(seconds * esr), esr, seed=10 + i) for i in range(count)]))[:, None]
        encodec_encode(encodec_model, x[:2, :, : CHUNK_SECONDS * esr])
        log(f"encodec: encoding {count} x {seconds:g} s at once x{repeats}")
        times, _ = best_of(timer, repeats, encodec_encode, encodec_model, x)
        out["encodec"] = {"kbps": 6.0, "encode": speed_entry(count * seconds, times)}
    return out


def encodec_encode(model, audio):
    """(B, 1, S) audio on any device -> EnCodec frames (moving the audio counts in the time, as
    it does for soundtok's encode_clips)."""
    import torch

    with torch.inference_mode():
        return model.encode(audio.to(next(model.parameters()).device))


def encodec_decode(model, frames):
    import torch

    with torch.inference_mode():
        return model.decode(frames)


def encodec_24k(device: str):
    """EnCodec 24 kHz at 6 kbps with random weights (speed only: nothing is downloaded)."""
    import warnings

    from encodec import EncodecModel

    warnings.filterwarnings("ignore", message=".*weight_norm.*is deprecated", category=FutureWarning)
    model = EncodecModel.encodec_model_24khz(pretrained=False)
    model.set_target_bandwidth(6.0)
    return model.to(device).eval()


def bench_memory(codec, long_seconds: float, levels: int, timer: Timer, log) -> dict:
    """Stream a long file through encode and then decode, sampling RSS after every chunk/block."""
    sr = codec.config.sample_rate
    step = CHUNK_SECONDS * sr
    total = int(long_seconds * sr)
    log(f"memory: encoding {long_seconds:g} s in {CHUNK_SECONDS} s chunks")
    start_rss = rss_mb()
    encoder = codec.encoder(sr, levels)
    parts, samples = [], []
    t0 = time.perf_counter()
    for i in range(0, total, step):
        parts.append(encoder.push(music_like(i, min(step, total - i), sr, seed=2)))
        samples.append(rss_mb())
    parts.append(encoder.finish())
    codes = np.concatenate(parts)
    timer.sync()
    encode_seconds = time.perf_counter() - t0
    samples.append(rss_mb())
    encode_rss = _rss_summary(start_rss, samples)

    log(f"memory: decoding {long_seconds:g} s block by block")
    dec_samples = []
    t0 = time.perf_counter()
    produced = 0
    for block in codec.decode(codes):
        produced += len(block)
        dec_samples.append(rss_mb())
    timer.sync()
    decode_seconds = time.perf_counter() - t0
    decode_rss = _rss_summary(start_rss, dec_samples)
    out = {"seconds": long_seconds, "chunk_seconds": CHUNK_SECONDS, "levels": levels, "frames": int(len(codes)),
           "codes_mb": codes.nbytes / 2**20, "decoded_samples": produced,
           "encode": {**encode_rss, "x_realtime": long_seconds / encode_seconds},
           "decode": {**decode_rss, "x_realtime": long_seconds / decode_seconds},
           "process_peak_rss_mb": peak_rss_mb()}
    if codec.device == "cuda":
        import torch

        out["cuda_max_allocated_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def _rss_summary(start: float, samples: list[float]) -> dict:
    if not samples:
        return {"rss_start_mb": start, "rss_at_10pct_mb": start, "rss_peak_mb": start, "rss_end_mb": start, "growth_mb": 0.0}
    tenth = samples[max(0, len(samples) // 10 - 1)]
    peak = max(samples)
    return {"rss_start_mb": start, "rss_at_10pct_mb": tenth, "rss_peak_mb": peak, "rss_end_mb": samples[-1],
            "growth_mb": peak - tenth}


def format_report(result: dict) -> str:
    s, e = result["soundtok"], result.get("encodec")
    lines = [f"codec speed, {result['seconds']:g} s of audio, {result['threads']} threads, device {result['device']} "
             f"(x real time, best of {result['repeats']})",
             f"{'codec':<42} {'kbps':>5} {'encode':>9} {'decode':>9}",
             "-" * 68]
    for r in (s, e):
        if r:
            lines.append(f"{r['name'] + ' @' + str(r['sample_rate'] // 1000) + ' kHz':<42} {r['kbps']:>5g} "
                         f"{r['encode']['x_realtime']:>8.1f}x {r['decode']['x_realtime']:>8.1f}x")
    if e:
        ratio = result["ratio"]
        lines.append(f"{'soundtok / EnCodec':<42} {'':>5} {ratio['encode']:>8.2f}x {ratio['decode']:>8.2f}x")
    b = result.get("batched")
    if b:
        lines.append("")
        lines.append(f"batched encode, {b['clips']} clips of {b['clip_seconds']:g} s at once (x real time)")
        lines.append(f"{'soundtok':<42} {b['soundtok']['encode']['x_realtime']:>8.0f}x")
        if "encodec" in b:
            lines.append(f"{'EnCodec 24 kHz, 6 kbps':<42} {b['encodec']['encode']['x_realtime']:>8.0f}x")
    m = result.get("memory")
    if m:
        lines.append("")
        lines.append(f"memory, {m['seconds']:g} s pushed in {m['chunk_seconds']} s chunks ({m['levels']} levels; RSS MiB)")
        lines.append(f"{'':<8} {'start':>8} {'at 10%':>8} {'peak':>8} {'end':>8} {'growth':>8} {'x RT':>7}")
        for what in ("encode", "decode"):
            r = m[what]
            lines.append(f"{what:<8} {r['rss_start_mb']:>8.1f} {r['rss_at_10pct_mb']:>8.1f} {r['rss_peak_mb']:>8.1f} "
                         f"{r['rss_end_mb']:>8.1f} {r['growth_mb']:>8.1f} {r['x_realtime']:>6.1f}x")
        lines.append("growth = peak - RSS after the first 10% of the file (flat memory: about 0)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.codec_speed", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="audio duration for the speed runs")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch intra-op threads (both codecs)")
    parser.add_argument("--levels", type=int, default=8, help="soundtok levels (8 = 6 kbps, EnCodec's bitrate here)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement; the best counts")
    parser.add_argument("--long-seconds", type=float, default=600.0, help="length of the streamed memory test (0 skips it)")
    parser.add_argument("--batch", type=int, default=0, help="also encode this many clips at once with each codec (0: skip)")
    parser.add_argument("--batch-seconds", type=float, default=10.0, help="length of each clip of --batch")
    parser.add_argument("--no-encodec", action="store_true", help="skip the EnCodec baseline")
    parser.add_argument("--codec", default="soundtok-codec", help="built-in codec name")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (auto picks CUDA when present)")
    parser.add_argument("--out", default="bench/results/codec_speed.json", help="JSON results file")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.repeats < 1 or args.threads < 1 or args.batch < 0 or args.batch_seconds <= 0:
        parser.error("--seconds, --repeats, --threads and --batch-seconds must be positive, --batch not negative")

    def log(message: str) -> None:
        if not args.quiet:
            print(message, file=sys.stderr, flush=True)

    if not args.no_encodec:
        try:
            import encodec  # noqa: F401
        except ImportError:
            parser.error("the EnCodec baseline needs `pip install encodec` (the `bench` extra), or pass --no-encodec")

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    from soundtok_cli.models.registry import load_codec

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    rss_before_model = rss_mb()
    codec = load_codec(args.codec, args.device)
    if not 1 <= args.levels <= codec.config.levels:
        parser.error(f"--levels must lie between 1 and {codec.config.levels}")
    timer = Timer(codec.device)
    result = {"benchmark": "codec_speed", "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "seconds": args.seconds, "threads": args.threads, "repeats": args.repeats, "device": codec.device,
              "codec": {**codec.describe(args.levels),
                        "parameters": int(sum(p.numel() for p in codec.model.parameters()))},
              "rss_before_model_mb": rss_before_model}

    result["soundtok"] = bench_soundtok(codec, args.seconds, args.levels, args.repeats, timer, log)
    # the memory test runs before EnCodec allocates anything, so the process peak belongs to soundtok
    if args.long_seconds > 0:
        result["memory"] = bench_memory(codec, args.long_seconds, args.levels, timer, log)
    encodec_model = None if args.no_encodec else encodec_24k(codec.device)
    if encodec_model is not None:
        result["encodec"] = bench_encodec(encodec_model, args.seconds, args.repeats, codec.device, timer, log)
        result["ratio"] = {k: result["soundtok"][k]["x_realtime"] / result["encodec"][k]["x_realtime"]
                           for k in ("encode", "decode")}
    if args.batch:
        result["batched"] = bench_batched(codec, encodec_model, args.batch, args.batch_seconds, args.levels,
                                          args.repeats, timer, log)
    result["environment"] = {"python": platform.python_version(), "torch": torch.__version__,
                             "cpu_count": os.cpu_count(), "machine": platform.machine(), "processor": cpu_name(),
                             "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
                             "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
                             "cuda_device": torch.cuda.get_device_name() if codec.device == "cuda" else None}
    result["wall_seconds"] = time.perf_counter() - started
    write_json(args.out, result)
    print(format_report(result))
    print(f"\nwrote {args.out} in {result['wall_seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
