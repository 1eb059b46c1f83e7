"""Text-to-sound retrieval quality of the shipped embedder on clips it never saw.

    python -m bench.retrieval --corpus corpus [--threads 2] [--json bench/results/retrieval.json]

The clips: the corpus' held-out packages (lincity-ng-data, xmoto-data and a sample of ktuberling-data,
never trained on by any soundtok model), the training-manifest packages the embedder leaves out
(`HELDOUT_PACKAGES`: openarena, scorched3d, boswars, cube2 — real game sound effects), and procedural
sounds made with the benchmark's own seed. The model sees only audio; file names and folders are
used here only to decide which clips a query should find: a clip belongs to a class when its
caption (cleaned file name and folder) matches the class' pattern, or for procedural sounds by the
generator that made it. Clips of no class stay in as distractors.

Each class is asked for by its class word and by paraphrases; clips are ranked as `soundtok search`
ranks files: half the cosine similarity of their best window to the query, half that of the clip as
a whole (the unit mean of its windows). Also reported: the best window alone (the ranking before
that) and the embedder's item vectors. Queries are read as `soundtok search` reads them: pulled
toward the sound of the nearest trained caption (soundtok_cli/embed/prototypes.py); "as typed" is
the words' own vector (`search --as-typed`). Reported: Hit@1, Hit@10 (a relevant clip among the first k), mAP,
next to their expectation under a random ranking, per query kind and per class. The audio is
encoded with the shipped codec at 8 levels (6 kbps), the default of `soundtok encode`.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import time

import numpy as np

# class -> (caption pattern, synthesis generators, paraphrase queries)
CLASSES: dict[str, tuple[str | None, tuple[str, ...], tuple[str, ...]]] = {
    "speech": (r"\bvoice\b|narration|\btalk|taunt", (), ("a person speaking", "someone talking")),
    "music": (None, ("chord",), ("a piece of music", "a melody played on instruments")),
    "explosion": (r"explo|\bblast|\bbomb|nuclear", (), ("a loud blast", "something blowing up")),
    "gunshot": (r"\bgun|shotgun|rifle|pistol|machinegun|minigun|nailgun|railgun|vulcan|\bshoot|glauncher|rlauncher",
                (), ("a gun firing", "shots being fired")),
    "footsteps": (r"footstep|\bsteps?\b|\bwalk", ("footsteps",), ("someone walking", "steps on a floor")),
    "vehicle": (r"\bcar\b|policecar|firetruck|helicopter|chopper|cessna|rail train|trafic|tankmove|engine|motor",
                ("engine",), ("a motor running", "a vehicle driving past")),
    "water": (r"water|splash|watr|drops|ocean|\brain\b|\blake\b|harbor|gloop", ("rain", "surf"),
              ("water splashing", "flowing water")),
    "rain": (r"\brain\b", ("rain",), ("rain falling", "a rainstorm")),
    "thunder": (r"thunder", ("thunder",), ("thunder rumbling", "a storm with thunder")),
    "wind": (r"\bwind\b(?! mill)|demonwind|painwind", ("wind",), ("wind blowing", "a gusty wind")),
    "fire": (r"^(world )?fire\b(?! station)|firesoft|crackl", ("fire",), ("a fire crackling", "flames burning")),
    "birds": (r"bird|gull|chirp|rooster", ("birdsong",), ("birds singing", "a bird chirping")),
    "animal": (r"\bdog\b|wolf|\bcows?\b|\bmoo\b|sheep|frog|\bbats\b|bird|gull|rooster|growl", ("birdsong",),
               ("an animal", "animal noises")),
    "scream": (r"scream|\bpain\b|\bdie\b|death|gasp|moan|grunt|drown", (), ("a person in pain", "someone screaming")),
    "bell": (r"\bbells?\b|chime", ("bell",), ("a bell ringing", "a ringing bell tone")),
    "siren": (r"siren", ("siren",), ("a siren wailing", "an emergency vehicle siren")),
    "user interface": (r"\bbeep|\bmenu\b|assets (select|hover)|chatmessage|butn|\bclick|feedback hit", ("ui_beeps",),
                       ("a user interface click", "a menu beep")),
    "door": (r"\bdoors?\b|window (open|close)|knock", ("door_knock",), ("a door opening", "knocking on a door")),
    "crowd": (r"crowd|croud|cheer", (), ("a cheering crowd", "many people cheering")),
    "machine": (r"machine|factory|\bdrone\b|\bpump\b|\bmill\b|industry|substation|\bhum\b|power (coal|solar|line)",
                ("hum",), ("machinery humming", "an industrial machine")),
    "sci-fi": (r"teleport|telein|teleout|portal|laser|plasma|beamup|electro|quaddamage|\bbfg\b|shield",
               (), ("a sci-fi laser", "a futuristic energy sound")),
    "whoosh": (None, ("whoosh",), ("a swoosh", "something swishing past")),
    "drums": (None, ("drums",), ("a drum beat", "percussion")),
    "noise": (None, ("noise_bed",), ("static noise", "a hiss")),
}
MIN_RELEVANT = 3
KTUBERLING_SAMPLE = 300
SYNTH_PER_GENERATOR = 20
SYNTH_SECONDS = 4.0


def classes_of(caption: str, kind: str) -> set[str]:
    found = {name for name, (pattern, _, _) in CLASSES.items() if pattern and re.search(pattern, caption)}
    if kind == "speech":
        found.add("speech")
    if kind == "music":
        found.add("music")
    return found


def corpus_clips(corpus: str, rng: np.random.Generator):
    """(label, samples, classes) of the held-out corpus clips and the embedder's left-out packages."""
    from soundtok_cli.train.embed_data import HELDOUT_PACKAGES, package, read_clips

    chosen = []
    heldout = read_clips(corpus, "heldout")
    ktuberling = [c for c in heldout if package(c.source) == "ktuberling-data"]
    keep = set(rng.choice(len(ktuberling), size=min(KTUBERLING_SAMPLE, len(ktuberling)), replace=False))
    chosen += [("heldout", c) for c in heldout if package(c.source) != "ktuberling-data"]
    chosen += [("heldout", c) for i, c in enumerate(ktuberling) if i in keep]
    chosen += [("train", c) for c in read_clips(corpus, "train") if package(c.source) in HELDOUT_PACKAGES]
    shards: dict[str, np.ndarray] = {}
    for split, clip in chosen:
        key = os.path.join(corpus, split, clip.shard)
        if key not in shards:
            shards[key] = np.load(key, mmap_mode="r")
        samples = np.asarray(shards[key][clip.offset : clip.offset + clip.length], np.float32) / 32768
        yield package(clip.source), samples, classes_of(clip.caption, clip.kind)


# The procedural generators the benchmark draws from: those of embedder v1's first measurement,
# fixed so figures compare across versions. Generators added since (explosion, water, machinery,
# scifi, crowd) train the embedder but are left out here, so their classes are measured on real
# recordings only: a procedural class is in-domain (same generator, other seed) and would flatter it.
BENCH_GENERATORS = ("rain", "wind", "thunder", "surf", "fire", "birdsong", "engine", "footsteps", "door_knock",
                    "bell", "siren", "hum", "ui_beeps", "whoosh", "plucked_string", "drums", "noise_bed",
                    "fm_tone", "chord")


def synth_clips():
    from soundtok_cli.data import synth
    from soundtok_cli.train.embed_data import BENCH_SYNTH_SEED

    rng = np.random.default_rng(BENCH_SYNTH_SEED)
    for name in BENCH_GENERATORS:
        make = synth.GENERATORS[name]
        labels = {c for c, (_, generators, _) in CLASSES.items() if name in generators}
        for _ in range(SYNTH_PER_GENERATOR):
            yield f"synth:{name}", make(rng, 48000, SYNTH_SECONDS)[0].astype(np.float32), labels


def random_hit(n: int, relevant: int, k: int) -> float:
    """Chance that a random ranking of n clips puts one of `relevant` among the first k."""
    return 1.0 - math.comb(n - relevant, k) / math.comb(n, k) if n - relevant >= k else 1.0


def average_precision(order: np.ndarray, relevant: np.ndarray) -> float:
    hits = relevant[order]
    ranks = np.flatnonzero(hits) + 1
    return float(np.mean(np.arange(1, len(ranks) + 1) / ranks)) if len(ranks) else 0.0


def clip_scores(queries: np.ndarray, embedded, ranking: str) -> np.ndarray:
    """(Q, clips) scores: "file" as `soundtok search` ranks files (`index.ranking.file_score`:
    the best window and the unit mean of the windows, equally); "segment" by the best window
    alone; "item" by the embedder's item vector (the duration-weighted mean of the windows)."""
    if ranking == "item":
        return queries @ embedded.items["embedding"].T
    segments = embedded.arrays["embeddings"]
    starts = embedded.items["start"]
    best = np.maximum.reduceat(queries @ segments.T, starts, axis=1)
    if ranking == "segment":
        return best
    from soundtok_cli.index.ranking import file_score, whole_file_vector

    ends = np.append(starts[1:], len(segments))
    whole = np.stack([whole_file_vector(segments[a:b]) for a, b in zip(starts, ends)])
    return file_score(best, queries @ whole.T)


def evaluate(embedded, labels: list[set[str]], queries: dict[str, list[tuple[str, str]]], ranking: str,
             prototypes=None):
    """Per query: Hit@1, Hit@10, AP. With `prototypes` (embed/prototypes.py) each query vector is
    pulled as `soundtok search` pulls it; without, it is the words' own vector (--as-typed)."""
    from soundtok_cli.embed.text import TextTower

    tower = TextTower.load()
    rows = []
    for cls, asked in queries.items():
        relevant = np.array([cls in lab for lab in labels])
        vectors = tower.encode([text for text, _ in asked])
        if prototypes is not None:
            vectors = np.stack([prototypes.pull(v)[0] for v in vectors])
        scores = clip_scores(vectors, embedded, ranking)
        for (text, kind), score in zip(asked, scores):
            order = np.argsort(-score, kind="stable")
            rows.append({
                "class": cls, "query": text, "kind": kind, "relevant": int(relevant.sum()),
                "hit1": float(relevant[order[0]]), "hit10": float(relevant[order[:10]].any()),
                "ap": average_precision(order, relevant),
                "random_hit1": relevant.mean(), "random_hit10": random_hit(len(labels), int(relevant.sum()), 10),
                "random_ap": relevant.mean(),
            })
    return rows


def summarise(rows, kind):
    chosen = [r for r in rows if r["kind"] == kind]
    keys = ("hit1", "hit10", "ap", "random_hit1", "random_hit10", "random_ap")
    return {"queries": len(chosen), **{k: float(np.mean([r[k] for r in chosen])) for k in keys}}


def encode_clips(codec, corpus: str):
    rng = np.random.default_rng(0)
    sources, labels, codes, durations = [], [], [], []
    for source, samples, classes in [*corpus_clips(corpus, rng), *synth_clips()]:
        encoder = codec.encoder(48000, 8)
        codes.append(np.concatenate([encoder.push(samples), encoder.finish()]))
        sources.append(source)
        labels.append(classes)
        durations.append(len(samples) / 48000)
    return sources, labels, codes, durations


def save_tokens(path, sources, labels, codes, durations) -> None:
    tmp = path + ".tmp.npz"
    np.savez(tmp, sources=np.array(sources), labels=np.array(["|".join(sorted(lab)) for lab in labels]),
             codes=np.concatenate(codes), lengths=np.array([len(c) for c in codes]), durations=np.array(durations))
    os.replace(tmp, path)


def load_tokens(path):
    with np.load(path) as f:
        bounds = np.concatenate([[0], np.cumsum(f["lengths"])])
        codes = [f["codes"][a:b] for a, b in zip(bounds[:-1], bounds[1:])]
        labels = [set(filter(None, str(lab).split("|"))) for lab in f["labels"]]
        return [str(s) for s in f["sources"]], labels, codes, [float(d) for d in f["durations"]]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default="corpus")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default="bench/results/retrieval.json")
    parser.add_argument("--tokens-cache", help="npz file keeping the encoded clips between runs "
                        "(re-scoring new embedder weights then skips the encoding)")
    args = parser.parse_args(argv)

    import torch

    from bench.results import write_json
    from soundtok_cli.io.store import Batch
    from soundtok_cli.models.registry import load_codec, load_embedder

    torch.set_num_threads(args.threads)
    codec, embedder = load_codec(device="cpu"), load_embedder(device="cpu")
    started = time.time()
    if args.tokens_cache and os.path.exists(args.tokens_cache):
        sources, labels, codes, durations = load_tokens(args.tokens_cache)
    else:
        sources, labels, codes, durations = encode_clips(codec, args.corpus)
        if args.tokens_cache:
            save_tokens(args.tokens_cache, sources, labels, codes, durations)
    encode_s = time.time() - started
    batch = Batch.tokens(codec.describe(8), "bench", source=sources, channel=[0] * len(sources),
                         sample_rate=[48000] * len(sources), duration=durations,
                         content_hash=[str(i) for i in range(len(sources))], codes=codes)
    started = time.time()
    embedded = embedder.embed_batch(batch, 2.0, 1.0)
    embed_s = time.time() - started

    queries = {}
    for cls, (_, _, paraphrases) in CLASSES.items():
        if sum(cls in lab for lab in labels) >= MIN_RELEVANT:
            queries[cls] = [(cls, "class word")] + [(p, "paraphrase") for p in paraphrases]
    from soundtok_cli.embed.prototypes import for_embedder

    prototypes = for_embedder(embedded.attrs["embedder"])
    rows = evaluate(embedded, labels, queries, "file", prototypes)
    typed_rows = evaluate(embedded, labels, queries, "file")
    segment_rows = evaluate(embedded, labels, queries, "segment", prototypes)
    item_rows = evaluate(embedded, labels, queries, "item", prototypes)
    audio_s = float(sum(durations))
    result = {
        "clips": len(sources), "audio_seconds": audio_s, "classes": len(queries),
        "clips_with_a_class": int(sum(bool(lab) for lab in labels)),
        "by_source": {s: sources.count(s) for s in sorted(set(s.split(":")[0] for s in sources))},
        "ranking": "as soundtok search ranks files: half the best segment, half the whole clip",
        "queries_pulled": prototypes is not None,
        "class_words": summarise(rows, "class word"), "paraphrases": summarise(rows, "paraphrase"),
        "as_typed": {"class_words": summarise(typed_rows, "class word"),
                     "paraphrases": summarise(typed_rows, "paraphrase")},
        "best_segment_only": {"class_words": summarise(segment_rows, "class word"),
                              "paraphrases": summarise(segment_rows, "paraphrase")},
        "item_vectors": {"class_words": summarise(item_rows, "class word"),
                         "paraphrases": summarise(item_rows, "paraphrase")},
        "embed_seconds": embed_s, "embed_x_realtime": audio_s / embed_s, "encode_seconds": encode_s,
        "threads": args.threads, "embedder": embedded.attrs["embedder"]["weights_sha256"][:12],
        "queries": rows,
    }
    print(f"{len(sources)} clips ({audio_s / 60:.1f} min), {len(queries)} classes; "
          f"{result['clips_with_a_class']} clips in a class")
    print(f"{'queries':<12} {'n':>3} {'Hit@1':>7} {'Hit@10':>7} {'mAP':>7}   random: {'Hit@1':>6} {'Hit@10':>7} {'mAP':>6}")
    item, segment, typed = result["item_vectors"], result["best_segment_only"], result["as_typed"]
    for kind, s in (("class words", result["class_words"]), ("paraphrases", result["paraphrases"]),
                    ("  as typed", typed["class_words"]), ("  as typed", typed["paraphrases"]),
                    ("  best seg.", segment["class_words"]), ("  best seg.", segment["paraphrases"]),
                    ("  by item", item["class_words"]), ("  by item", item["paraphrases"])):
        print(f"{kind:<12} {s['queries']:>3} {s['hit1']:>7.3f} {s['hit10']:>7.3f} {s['ap']:>7.3f}   "
              f"        {s['random_hit1']:>6.3f} {s['random_hit10']:>7.3f} {s['random_ap']:>6.3f}")
    print("\nper class (class word): relevant clips, Hit@10, AP")
    for r in rows:
        if r["kind"] == "class word":
            print(f"  {r['class']:<15} {r['relevant']:>4} {r['hit10']:>4.0f} {r['ap']:>6.3f}")
    print(f"\nembed: {audio_s:.0f} s of audio in {embed_s:.2f} s = {audio_s / embed_s:.0f}x real time "
          f"({args.threads} threads)")
    write_json(args.json, result)
    print(f"wrote {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
