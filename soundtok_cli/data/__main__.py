"""``python -m soundtok_cli.data corpus|demo-library ...``: training data tools."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from . import corpus

    ap = argparse.ArgumentParser(prog="python -m soundtok_cli.data", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)

    c = sub.add_parser("corpus", help="build (or extend) the training corpus")
    c.add_argument("--out", type=Path, default=Path("corpus"), help="output directory (default: corpus)")
    c.add_argument("--manifest", type=Path, default=corpus.DEFAULT_MANIFEST,
                   help="training manifest TSV (default: ../shared/data/train_manifest.tsv from the repo root)")
    c.add_argument("--packages", nargs="*", default=None, metavar="PKG",
                   help="only these manifest packages (default: all); give none for generated audio only")
    c.add_argument("--only-cached", action="store_true", help="skip packages whose .deb is not downloaded yet")
    c.add_argument("--max-deb-mb", type=float, default=None,
                   help="skip packages whose downloaded .deb is larger than this (quick first passes)")
    c.add_argument("--cache-dir", type=Path, default=Path(".cache/debs"))
    c.add_argument("--pkgs-dir", type=Path, default=Path(".cache/pkgs"))
    c.add_argument("--speech-min", type=float, default=60.0, help="minutes of espeak-ng speech (default 60)")
    c.add_argument("--music-min", type=float, default=60.0, help="minutes of FluidSynth music (default 60)")
    c.add_argument("--synth-min", type=float, default=60.0, help="minutes of synthesised sound (default 60)")
    c.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    c.add_argument("--shard-mb", type=float, default=256.0, help="shard size in MB (default 256)")
    c.add_argument("--download-only", action="store_true", help="only download and unpack packages")

    d = sub.add_parser("demo-library", help="write the demo sound library")
    d.add_argument("out_dir", type=Path)
    d.add_argument("--sample-rate", type=int, default=48000)

    s = sub.add_parser("stats", help="hours per split and kind of a corpus")
    s.add_argument("out", type=Path, nargs="?", default=Path("corpus"))

    r = sub.add_parser("recaption", help="re-derive the captions of manifest recordings in a corpus")
    r.add_argument("out", type=Path, nargs="?", default=Path("corpus"))
    r.add_argument("--manifest", type=Path, default=corpus.DEFAULT_MANIFEST)

    args = ap.parse_args(argv)
    try:
        return _run(args)
    except RuntimeError as e:  # a locked corpus, a failed tool: one line, not a traceback
        print(f"error: {e}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    from . import corpus

    if args.cmd == "corpus":
        cfg = corpus.Config(
            out=args.out, manifest=args.manifest, cache_dir=args.cache_dir, pkgs_dir=args.pkgs_dir,
            packages=args.packages, only_cached=args.only_cached, max_deb_mb=args.max_deb_mb, speech_min=args.speech_min,
            music_min=args.music_min, synth_min=args.synth_min, jobs=args.jobs,
            shard_bytes=int(args.shard_mb * 1024 * 1024), download_only=args.download_only)
        if not cfg.manifest.exists() and args.packages != []:
            print(f"error: manifest not found: {cfg.manifest}", file=sys.stderr)
            return 2
        corpus.build(cfg)
        return 0
    if args.cmd == "demo-library":
        from .synth import demo_library

        for p in demo_library(args.out_dir, sample_rate=args.sample_rate):
            print(p)
        return 0
    if args.cmd == "recaption":
        print(f"{corpus.recaption(args.out, args.manifest)} captions changed")
        return 0
    if args.cmd == "stats":
        sys.stdout.write(corpus.format_stats(corpus.stats(args.out)))
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
