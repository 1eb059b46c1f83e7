"""Search speed: cold `soundtok search` over 100,000 segments, building an index of 1,000,000
vectors, and the approximate index's recall and latency.

  python -m bench.search_speed [--small 100000] [--large 1000000] [--runs 5]
                               [--workdir DIR] [--keep] [--out bench/results/search_speed.json]

Vectors are not uniform noise (which has no neighbourhoods and says nothing about approximate
search) but `bench.vectors.clustered_unit_vectors`: 384-d unit vectors from a two-level mixture of
Gaussian clusters (200 topics, 4,000 clusters of Zipf-like sizes and varied spreads). Each index is
built from an embeddings store of files of 50 segments, through the CLI (`soundtok index`), with
the real text tower's checksum and the built-in embedder's identity in the embedder attributes,
so the text search is the real one (its query pulled toward the nearest trained caption's sound).

(a) cold search: `soundtok search "distant thunder" -i IDX -k 10` as a new process, wall time,
    median of --runs, over the --small index (index files in the OS page cache, as after any
    earlier use), three ways: an empty query cache (the first search ever: the text model's
    checksum is computed and the model loaded), a new query (checksum cached, model loaded), and a
    repeated query (its vector cached, the model not loaded).
(b) build: `soundtok index STORE -o IDX` wall time for the --large store (reading the store,
    writing the generation, k-means, adding, nprobe tuning), and the recall@10 it measured.
(c) the approximate index, in one warm process: recall@10 against exact (numpy brute force over
    the stored vectors) on 200 fresh queries (100 perturbed data points, 100 midpoints of two),
    and the latency of one search (per segment and per file), median and 95th percentile; plus a
    cold `soundtok search` over it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone

import numpy as np

from bench.results import write_json
from bench.vectors import clustered_unit_vectors

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIM = 384
SEGMENTS_PER_FILE = 50
QUERY = "distant thunder"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cli() -> list[str]:
    script = os.path.join(os.path.dirname(sys.executable), "soundtok")
    return [script] if os.path.exists(script) else [sys.executable, "-m", "soundtok_cli.app"]


def embedder_attrs() -> dict:
    """The built-in embedder's identity (so search loads its caption table and pulls queries as it
    does for a real library) over made-up vectors."""
    from soundtok_cli.embed.text import describe_text_tower
    from soundtok_cli.models.registry import DEFAULT_EMBEDDER, find, sha256

    text = describe_text_tower()
    entry = find(DEFAULT_EMBEDDER)
    return {"name": entry.name, "version": entry.version, "weights_sha256": sha256(entry.path()), "dim": DIM,
            "window": 2.0, "hop": 1.0,
            "codec": {"name": "bench-codec", "version": "1", "weights_sha256": "bc" * 32,
                      "sample_rate": 48000, "frame_rate": 75, "levels": 8, "codebook_size": 1024},
            "text": {"name": text["name"], "dim": text["dim"], "weights_sha256": text["weights_sha256"]}}


def write_store(path: str, vectors: np.ndarray, embedder: dict) -> float:
    """An embeddings store of files of SEGMENTS_PER_FILE segments each; returns seconds taken."""
    from soundtok_cli.embed.batch import embeddings_batch
    from soundtok_cli.io.sink import open_sink

    started = time.perf_counter()
    files_per_batch = 1000
    n_files = len(vectors) // SEGMENTS_PER_FILE
    times = np.stack([np.arange(SEGMENTS_PER_FILE, dtype=np.float64),
                      np.arange(SEGMENTS_PER_FILE, dtype=np.float64) + 2.0], axis=1)
    with open_sink(path) as sink:
        for lo in range(0, n_files, files_per_batch):
            hi = min(n_files, lo + files_per_batch)
            names = [f"/library/sfx/{i // 100:04d}/take{i:07d}.wav" for i in range(lo, hi)]
            parts = [vectors[i * SEGMENTS_PER_FILE : (i + 1) * SEGMENTS_PER_FILE] for i in range(lo, hi)]
            means = np.stack([p.mean(axis=0) for p in parts])
            means /= np.linalg.norm(means, axis=1, keepdims=True)
            items = {"source": names, "channel": [0] * len(names), "sample_rate": [48000] * len(names),
                     "duration": [SEGMENTS_PER_FILE + 1.0] * len(names),
                     "content_hash": [f"{i:016x}" for i in range(lo, hi)]}
            sink.write(embeddings_batch(embedder, "bench", items, [times] * len(parts), parts, means))
    return time.perf_counter() - started


def timed_run(args: list[str], env: dict) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    result = subprocess.run(args, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return elapsed, result


def cold_searches(index: str, runs: int, workdir: str, env: dict) -> dict[str, list[float]]:
    """Wall times of new `soundtok search` processes, three cache states (see module doc),
    interleaved run by run so that changing load on the machine affects all three alike."""
    out: dict[str, list[float]] = {"empty_cache": [], "new_query": [], "repeated_query": []}
    args = cli() + ["search", QUERY, "-i", index, "-k", "10"]
    warm = dict(env, SOUNDTOK_CACHE_DIR=os.path.join(workdir, "warm-cache"))
    timed_run(args, warm)  # index files into the page cache; the repeated query's vector cached
    for run in range(runs):
        fresh = dict(env, SOUNDTOK_CACHE_DIR=os.path.join(workdir, f"empty-cache-{run}"))
        out["empty_cache"].append(timed_run(args, fresh)[0])
        new = cli() + ["search", f"{QUERY} {run + 1}", "-i", index, "-k", "10"]
        out["new_query"].append(timed_run(new, warm)[0])
        out["repeated_query"].append(timed_run(args, warm)[0])
    return out


def approximate_quality(index: str, vectors: np.ndarray, queries: int = 200, repeats: int = 3) -> dict:
    """Recall@10 of the index against numpy brute force on fresh queries, and warm latency."""
    from soundtok_cli.index.ann import exact_scores_topk
    from soundtok_cli.index.search import IndexReader

    rng = np.random.default_rng(2024)
    n = len(vectors)
    a = vectors[rng.integers(0, n, queries // 2)]
    b = vectors[rng.integers(0, n, queries // 2)]
    q = np.concatenate([a + 0.3 * rng.standard_normal(a.shape).astype(np.float32) / np.sqrt(DIM), a + b])
    q = (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)
    reader = IndexReader(index)
    loaded = reader.load()
    stored = loaded.vectors  # the float16 vectors the index holds: exact search is over these
    bars = exact_scores_topk(stored, q, 10)[0][:, -1]
    found = 0
    per_segment, per_file = [], []
    for i in range(len(q)):
        started = time.perf_counter()
        hits = reader.search(q[i], 10, per_file=False)
        per_segment.append(time.perf_counter() - started)
        exact = np.asarray(stored[np.sort([h.id for h in hits])], np.float32) @ q[i]
        found += int(np.count_nonzero(exact >= bars[i] - 1e-4))
    for _ in range(repeats):
        for i in range(len(q)):
            started = time.perf_counter()
            reader.search(q[i], 10, per_file=True)
            per_file.append(time.perf_counter() - started)
    current = reader.current
    reader.close()

    def ms(values: list[float]) -> dict:
        values = sorted(values)
        return {"median_ms": round(1000 * statistics.median(values), 3),
                "p95_ms": round(1000 * values[int(0.95 * (len(values) - 1))], 3)}

    return {"recall_at_10": round(found / (10 * len(q)), 4), "queries": len(q),
            "per_segment": ms(per_segment), "per_file": ms(per_file), "index": current.index}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=100_000, help="segments of the cold-search index")
    parser.add_argument("--large", type=int, default=1_000_000, help="vectors of the build benchmark (0: skip it)")
    parser.add_argument("--runs", type=int, default=5, help="cold searches per cache state")
    parser.add_argument("--workdir", default=None, help="where stores and indexes go (default: a temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "search_speed.json"))
    args = parser.parse_args()

    embedder = embedder_attrs()  # before the work directory: it fails without the text model
    workdir = args.workdir or tempfile.mkdtemp(prefix="soundtok-search-bench-")
    os.makedirs(workdir, exist_ok=True)
    env = dict(os.environ)
    env.pop("SOUNDTOK_INDEX", None)
    load_before = os.getloadavg()
    results: dict = {
        "benchmark": "search_speed",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_at_start": [round(x, 2) for x in load_before]},
        "vectors": "clustered_unit_vectors: 384-d, 200 topics, 4000 clusters (bench/vectors.py)",
    }
    try:
        import faiss

        results["machine"]["faiss"] = faiss.__version__
        results["machine"]["faiss_gpus"] = faiss.get_num_gpus()

        # (a) cold search over the small index
        log(f"(a) {args.small} segments: writing the store, indexing")
        small = clustered_unit_vectors(args.small, DIM, seed=1)
        store = os.path.join(workdir, "small.zarr.zip")
        write_store(store, small, embedder)
        small_index = os.path.join(workdir, "small.index")
        build_small, _ = timed_run(cli() + ["index", store, "-o", small_index, "-q"], env)
        log(f"    indexed in {build_small:.1f} s; {args.runs} cold searches per cache state")
        cold = cold_searches(small_index, args.runs, workdir, env)
        with open(os.path.join(small_index, "CURRENT")) as f:
            small_current = json.load(f)
        results["cold_search"] = {
            "segments": args.small, "index": small_current["index"], "index_build_s": round(build_small, 2),
            "command": f"soundtok search \"{QUERY}\" -i IDX -k 10",
            **{state: {"median_s": round(statistics.median(v), 3), "runs_s": [round(x, 3) for x in v]}
               for state, v in cold.items()},
        }
        del small

        if not args.large:
            return finish(args, results, workdir)
        # (b) building the large index, (c) its quality and latency
        log(f"(b) {args.large} vectors: generating, writing the store")
        large = clustered_unit_vectors(args.large, DIM, seed=2)
        store = os.path.join(workdir, "large.zarr.zip")
        store_s = write_store(store, large, embedder)
        large_index = os.path.join(workdir, "large.index")
        log(f"    store written in {store_s:.0f} s; `soundtok index` of {args.large} vectors")
        build_s, built = timed_run(cli() + ["index", store, "-o", large_index, "-v"], env)
        with open(os.path.join(large_index, "CURRENT")) as f:
            large_current = json.load(f)
        results["build"] = {"vectors": args.large, "wall_s": round(build_s, 2), "index": large_current["index"],
                            "command": "soundtok index STORE -o IDX", "log": built.stderr.strip().splitlines()}
        log(f"    built in {build_s:.1f} s: {large_current['index']}")
        log("(c) recall against exact and latency, warm, in one process")
        results["approximate"] = approximate_quality(large_index, large)
        log("    cold `soundtok search` over it (query cached)")
        args_large = cli() + ["search", QUERY, "-i", large_index, "-k", "10"]
        warm = dict(env, SOUNDTOK_CACHE_DIR=os.path.join(workdir, "warm-cache"))
        timed_run(args_large, warm)
        large_cold = [timed_run(args_large, warm)[0] for _ in range(args.runs)]
        results["approximate"]["cold_search_repeated_query_median_s"] = round(statistics.median(large_cold), 3)
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    finish(args, results, workdir)


def finish(args: argparse.Namespace, results: dict, workdir: str) -> None:
    if not args.keep and not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    write_json(args.out, results)
    print_table(results)
    log(f"wrote {args.out}")


def print_table(r: dict) -> None:
    c = r["cold_search"]
    rows = [
        (f"cold search, {c['segments']:,} segments, empty query cache", f"{c['empty_cache']['median_s']:.3f} s", "median"),
        (f"cold search, {c['segments']:,} segments, new query", f"{c['new_query']['median_s']:.3f} s", "median"),
        (f"cold search, {c['segments']:,} segments, repeated query", f"{c['repeated_query']['median_s']:.3f} s", "median"),
        (f"  index type ({c['segments']:,})", c["index"].get("factory", "?"),
         f"nprobe {c['index'].get('nprobe', '-')}, recall@10 {c['index'].get('recall_at_10', '-')}"),
    ]
    if "build" in r:
        rows += _large_rows(r["build"], r["approximate"])
    width = max(len(row[0]) for row in rows)
    print(f"{'measure':<{width}}  {'value':>12}  note")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>12}  {note}")


def _large_rows(b: dict, a: dict) -> list[tuple[str, str, str]]:
    return [
        (f"build, {b['vectors']:,} vectors", f"{b['wall_s']:.1f} s", b["index"].get("factory", "?")),
        ("  recall@10 measured at build", str(b["index"].get("recall_at_10")),
         f"nprobe {b['index'].get('nprobe')} of {b['index'].get('nlist')}"),
        ("  recall@10, 200 fresh queries", str(a["recall_at_10"]), "vs numpy brute force"),
        ("  one search, per segment (warm)", f"{a['per_segment']['median_ms']:.2f} ms", f"p95 {a['per_segment']['p95_ms']:.2f} ms"),
        ("  one search, per file (warm)", f"{a['per_file']['median_ms']:.2f} ms", f"p95 {a['per_file']['p95_ms']:.2f} ms"),
        (f"  cold search, {b['vectors']:,}, repeated query", f"{a['cold_search_repeated_query_median_s']:.3f} s", "median"),
    ]


if __name__ == "__main__":
    main()
