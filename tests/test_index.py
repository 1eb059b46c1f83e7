"""The index library: build, --append, --prune, per-file and per-segment search, recall of the
approximate index, atomic publishing, concurrent writers, and refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from soundtok_cli.errors import InputError, UsageError
from soundtok_cli.index import ann, layout
from soundtok_cli.index.lock import WriterLock
from soundtok_cli.index.search import EmptyIndexError, IndexReader
from soundtok_cli.index.update import IndexWriter, index_source
from soundtok_cli.io.stream import read_batches

from embed_factories import (DIM, clustered_unit_vectors, embedder_attrs, files_batch, random_files,
                             save_store)

ENV = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE", PYTHONUNBUFFERED="1")
TESTS = os.path.dirname(os.path.abspath(__file__))


def build(index, *stores, append=False, prune=False, **options):
    with IndexWriter(str(index), append=append, prune=prune, device="cpu", **options) as writer:
        for store in stores:
            writer.add_store(read_batches(str(store), expect_kind="embeddings"), str(store))
        return writer.commit()


def search(index, vector, k=10, per_file=True):
    reader = IndexReader(str(index))
    try:
        return reader.search(vector, k, per_file=per_file)
    finally:
        reader.close()


def unit(v):
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v)


def spike(i, dim=DIM):
    """A unit vector along axis i."""
    v = np.zeros(dim, np.float32)
    v[i] = 1
    return v


def near(i, n, seed, spread=0.05):
    """n unit vectors close to axis i."""
    rng = np.random.default_rng(seed)
    return np.stack([unit(spike(i) + spread * rng.standard_normal(DIM)) for _ in range(n)])


# --------------------------------------------------------------------------------------------
# Build and search


def test_build_and_search_per_file_and_per_segment(tmp_path):
    files = [
        {"source": "/lib/a.wav", "vectors": near(0, 5, 1)},
        {"source": "/lib/b.wav", "vectors": np.concatenate([near(1, 3, 2), near(0, 1, 3, spread=0.2)])},
        {"source": "/lib/c.wav", "vectors": near(2, 4, 4)},
        {"source": "/lib/c.wav", "channel": 1, "vectors": near(0, 2, 5, spread=0.3)},
    ]
    store = save_store(tmp_path / "s.zarr.zip", files_batch(files))
    report = build(tmp_path / "idx", store)
    assert (report.added, report.sources, report.items, report.segments) == (3, 3, 4, 15)
    assert report.index["type"] == "exact"

    hits = search(tmp_path / "idx", spike(0), k=3)
    assert [h.source for h in hits] == ["/lib/a.wav", "/lib/b.wav", "/lib/c.wav"]
    assert hits[0].score > hits[1].score > hits[2].score
    assert hits[2].channel == 1  # c.wav's best moment for axis 0 is on its second channel
    assert hits[1].start == 3.0 and hits[1].end == 5.0  # b.wav's fourth segment

    segments = search(tmp_path / "idx", spike(0), k=5, per_file=False)
    assert [h.source for h in segments] == ["/lib/a.wav"] * 5
    assert sorted(h.start for h in segments) == [0.0, 1.0, 2.0, 3.0, 4.0]
    scores = [h.score for h in segments]
    assert scores == sorted(scores, reverse=True)
    # scores are exact inner products with the stored (float16) vectors
    assert abs(segments[0].score - float(near(0, 5, 1).max(axis=0) @ spike(0))) < 1e-2


def test_files_rank_by_their_best_moment_and_by_the_whole_file(tmp_path):
    """A file that is the sound throughout outranks one where a single window happens to match
    a little better; each hit still points at the file's best moment, scored as ranked."""
    mostly_else = np.concatenate([near(0, 1, 1, spread=0.01), near(1, 9, 2, spread=0.01)])
    throughout = np.stack([unit(spike(0) + 0.75 * spike(2) + 0.01 * np.random.default_rng(s).standard_normal(DIM))
                           for s in range(10)])
    files = [{"source": "/lib/mostly-else.wav", "vectors": mostly_else},
             {"source": "/lib/throughout.wav", "vectors": throughout}]
    build(tmp_path / "idx", save_store(tmp_path / "s.zarr.zip", files_batch(files)))
    segments = search(tmp_path / "idx", spike(0), k=1, per_file=False)
    assert segments[0].source == "/lib/mostly-else.wav"     # the single best window is there
    hits = search(tmp_path / "idx", spike(0), k=2)
    assert [h.source for h in hits] == ["/lib/throughout.wav", "/lib/mostly-else.wav"]
    assert hits[1].start == 0.0 and hits[1].end == 2.0      # mostly-else's one matching window
    whole = unit(mostly_else.mean(axis=0)) @ spike(0)
    assert hits[1].score == pytest.approx(0.5 * segments[0].score + 0.5 * whole, abs=2e-3)


def test_per_file_search_looks_past_files_with_many_segments(tmp_path):
    """One long file holds all the best segments; per-file search still finds k distinct files."""
    files = [{"source": "/lib/long.wav", "vectors": near(0, 300, 1, spread=0.01)}]
    files += [{"source": f"/lib/other{i}.wav", "vectors": near(0, 2, 10 + i, spread=0.5)} for i in range(5)]
    build(tmp_path / "idx", save_store(tmp_path / "s.zarr.zip", files_batch(files)))
    hits = search(tmp_path / "idx", spike(0), k=4)
    assert hits[0].source == "/lib/long.wav"
    assert len({h.source for h in hits}) == 4
    assert len(search(tmp_path / "idx", spike(0), k=50)) == 6  # fewer files than k: all of them


def test_relative_sources_are_stored_absolute_urls_and_stdin_as_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    files = [{"source": "sounds/x.wav", "vectors": near(0, 1, 1)},
             {"source": "s3://bucket/y.wav", "vectors": near(1, 1, 2)},
             {"source": "-", "vectors": near(2, 1, 3)}]
    build(tmp_path / "idx", save_store(tmp_path / "s.zarr.zip", files_batch(files)))
    sources = {search(tmp_path / "idx", spike(i), k=1)[0].source for i in range(3)}
    assert sources == {str(tmp_path / "sounds" / "x.wav"), "s3://bucket/y.wav", "-"}
    assert index_source("../a.wav", "/x/y") == "/x/a.wav"


# --------------------------------------------------------------------------------------------
# Append, replace, prune


def test_append_adds_replaces_and_keeps(tmp_path):
    first = save_store(tmp_path / "1.zarr.zip", files_batch(
        [{"source": "/l/a.wav", "vectors": near(0, 2, 1)}, {"source": "/l/b.wav", "vectors": near(1, 2, 2)}]))
    build(tmp_path / "idx", first)
    generation = layout.read_current(str(tmp_path / "idx")).generation

    again = build(tmp_path / "idx", first, append=True)
    assert (again.added, again.replaced, again.unchanged, again.changed) == (0, 0, 2, False)
    assert layout.read_current(str(tmp_path / "idx")).generation == generation  # nothing rewritten

    second = save_store(tmp_path / "2.zarr.zip", files_batch([
        {"source": "/l/b.wav", "vectors": near(3, 3, 3), "content_hash": "b-edited"},  # changed
        {"source": "/l/a.wav", "vectors": near(0, 2, 1)},  # unchanged
        {"source": "/l/c.wav", "vectors": near(2, 1, 4)},  # new
    ]))
    report = build(tmp_path / "idx", second, append=True)
    assert (report.added, report.replaced, report.unchanged) == (1, 1, 1)
    assert (report.sources, report.segments) == (3, 2 + 3 + 1)
    assert search(tmp_path / "idx", spike(3), k=1)[0].source == "/l/b.wav"
    # b.wav's old vectors are gone: its best match for axis 1 is now weak
    assert search(tmp_path / "idx", spike(1), k=1, per_file=False)[0].score < 0.5
    assert search(tmp_path / "idx", spike(0), k=1)[0].source == "/l/a.wav"


def test_without_append_the_index_holds_exactly_what_was_given(tmp_path):
    build(tmp_path / "idx", save_store(tmp_path / "1.zarr.zip", files_batch(
        [{"source": "/l/a.wav", "vectors": near(0, 2, 1)}, {"source": "/l/b.wav", "vectors": near(1, 2, 2)}])))
    report = build(tmp_path / "idx", save_store(tmp_path / "2.zarr.zip", files_batch(
        [{"source": "/l/c.wav", "vectors": near(2, 2, 3)}])))
    assert (report.added, report.removed, report.sources) == (1, 2, 1)
    assert {h.source for h in search(tmp_path / "idx", spike(0), k=10)} == {"/l/c.wav"}


def test_prune_drops_missing_local_files_only(tmp_path):
    present, gone = tmp_path / "present.wav", tmp_path / "gone.wav"
    present.write_bytes(b"x")
    gone.write_bytes(b"x")
    store = save_store(tmp_path / "s.zarr.zip", files_batch([
        {"source": str(present), "vectors": near(0, 2, 1)},
        {"source": str(gone), "vectors": near(1, 2, 2)},
        {"source": str(gone), "channel": 1, "vectors": near(1, 2, 3)},
        {"source": "https://example.org/remote.wav", "vectors": near(2, 2, 4)},
    ]))
    build(tmp_path / "idx", store)
    gone.unlink()
    report = build(tmp_path / "idx", prune=True)  # alone: no input
    assert (report.pruned, report.sources, report.items) == (1, 2, 2)
    assert {h.source for h in search(tmp_path / "idx", spike(1), k=10)} == {
        str(present), "https://example.org/remote.wav"}
    assert build(tmp_path / "idx", prune=True).changed is False


def test_prune_of_a_missing_index_is_refused(tmp_path):
    with pytest.raises(InputError, match="no index here"):
        build(tmp_path / "nothing", prune=True)
    assert not (tmp_path / "nothing" / "CURRENT").exists()


def test_an_index_that_becomes_empty_says_so(tmp_path):
    ghost = tmp_path / "ghost.wav"
    ghost.write_bytes(b"x")
    build(tmp_path / "idx", save_store(tmp_path / "s.zarr.zip",
                                       files_batch([{"source": str(ghost), "vectors": near(0, 2, 1)}])))
    ghost.unlink()
    assert build(tmp_path / "idx", prune=True).segments == 0
    reader = IndexReader(str(tmp_path / "idx"))
    with pytest.raises(EmptyIndexError, match="empty"):
        reader.check_not_empty()


# --------------------------------------------------------------------------------------------
# Embedders


def test_mixing_embedders_is_refused_naming_both(tmp_path):
    one = save_store(tmp_path / "1.zarr.zip", files_batch([{"source": "/a.wav", "vectors": near(0, 1, 1)}]))
    other = embedder_attrs(version="2", weights_sha256="12" * 32)
    two = save_store(tmp_path / "2.zarr.zip", files_batch([{"source": "/b.wav", "vectors": near(1, 1, 2)}], other))
    with pytest.raises(InputError) as error:
        build(tmp_path / "idx", one, two)
    message = str(error.value)
    assert "test-embedder 2 (weights 121212121212" in message and "test-embedder 1 (weights efefefefefef" in message
    build(tmp_path / "idx", one)
    with pytest.raises(InputError, match="the index holds embedder test-embedder 1"):
        build(tmp_path / "idx", two, append=True)
    # without --append the index may change embedder
    assert build(tmp_path / "idx", two).sources == 1
    assert IndexReader(str(tmp_path / "idx")).embedder["version"] == "2"


def test_a_failed_store_leaves_nothing_staged(tmp_path):
    good = save_store(tmp_path / "g.zarr.zip", files_batch([{"source": "/g.wav", "vectors": near(0, 1, 1)}]))
    bad = files_batch([{"source": "/bad.wav", "vectors": near(1, 1, 2)}])
    bad.arrays["embeddings"][0, 0] = np.nan
    with IndexWriter(str(tmp_path / "idx"), device="cpu") as writer:
        writer.add_store(read_batches(good, expect_kind="embeddings"), good)
        with pytest.raises(InputError, match="NaN"):
            writer.add_store([bad], "bad")
        report = writer.commit()
    assert report.sources == 1


# --------------------------------------------------------------------------------------------
# The approximate index


def test_approximate_index_recall_against_exact(tmp_path):
    n = 12_000
    vectors = clustered_unit_vectors(n, DIM, clusters=300, seed=7)
    files = [{"source": f"/lib/{i:04d}.wav", "vectors": vectors[i * 20 : (i + 1) * 20]} for i in range(n // 20)]
    report = build(tmp_path / "idx", save_store(tmp_path / "s.zarr.zip", files_batch(files)), exact_max=1000)
    params = report.index
    assert params["type"] == "ivf" and params["recall_at_10"] >= 0.95
    assert 1 <= params["nprobe"] <= params["nlist"]
    current = layout.read_current(str(tmp_path / "idx"))
    assert current.index["nprobe"] == params["nprobe"]

    # fresh queries, not the tuning sample: perturbed data points and points between two
    rng = np.random.default_rng(99)
    a = vectors[rng.integers(0, n, 60)]
    b = vectors[rng.integers(0, n, 60)]
    queries = np.concatenate([a + 0.3 * rng.standard_normal(a.shape) / np.sqrt(DIM), a + b])
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    exact = vectors.astype(np.float16).astype(np.float32) @ queries.T
    reader = IndexReader(str(tmp_path / "idx"))
    found = 0
    for q in range(len(queries)):
        bar = np.sort(exact[:, q])[-10]
        hits = reader.search(queries[q], 10, per_file=False)
        found += sum(1 for h in hits if exact[h.id, q] >= bar - 1e-4)
    reader.close()
    assert found / (10 * len(queries)) >= 0.95


def test_recall_measure_counts_ties_fairly():
    vectors = np.tile(unit(np.arange(1, DIM + 1)), (30, 1)).astype(np.float16)  # 30 equal vectors
    faiss = ann.load_faiss(1)
    index = ann.build(vectors, exact_max=100).index
    queries = ann._recall_queries(vectors, np.random.default_rng(0))
    bars = ann._exact_truth(vectors, queries)
    assert ann.recall_at_k(faiss, index, vectors, queries, bars) == 1.0


# --------------------------------------------------------------------------------------------
# Atomic publishing, readers racing writers, concurrent writers


def _searchable(index) -> set[str]:
    return {h.source for h in search(index, spike(0), k=100)}


class Crash(Exception):
    pass


def test_a_crash_before_publishing_leaves_the_old_index(tmp_path):
    old = save_store(tmp_path / "old.zarr.zip", files_batch([{"source": "/old.wav", "vectors": near(0, 2, 1)}]))
    new = save_store(tmp_path / "new.zarr.zip", files_batch([{"source": "/new.wav", "vectors": near(0, 2, 2)}]))
    build(tmp_path / "idx", old)

    def crash():
        raise Crash()

    with pytest.raises(Crash):
        build(tmp_path / "idx", new, append=True, before_publish=crash)
    assert _searchable(tmp_path / "idx") == {"/old.wav"}
    assert layout.read_current(str(tmp_path / "idx")).generation == 1
    assert "gen-000002" in os.listdir(tmp_path / "idx")  # written in full, never made current

    build(tmp_path / "idx", new, append=True)  # the next writer cleans up and goes on
    assert _searchable(tmp_path / "idx") == {"/old.wav", "/new.wav"}
    assert sorted(n for n in os.listdir(tmp_path / "idx") if not n.startswith(".")) == [
        "CURRENT", "LOCK", "gen-000002"]
    assert not [n for n in os.listdir(tmp_path / "idx") if n.startswith(".")]


def test_a_killed_writer_leaves_the_old_index(tmp_path):
    """SIGKILL mid-build (inside the lock, after the FAISS index was written): no cleanup runs."""
    old = save_store(tmp_path / "old.zarr.zip", files_batch([{"source": "/old.wav", "vectors": near(0, 2, 1)}]))
    new = save_store(tmp_path / "new.zarr.zip", files_batch([{"source": "/new.wav", "vectors": near(0, 2, 2)}]))
    build(tmp_path / "idx", old)
    code = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {TESTS!r})
        from soundtok_cli.index import ann
        from soundtok_cli.index.update import IndexWriter
        from soundtok_cli.io.stream import read_batches
        real_write = ann.write
        def write_then_die(*args):
            real_write(*args)
            os.kill(os.getpid(), signal.SIGKILL)
        ann.write = write_then_die
        with IndexWriter({str(tmp_path / "idx")!r}, append=True, device="cpu") as writer:
            writer.add_store(read_batches({new!r}, expect_kind="embeddings"), "new")
            writer.commit()
    """)
    result = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, timeout=120)
    assert result.returncode == -9, result.stderr
    leftovers = [n for n in os.listdir(tmp_path / "idx") if n.startswith(".tmp-")]
    assert leftovers  # the half-built generation is still there, under a temporary name
    assert _searchable(tmp_path / "idx") == {"/old.wav"}
    # a later writer removes the dead writer's directory (once it is older than the grace period)
    for name in leftovers:
        os.utime(tmp_path / "idx" / name, (0, 0))
    build(tmp_path / "idx", new, append=True)
    assert _searchable(tmp_path / "idx") == {"/old.wav", "/new.wav"}
    assert not [n for n in os.listdir(tmp_path / "idx") if n.startswith(".tmp-")]


def test_a_reader_that_raced_a_writer_reads_the_new_generation(tmp_path, monkeypatch):
    """CURRENT read, then a writer publishes and deletes that generation before the reader opens
    its files: the reader re-reads CURRENT once and opens the new one."""
    from soundtok_cli.index import search as search_module

    old = save_store(tmp_path / "old.zarr.zip", files_batch([{"source": "/old.wav", "vectors": near(0, 2, 1)}]))
    new = save_store(tmp_path / "new.zarr.zip", files_batch([{"source": "/new.wav", "vectors": near(0, 2, 2)}]))
    build(tmp_path / "idx", old)
    real_open, opened = search_module._open, []

    def open_after_a_writer(current, device):
        if not opened:
            build(tmp_path / "idx", new, append=True)  # publishes 2, deletes 1
            assert not os.path.exists(current.directory)
        opened.append(current.generation)
        return real_open(current, device)

    monkeypatch.setattr(search_module, "_open", open_after_a_writer)
    reader = IndexReader(str(tmp_path / "idx"))
    assert {h.source for h in reader.search(spike(0), 10)} == {"/old.wav", "/new.wav"}
    assert opened == [1, 2]
    reader.close()


def test_a_reader_keeps_using_a_generation_deleted_under_it(tmp_path):
    old = save_store(tmp_path / "old.zarr.zip", files_batch([{"source": "/old.wav", "vectors": near(0, 2, 1)}]))
    new = save_store(tmp_path / "new.zarr.zip", files_batch([{"source": "/new.wav", "vectors": near(0, 2, 2)}]))
    build(tmp_path / "idx", old)
    reader = IndexReader(str(tmp_path / "idx"))
    reader.load()
    build(tmp_path / "idx", new)  # replaces the content, deletes generation 1
    assert {h.source for h in reader.search(spike(0), 10)} == {"/old.wav"}  # its snapshot
    reader.close()


_WRITER = textwrap.dedent("""
    import sys
    from soundtok_cli.index.update import IndexWriter
    from soundtok_cli.io.stream import read_batches
    index, store, hold = sys.argv[1:4]
    def hold_lock():  # inside the lock, just before CURRENT is replaced
        print("holding the lock", flush=True)
        sys.stdin.readline()
    with IndexWriter(index, append=True, device="cpu", wait=120,
                     note=lambda message: print(message, flush=True),
                     before_publish=hold_lock if hold == "hold" else None) as writer:
        writer.add_store(read_batches(store, expect_kind="embeddings"), store)
        report = writer.commit()
    print("done", report.added, flush=True)
""")


def test_two_writers_take_turns_and_both_sets_land(tmp_path):
    index = str(tmp_path / "idx")
    a = save_store(tmp_path / "a.zarr.zip", files_batch(random_files(30, 3, 1, prefix="/a/")))
    b = save_store(tmp_path / "b.zarr.zip", files_batch(random_files(40, 3, 2, prefix="/b/")))
    first = subprocess.Popen([sys.executable, "-c", _WRITER, index, a, "hold"], env=ENV, text=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    second = None
    try:
        assert first.stdout.readline().strip() == "holding the lock"
        second = subprocess.Popen([sys.executable, "-c", _WRITER, index, b, "no"], env=ENV, text=True,
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert second.stdout.readline().startswith("waiting for another soundtok index (pid ")
        first.stdin.write("go\n")
        first.stdin.flush()
        out_first, err_first = first.communicate(timeout=120)
        out_second, err_second = second.communicate(timeout=120)
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
    assert first.returncode == 0 and second.returncode == 0, err_first + err_second
    assert out_first.split()[-2:] == ["done", "30"] and out_second.split()[-2:] == ["done", "40"]
    current = layout.read_current(index)
    assert current.counts == {"sources": 70, "items": 70, "segments": 210}
    reader = IndexReader(index)
    sources = {h.source for h in reader.search(spike(0), 100)}
    assert len(sources) == 70 and {s[:3] for s in sources} == {"/a/", "/b/"}
    assert reader.load().index.ntotal == 210
    reader.close()


def test_a_writer_gives_up_after_wait(tmp_path):
    store = save_store(tmp_path / "s.zarr.zip", files_batch([{"source": "/a.wav", "vectors": near(0, 1, 1)}]))
    os.makedirs(tmp_path / "idx")
    with WriterLock(str(tmp_path / "idx"), 0):
        with pytest.raises(UsageError, match=r"another soundtok index \(pid \d+\) is still writing"):
            build(tmp_path / "idx", store, wait=0.1)
    assert layout.read_current(str(tmp_path / "idx")) is None
    assert not [n for n in os.listdir(tmp_path / "idx") if n.startswith(".tmp-")]


# --------------------------------------------------------------------------------------------
# What is not an index


def test_corrupt_and_foreign_indexes(tmp_path):
    store = save_store(tmp_path / "s.zarr.zip", files_batch([{"source": "/a.wav", "vectors": near(0, 3, 1)}]))
    build(tmp_path / "idx", store)
    current = layout.read_current(str(tmp_path / "idx"))
    faiss_file = current.file(layout.INDEX_FILE)
    with open(faiss_file, "r+b") as f:
        f.write(b"garbage!" * 4)
    with pytest.raises(InputError, match=r"corrupt index \(gen-000001/index.faiss is unreadable\)"):
        IndexReader(str(tmp_path / "idx")).load()

    (tmp_path / "idx" / "CURRENT").write_text("{not json")
    with pytest.raises(InputError, match=r"corrupt index \(CURRENT is not valid JSON\)"):
        IndexReader(str(tmp_path / "idx"))
    with pytest.raises(UsageError, match="cannot update this index"):
        build(tmp_path / "idx", store, append=True)
    assert build(tmp_path / "idx", store).sources == 1  # a full rebuild replaces it

    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"x")
    with pytest.raises(UsageError, match="exists and is not a soundtok index"):
        build(tmp_path / "photos", store)
    with pytest.raises(InputError, match="not a soundtok index"):
        IndexReader(str(tmp_path / "photos"))
    with pytest.raises(InputError, match="no index here"):
        IndexReader(str(tmp_path / "nowhere"))


def test_current_is_small_json_with_the_index_description(tmp_path):
    build(tmp_path / "idx", save_store(tmp_path / "s.zarr.zip", files_batch([{"source": "/a.wav", "vectors": near(0, 3, 1)}])))
    data = json.loads((tmp_path / "idx" / "CURRENT").read_text())
    assert data["format"] == "soundtok-index" and data["format_version"] == 1
    assert data["directory"] == "gen-000001" and data["generation"] == 1
    assert data["embedder"]["name"] == "test-embedder"
    assert data["index"]["type"] == "exact" and data["counts"]["segments"] == 3


def test_default_location(monkeypatch, tmp_path):
    from soundtok_cli.index.location import default_index_path

    monkeypatch.setenv("SOUNDTOK_INDEX", str(tmp_path / "x"))
    assert default_index_path() == str(tmp_path / "x")
    monkeypatch.delenv("SOUNDTOK_INDEX")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_index_path() == str(tmp_path / "data" / "soundtok" / "index")
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_index_path() == str(tmp_path / "home" / ".local" / "share" / "soundtok" / "index")


def test_gpu_path_uses_the_gpu_cloner_when_faiss_sees_a_gpu(monkeypatch):
    """No GPU here: a stand-in for faiss's GPU functions checks that the build goes through them."""
    faiss = ann.load_faiss(1)
    calls = []

    class Options:
        useFloat16 = False

    def to_all_gpus(index, options=None):
        calls.append(("to_gpu", type(index).__name__, options.useFloat16))
        return index

    def to_cpu(index):
        calls.append(("to_cpu",))
        return index

    monkeypatch.setattr(faiss, "get_num_gpus", lambda: 1)
    monkeypatch.setattr(faiss, "GpuMultipleClonerOptions", Options, raising=False)
    monkeypatch.setattr(faiss, "index_cpu_to_all_gpus", to_all_gpus)
    monkeypatch.setattr(faiss, "index_gpu_to_cpu", to_cpu, raising=False)
    assert ann.use_gpu(faiss, "auto") and ann.use_gpu(faiss, "cuda") and not ann.use_gpu(faiss, "cpu")
    vectors = clustered_unit_vectors(3000, DIM, clusters=50, seed=1)
    built = ann.build(vectors, gpu=True, exact_max=100)
    assert calls == [("to_gpu", "IndexIVFScalarQuantizer", True), ("to_cpu",)]
    assert built.params["built_on"] == "gpu" and built.index.ntotal == 3000
    flat = ann.build(vectors[:50]).index
    assert type(ann.to_gpu(faiss, flat)).__name__ == "IndexFlatIP"  # fp16 flat becomes IndexFlatIP


def test_cuda_without_a_gpu_is_a_clear_error():
    faiss = ann.load_faiss(1)
    if faiss.get_num_gpus():
        pytest.skip("a GPU is present")
    with pytest.raises(UsageError, match="FAISS sees no GPU"):
        ann.use_gpu(faiss, "cuda")
