"""Codec quality on a held-out clip set: soundtok at several level counts next to Opus, same run.

  python -m bench.codec_quality --clips corpus/heldout/clips [--levels 1,2,4,8,16,32]
                                [--opus 1.5,3,6,12,24] [--out bench/results/codec_quality.json]
                                [--limit N] [--threads T] [--device auto|cpu|cuda]

Every clip (*.wav in --clips; the kind is the file-name prefix before the first "-": sfx, speech,
music) goes through the soundtok codec via the library API (encode once at the largest level
count, then decode each prefix of levels: residual VQ codes for L levels are the first L columns of
the codes for more levels) and through opusenc/opusdec at each bitrate. Figures follow the
yardstick definition in bench/yardstick.py: mel = mean multi-scale log-mel L1 distance (lower is
better), SI-SDR = median in dB, both at 48 kHz mono after removing codec delay.

Also reported: codebook utilisation per level over all clips (fraction of the codebook used,
entropy of the code histogram in bits), and "content above 12 kHz": the energy above 12 kHz of the
decoded clip relative to the reference, in dB (0 = all there, negative = lost, positive = added),
averaged over the clips whose reference has energy there.
"""

from __future__ import annotations

import argparse
import glob
import math
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone

import numpy as np
import soundfile as sf

from bench import yardstick
from bench.results import write_json

KINDS = ("sfx", "speech", "music")
HF_CUTOFF_HZ = 12000.0
HF_MIN_FRACTION = 1e-5  # a reference "has energy above 12 kHz" when at least -50 dB of its total lies there
HF_FLOOR_DB = -100.0  # a decoded clip with nothing above 12 kHz counts as -100 dB
PUSH_SECONDS = 2  # the CLI reads and pushes audio in 2 s blocks


def parse_list(text: str, kind=float) -> list:
    text = text.strip()
    if text.lower() in ("", "none", "off"):
        return []
    return [kind(part) for part in text.split(",") if part.strip()]


def kind_of(path: str) -> str:
    prefix = os.path.basename(path).split("-", 1)[0].lower()
    return prefix if prefix in KINDS else "other"


def list_clips(folder: str, limit: int | None) -> list[str]:
    """The clip set: *.wav in folder, sorted; with limit, at most that many clips of each kind."""
    paths = sorted(glob.glob(os.path.join(folder, "*.wav")))
    if limit is None:
        return paths
    taken: dict[str, int] = {}
    chosen = []
    for path in paths:
        kind = kind_of(path)
        if taken.get(kind, 0) < limit:
            taken[kind] = taken.get(kind, 0) + 1
            chosen.append(path)
    return chosen


def hf_ratio_db(ref: np.ndarray, est: np.ndarray) -> float | None:
    """Energy above 12 kHz of est relative to ref in dB (aligned, equal-length 48 kHz signals), or
    None when the reference has (almost) nothing there."""
    freqs = np.fft.rfftfreq(len(ref), 1.0 / yardstick.SR)
    ref_power = np.abs(np.fft.rfft(ref)) ** 2
    est_power = np.abs(np.fft.rfft(est)) ** 2
    high = freqs > HF_CUTOFF_HZ
    ref_high, ref_total = float(ref_power[high].sum()), float(ref_power.sum())
    if ref_total <= 0 or ref_high < HF_MIN_FRACTION * ref_total:
        return None
    est_high = float(est_power[high].sum())
    if est_high <= 0:
        return HF_FLOOR_DB
    return max(HF_FLOOR_DB, 10 * math.log10(est_high / ref_high))


def score_clip(path: str, ref: np.ndarray, est: np.ndarray) -> dict:
    ref_a, est_a = yardstick.prepare_pair(ref, est)
    return {"file": os.path.basename(path), "kind": kind_of(path),
            "mel": float(yardstick.mel_distance(ref_a, est_a, yardstick.SR)),
            "sisdr": float(yardstick.si_sdr(ref_a, est_a)),
            "hf_db": hf_ratio_db(ref_a, est_a)}


def summarise_system(system: dict) -> dict:
    clips = system["clips"]
    kinds = [k for k in KINDS + ("other",) if any(c["kind"] == k for c in clips)]
    groups = {"all": clips, **{k: [c for c in clips if c["kind"] == k] for k in kinds}}
    system["mel"], system["sisdr"], system["n"], system["hf_db"] = {}, {}, {}, {}
    for group, members in groups.items():
        figures = yardstick.summarise(members)
        system["mel"][group], system["sisdr"][group], system["n"][group] = figures["mel"], figures["sisdr"], figures["n"]
        hf = [c["hf_db"] for c in members if c["hf_db"] is not None]
        system["hf_db"][group] = {"mean": float(np.mean(hf)) if hf else None, "n": len(hf)}
    return system


def read_channels(path: str) -> tuple[np.ndarray, int]:
    x, sr = sf.read(path, dtype="float32", always_2d=True)
    return x, sr


def codebook_stats(counts: np.ndarray) -> list[dict]:
    """counts (levels, codebook_size) -> per level: fraction of codes used, entropy in bits."""
    out = []
    for level, row in enumerate(counts):
        total = row.sum()
        p = row[row > 0] / total if total else np.zeros(0)
        out.append({"level": level, "used_fraction": float((row > 0).mean()),
                    "entropy_bits": float(-(p * np.log2(p)).sum()) if total else 0.0,
                    "max_entropy_bits": float(np.log2(len(row)))})
    return out


class SoundtokRunner:
    """Encodes each clip once at the largest level count and decodes every requested prefix."""

    def __init__(self, codec, levels: list[int]):
        self.codec, self.levels = codec, sorted(levels)
        self.max_levels = self.levels[-1]
        size = codec.config.codebook_size
        self.counts = np.zeros((self.max_levels, size), dtype=np.int64)
        self.encode_seconds = 0.0
        self.decode_seconds = {n: 0.0 for n in self.levels}
        self.audio_seconds = 0.0

    def _sync(self):
        if self.codec.device == "cuda":
            import torch

            torch.cuda.synchronize()

    def encode(self, x: np.ndarray, sr: int) -> list[np.ndarray]:
        start = time.perf_counter()
        codes = []
        step = PUSH_SECONDS * sr
        for ch in range(x.shape[1]):
            encoder = self.codec.encoder(sr, self.max_levels)
            parts = [encoder.push(np.ascontiguousarray(x[i : i + step, ch])) for i in range(0, len(x), step)]
            parts.append(encoder.finish())
            codes.append(np.concatenate(parts))
        self._sync()
        self.encode_seconds += time.perf_counter() - start
        self.audio_seconds += len(x) / sr
        size = self.counts.shape[1]
        for c in codes:
            for level in range(self.max_levels):
                self.counts[level] += np.bincount(c[:, level].astype(np.int64), minlength=size)[:size]
        return codes

    def decode(self, codes: list[np.ndarray], levels: int, n_samples: int) -> np.ndarray:
        """48 kHz mono float64 of the given length (channels averaged, as the yardstick reads a file)."""
        start = time.perf_counter()
        channels = []
        for c in codes:
            y = np.concatenate(list(self.codec.decode(np.ascontiguousarray(c[:, :levels]))) or [np.zeros(0, np.float32)])
            y = y[:n_samples]
            if len(y) < n_samples:
                y = np.concatenate([y, np.zeros(n_samples - len(y), y.dtype)])
            channels.append(y.astype(np.float64))
        self._sync()
        self.decode_seconds[levels] += time.perf_counter() - start
        return np.mean(channels, axis=0)


def fmt(value, digits=3, width=7) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-".rjust(width)
    return f"{value:{width}.{digits}f}"


def format_table(systems: list[dict]) -> str:
    head = f"{'system':<30} {'kbps':>6}  {'mel all':>7} {'sfx':>7} {'speech':>7} {'music':>7}  {'SI-SDR':>7}  {'>12k dB':>7}"
    lines = [head, "-" * len(head)]
    for s in systems:
        lines.append(f"{s['name']:<30} {s['kbps']:>6g}  {fmt(s['mel'].get('all'))} {fmt(s['mel'].get('sfx'))} "
                     f"{fmt(s['mel'].get('speech'))} {fmt(s['mel'].get('music'))}  {fmt(s['sisdr'].get('all'), 2)}  "
                     f"{fmt(s['hf_db']['all']['mean'], 1)}")
    lines.append("mel: multi-scale log-mel L1 distance, mean over clips (lower is better); SI-SDR: median, dB;")
    lines.append(">12k dB: energy above 12 kHz, decoded vs reference, mean over clips with energy there (0 = kept).")
    return "\n".join(lines)


def format_codebook(stats: list[dict], per_line: int = 4) -> str:
    if not stats:
        return "no codes"
    cells = [f"L{s['level']:<3d}{100 * s['used_fraction']:>6.1f}% {s['entropy_bits']:>5.2f}" for s in stats]
    lines = [f"per level: codes used (% of codebook), entropy in bits (of {stats[0]['max_entropy_bits']:g})"]
    for i in range(0, len(cells), per_line):
        lines.append("   ".join(cells[i : i + per_line]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.codec_quality", description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", required=True, help="folder of held-out WAV clips named {kind}-NNN.wav")
    parser.add_argument("--levels", default="1,2,4,8,16,32", help="soundtok level counts, comma-separated")
    parser.add_argument("--opus", default="1.5,3,6,12,24", help="Opus bitrates in kbps, comma-separated ('none' to skip)")
    parser.add_argument("--out", default="bench/results/codec_quality.json", help="JSON results file")
    parser.add_argument("--limit", type=int, default=None, help="at most N clips of each kind (quick runs)")
    parser.add_argument("--codec", default="soundtok-codec", help="built-in codec name")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch intra-op threads")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)

    levels = sorted(set(parse_list(args.levels, int)))
    bitrates = sorted(set(parse_list(args.opus, float)))
    clips = list_clips(args.clips, args.limit)
    if not clips:
        parser.error(f"no *.wav clips in {args.clips}")
    if bitrates and not (_which("opusenc") and _which("opusdec")):
        parser.error("opusenc/opusdec not found (install opus-tools), or pass --opus none")

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    from soundtok_cli.models.registry import load_codec

    torch.set_num_threads(max(1, args.threads))
    runner = None
    codec_info = None
    if levels:
        codec = load_codec(args.codec, args.device)
        if levels[0] < 1 or levels[-1] > codec.config.levels:
            parser.error(f"--levels must lie between 1 and {codec.config.levels}")
        runner = SoundtokRunner(codec, levels)
        codec_info = {**codec.describe(levels[-1]), "device": codec.device}
        del codec_info["levels"]

    systems = []
    by_levels = {}
    for n in levels:
        by_levels[n] = {"name": f"soundtok {n} levels ({runner.codec.config.bitrate_kbps(n):g} kbps)", "family": "soundtok",
                        "levels": n, "kbps": runner.codec.config.bitrate_kbps(n), "clips": []}
        systems.append(by_levels[n])
    by_kbps = {}
    for k in bitrates:
        by_kbps[k] = {"name": f"opus {k:g} kbps", "family": "opus", "kbps": k, "clips": []}
        systems.append(by_kbps[k])

    started = time.perf_counter()
    opus_seconds = 0.0
    with tempfile.TemporaryDirectory(prefix="soundtok-bench-") as tmp:
        for i, path in enumerate(clips):
            if not args.quiet:
                print(f"[{i + 1}/{len(clips)}] {os.path.basename(path)}", file=sys.stderr, flush=True)
            ref = yardstick.read_mono48(path)
            if runner is not None:
                x, sr = read_channels(path)
                codes = runner.encode(x, sr)
                for n in levels:
                    est = runner.decode(codes, n, len(ref))
                    by_levels[n]["clips"].append(score_clip(path, ref, est))
            for k in bitrates:
                t0 = time.perf_counter()
                decoded = yardstick.opus_roundtrip(path, k, tmp)
                opus_seconds += time.perf_counter() - t0
                est = yardstick.read_mono48(decoded)
                os.remove(decoded)
                by_kbps[k]["clips"].append(score_clip(path, ref, est))

    for s in systems:
        summarise_system(s)
    if runner is not None:
        for n in levels:
            # informational only (bench/codec_speed.py measures speed properly): encoding ran once,
            # at the largest level count, for all rows
            by_levels[n]["speed"] = {"encode_x_realtime": runner.audio_seconds / max(runner.encode_seconds, 1e-9),
                                     "encode_levels": runner.max_levels,
                                     "decode_x_realtime": runner.audio_seconds / max(runner.decode_seconds[n], 1e-9)}
    stats = codebook_stats(runner.counts) if runner is not None else []
    per_kind = {k: sum(1 for p in clips if kind_of(p) == k) for k in KINDS + ("other",)}

    payload = {
        "benchmark": "codec_quality",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "definition": {"sample_rate": yardstick.SR, "max_lag_s": yardstick.MAX_LAG_SECONDS,
                       "mel_scales": [list(s) for s in yardstick.MEL_SCALES], "log_floor": yardstick.LOG_FLOOR,
                       "mel": "multi-scale log-mel L1 distance, mean over clips (lower is better)",
                       "sisdr": "scale-invariant SDR in dB, median over clips",
                       "hf_db": f"10 log10(energy above {HF_CUTOFF_HZ:g} Hz decoded / reference), mean over clips whose "
                                f"reference has at least {HF_MIN_FRACTION:g} of its energy there; floored at {HF_FLOOR_DB:g} dB",
                       "opus": "opusenc --quiet --bitrate K --hard-cbr; opusdec --quiet --rate 48000"},
        "clips": {"dir": os.path.abspath(args.clips), "n": len(clips), "per_kind": {k: v for k, v in per_kind.items() if v},
                  "limit_per_kind": args.limit, "files": [os.path.basename(p) for p in clips]},
        "codec": codec_info,
        "threads": args.threads,
        "systems": systems,
        "codebook": {"levels": stats, "codebook_size": int(runner.counts.shape[1]) if runner is not None else None,
                     "frames": int(runner.counts[0].sum()) if runner is not None else 0},
        "environment": {"python": platform.python_version(), "torch": torch.__version__, "cpu_count": os.cpu_count(),
                        "machine": platform.machine()},
        "wall_seconds": time.perf_counter() - started,
        "opus_seconds": opus_seconds,
    }
    write_json(args.out, payload)

    print(f"codec quality on {len(clips)} clips from {args.clips} "
          f"({', '.join(f'{k} {v}' for k, v in per_kind.items() if v)}); yardstick definition (bench/yardstick.py)")
    print(format_table(systems))
    if stats:
        print()
        print(f"codebook utilisation over all clips ({payload['codebook']['frames']} frames per level):")
        print(format_codebook(stats))
    print(f"\nwrote {args.out} in {payload['wall_seconds']:.1f} s")
    return 0


def _which(name: str) -> bool:
    import shutil

    return shutil.which(name) is not None


if __name__ == "__main__":
    sys.exit(main())
