"""`soundtok index` and `soundtok search` as a user runs them: subprocesses, pipes, a terminal,
the real text tower, output formats, exit codes and one-line errors for bad input.

The library store holds files whose segments lie near the text tower's vectors of a few phrases
("distant thunder" ...), so a text search has a known right answer."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys

import numpy as np
import pytest

from embed_factories import DIM, embedder_attrs, files_batch, save_store
from factories import codec_attrs, token_batch

CLI = [sys.executable, "-m", "soundtok_cli.app"]
TIMEOUT = 180
PHRASES = {
    "thunder.wav": "distant thunder",
    "rain.wav": "rain on a tin roof",
    "birds.wav": "birdsong at dawn",
    "door.wav": "a creaking wooden door",
}
JSON_KEYS = {"rank", "score", "path", "channel", "start", "end", "content_hash"}


class Result:
    def __init__(self, args, rc: int, stdout: str, stderr: str, terminal: bytes = b""):
        self.args, self.rc, self.stdout, self.stderr, self.terminal = args, rc, stdout, stderr, terminal

    def lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]

    def __repr__(self) -> str:
        return f"{self.args!r} exited {self.rc}; stdout:\n{self.stdout}\nstderr:\n{self.stderr}"


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    """A directory with the audio files' stand-ins, embeddings stores, and a built index."""
    from soundtok_cli.embed.text import describe_text_tower, encode_queries

    d = tmp_path_factory.mktemp("search")
    cache = d / "cache"
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE", SOUNDTOK_CACHE_DIR=str(cache),
               XDG_DATA_HOME=str(d / "xdg"), PYTHONUNBUFFERED="1")
    env.pop("SOUNDTOK_INDEX", None)
    text = {"name": "all-MiniLM-L6-v2", "dim": DIM, "weights_sha256": describe_text_tower()["weights_sha256"]}
    embedder = embedder_attrs(text=text)
    rng = np.random.default_rng(0)
    targets = encode_queries(list(PHRASES.values()))
    sounds = d / "sounds"
    sounds.mkdir()
    files = []
    for (name, _), target in zip(PHRASES.items(), targets):
        (sounds / name).write_bytes(b"RIFF")
        noisy = target + 0.04 * rng.standard_normal((8, DIM))
        files.append({"source": f"sounds/{name}", "vectors": noisy / np.linalg.norm(noisy, axis=1, keepdims=True)})
    # door.wav is stereo: its second channel is the creak
    files[3]["vectors"] = rng.standard_normal((8, DIM))
    files.append({"source": "sounds/door.wav", "channel": 1,
                  "vectors": targets[3] + 0.04 * rng.standard_normal((6, DIM))})
    for i in range(30):  # unrelated filler
        files.append({"source": f"sounds/other{i:02d}.wav", "vectors": rng.standard_normal((4, DIM))})
    for f in files:
        f["vectors"] = np.asarray(f["vectors"], np.float32)
        f["vectors"] /= np.linalg.norm(f["vectors"], axis=1, keepdims=True)
    cwd_before = os.getcwd()
    os.chdir(d)  # sources are relative, as `soundtok encode sounds/` writes them
    try:
        save_store(d / "lib.zarr.zip", files_batch(files, embedder))
        extra = [{"source": "sounds/wind.wav", "vectors": files[0]["vectors"][:2]}]
        save_store(d / "extra.zarr.zip", files_batch(extra, embedder))
        other_version = embedder_attrs(text=text, version="2", weights_sha256="12" * 32)
        save_store(d / "v2.zarr.zip", files_batch(extra, other_version))
        save_store(d / "othertext.zarr.zip", files_batch(files[:2], embedder_attrs()))
        save_store(d / "empty.zarr.zip", files_batch([], embedder))
        tokens = token_batch(2, 0, codec_attrs(), source=lambda i: f"t{i}.wav", channel=lambda i: 0,
                             sample_rate=lambda i: 48000, content_hash=lambda i: f"h{i}", max_len=20)
        save_store(d / "tokens.zarr.zip", tokens)
    finally:
        os.chdir(cwd_before)
    context = {"dir": d, "env": env, "sounds": sounds, "embedder": embedder}
    built = run(context, ["index", "lib.zarr.zip", "-o", "idx"])
    assert built.rc == 0, built
    context["built"] = built
    return context


def run(lib, args, stdin: bytes | None = None, env: dict | None = None) -> Result:
    p = subprocess.run(CLI + args, cwd=lib["dir"], env=env or lib["env"], capture_output=True,
                       input=stdin if stdin is not None else b"", timeout=TIMEOUT)
    return Result(args, p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace"))


def run_on_terminal(lib, args) -> Result:
    master, slave = pty.openpty()
    try:
        p = subprocess.run(CLI + args, cwd=lib["dir"], env=lib["env"], stdout=slave, stderr=subprocess.PIPE,
                           stdin=subprocess.DEVNULL, timeout=TIMEOUT)
    finally:
        os.close(slave)
    seen = b""
    try:
        os.set_blocking(master, False)
        while chunk := os.read(master, 65536):
            seen += chunk
    except OSError:
        pass
    finally:
        os.close(master)
    return Result(args, p.returncode, "", p.stderr.decode("utf-8", "replace"), seen)


def one_error_line(result: Result, *fragments: str) -> str:
    """Exactly one line on stderr, no traceback, holding every fragment."""
    assert "Traceback" not in result.stderr, result
    assert len(result.lines()) == 1, result
    line = result.lines()[0]
    for fragment in fragments:
        assert fragment in line, result
    return line


def jsonl(result: Result) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def sound(lib, name: str) -> str:
    return str(lib["sounds"] / name)


# --------------------------------------------------------------------------------------------
# Index and search


def test_index_reports_on_stderr(lib):
    built = lib["built"]
    assert built.stdout == ""
    assert built.lines() == ["indexed 34 files (34 added, 0 replaced, 0 unchanged), 158 segments, "
                             "exact index at idx"]


@pytest.mark.parametrize("name", list(PHRASES))
def test_text_search_finds_the_file_per_file(lib, name):
    result = run(lib, ["search", PHRASES[name], "-i", "idx", "-k", "3", "--format", "json"])
    assert result.rc == 0 and result.stderr == "", result
    hits = jsonl(result)
    assert [h["rank"] for h in hits] == [1, 2, 3]
    assert all(set(h) == JSON_KEYS for h in hits)
    assert hits[0]["path"] == sound(lib, name)
    assert len({h["path"] for h in hits}) == 3  # one hit per file
    assert hits[0]["score"] > 0.7 > hits[1]["score"]
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    if name == "door.wav":
        assert hits[0]["channel"] == 1  # the best moment over the file's channels


def test_segments_lists_every_matching_segment(lib):
    result = run(lib, ["search", "distant thunder", "-i", "idx", "-k", "8", "--segments", "--format", "json"])
    hits = jsonl(result)
    assert result.rc == 0 and len(hits) == 8, result
    assert {h["path"] for h in hits} == {sound(lib, "thunder.wav")}
    assert sorted(h["start"] for h in hits) == [float(i) for i in range(8)]
    assert all(h["end"] == h["start"] + 2.0 for h in hits)


def test_tsv_when_piped_with_a_header(lib):
    result = run(lib, ["search", "birdsong at dawn", "-i", "idx", "-k", "4"])
    assert result.rc == 0, result
    lines = result.stdout.splitlines()
    assert lines[0] == "rank\tscore\tpath\tchannel\tstart\tend\tcontent_hash"
    rows = [line.split("\t") for line in lines[1:]]
    assert len(rows) == 4 and all(len(row) == 7 for row in rows)
    assert [row[0] for row in rows] == ["1", "2", "3", "4"]
    assert rows[0][2] == sound(lib, "birds.wav") and rows[0][3] == "0"
    assert float(rows[0][1]) > 0.7 and float(rows[0][5]) - float(rows[0][4]) == 2.0
    assert rows[0][6] == "hash-sounds/birds.wav-0"


def test_paths_one_per_line(lib):
    result = run(lib, ["search", "rain on a tin roof", "-i", "idx", "-k", "5", "--format", "paths"])
    paths = result.stdout.splitlines()
    assert result.rc == 0 and len(paths) == 5 == len(set(paths)), result
    assert paths[0] == sound(lib, "rain.wav") and all(os.path.isabs(p) for p in paths)
    segments = run(lib, ["search", "rain on a tin roof", "-i", "idx", "-k", "5", "--segments", "--format", "paths"])
    assert segments.stdout.splitlines() == [sound(lib, "rain.wav")]  # each path once


def test_table_on_a_terminal(lib):
    result = run_on_terminal(lib, ["search", "a creaking wooden door", "-i", "idx", "-k", "2"])
    assert result.rc == 0, result
    shown = result.terminal.decode("utf-8", "replace")
    assert "score" in shown and "\t" not in shown
    rows = [line.split() for line in shown.splitlines() if line[:1].isdigit()]
    assert [row[0] for row in rows] == ["1", "2"]
    assert rows[0][-1] == "sounds/door.wav" and rows[0][-2] == "1"  # relative path; channel 1


def test_text_search_keeps_torch_zarr_and_sentence_transformers_out(lib):
    code = (
        "import sys\n"
        "from soundtok_cli.app import app\n"
        "try:\n"
        "    app(['search', 'distant thunder', '-i', 'idx', '-k', '2'], prog_name='soundtok')\n"
        "except SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        "heavy = [m for m in ('torch', 'zarr', 'sentence_transformers', 'transformers') if m in sys.modules]\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    p = subprocess.run([sys.executable, "-c", code], cwd=lib["dir"], env=lib["env"], capture_output=True,
                       text=True, timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    assert "HEAVY []" in p.stderr, p.stderr
    assert "thunder.wav" in p.stdout


def test_default_index_location(lib, tmp_path):
    env = dict(lib["env"], SOUNDTOK_INDEX=str(tmp_path / "mine"))
    built = run(lib, ["index", "lib.zarr.zip", "-q"], env=env)
    assert built.rc == 0 and built.stderr == "", built
    found = run(lib, ["search", "distant thunder", "-k", "1", "--format", "paths"], env=env)
    assert found.stdout.splitlines() == [sound(lib, "thunder.wav")], found
    env = dict(lib["env"], XDG_DATA_HOME=str(tmp_path / "data"))
    assert run(lib, ["index", "extra.zarr.zip", "-q"], env=env).rc == 0
    assert os.path.isfile(tmp_path / "data" / "soundtok" / "index" / "CURRENT")


def test_a_stream_on_stdin_and_append_report_as_json(lib, tmp_path):
    stream = subprocess.run(CLI + ["cat", "extra.zarr.zip"], cwd=lib["dir"], env=lib["env"],
                            capture_output=True, timeout=TIMEOUT).stdout
    index = str(tmp_path / "idx")
    assert run(lib, ["index", "lib.zarr.zip", "-o", index, "-q"]).rc == 0
    result = run(lib, ["index", "--append", "-o", index, "--format", "json"], stdin=stream)
    assert result.rc == 0 and result.stderr == "", result
    report = json.loads(result.stdout)
    assert (report["added"], report["replaced"], report["unchanged"]) == (1, 0, 0)
    assert (report["files"], report["segments"], report["failed"]) == (35, 160, 0)
    assert report["index_type"]["type"] == "exact"
    again = run(lib, ["index", "--append", "extra.zarr.zip", "-o", index])
    assert again.rc == 0 and again.lines()[0].startswith("index unchanged: 35 files (0 added, 0 replaced, 1 unchanged)")


def test_prune_alone(lib, tmp_path):
    index = str(tmp_path / "idx")
    gone = lib["sounds"] / "gone.wav"
    gone.write_bytes(b"x")
    save_store(tmp_path / "gone.zarr.zip", files_batch(
        [{"source": str(gone), "vectors": np.eye(DIM, dtype=np.float32)[:2]}], lib["embedder"]))
    assert run(lib, ["index", str(tmp_path / "gone.zarr.zip"), "-o", index, "-q"]).rc == 0
    gone.unlink()
    result = run(lib, ["index", "--prune", "-o", index], stdin=None)
    assert result.rc == 0 and "1 pruned" in result.lines()[0] and "0 files" in result.lines()[0], result


# --------------------------------------------------------------------------------------------
# Bad input: one line each, documented exit codes


def test_missing_index(lib):
    result = run(lib, ["search", "distant thunder", "-i", "nowhere"])
    assert result.rc == 2 and result.stdout == ""
    one_error_line(result, "soundtok search: nowhere: no index here", "soundtok index")


def test_corrupt_index(lib, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "CURRENT").write_text("not json at all")
    result = run(lib, ["search", "distant thunder", "-i", str(broken)])
    assert result.rc == 2
    one_error_line(result, "corrupt index (CURRENT is not valid JSON)")

    index = tmp_path / "idx"
    assert run(lib, ["index", "lib.zarr.zip", "-o", str(index), "-q"]).rc == 0
    (index / "gen-000001" / "index.faiss").write_bytes(b"\x00" * 100)
    result = run(lib, ["search", "distant thunder", "-i", str(index)])
    assert result.rc == 2
    one_error_line(result, "corrupt index (gen-000001/index.faiss is unreadable)")
    result = run(lib, ["index", "--append", "extra.zarr.zip", "-o", str(index)])
    assert result.rc == 0, result  # the faiss file is rebuilt from the kept vectors


def test_store_from_another_embedder_version(lib, tmp_path):
    index = str(tmp_path / "idx")
    assert run(lib, ["index", "lib.zarr.zip", "-o", index, "-q"]).rc == 0
    alone = run(lib, ["index", "--append", "v2.zarr.zip", "-o", index])
    assert alone.rc == 2
    one_error_line(alone, "v2.zarr.zip: made with embedder test-embedder 2 (weights 121212121212)",
                   "the index holds embedder test-embedder 1 (weights efefefefefef)")
    # without --append the first store read decides; the others must match it
    mixed = run(lib, ["index", "extra.zarr.zip", "v2.zarr.zip", "-o", index])
    assert mixed.rc == 1, mixed
    assert "Traceback" not in mixed.stderr
    errors = [line for line in mixed.lines() if line.startswith("soundtok index: ")]
    assert errors == ["soundtok index: v2.zarr.zip: made with embedder test-embedder 2 (weights 121212121212), "
                      "but extra.zarr.zip was made with embedder test-embedder 1 (weights efefefefefef); "
                      "one index holds one embedder"]
    assert "indexed 1 file (1 added" in mixed.stderr and "1 input failed" in mixed.stderr


def test_tokens_store_given_to_index(lib, tmp_path):
    result = run(lib, ["index", "tokens.zarr.zip", "-o", str(tmp_path / "idx")])
    assert result.rc == 2
    one_error_line(result, "tokens.zarr.zip: is a tokens store, expected embeddings", "soundtok embed")
    assert not os.path.exists(tmp_path / "idx" / "CURRENT")


def test_unreadable_store_and_no_input(lib, tmp_path):
    result = run(lib, ["index", "missing.zarr.zip", "-o", str(tmp_path / "idx")])
    assert result.rc == 2
    one_error_line(result, "missing.zarr.zip: no such file or directory")
    result = run(lib, ["index", "-o", str(tmp_path / "idx")], stdin=b"")
    assert result.rc == 2
    one_error_line(result, "no input")


@pytest.mark.parametrize("query", ["", "   "])
def test_empty_query(lib, query):
    result = run(lib, ["search", query, "-i", "idx"])
    assert result.rc == 2 and result.stdout == ""
    one_error_line(result, "empty query")


def test_query_and_like_together_or_neither(lib):
    for args in (["search", "-i", "idx"], ["search", "rain", "--like", "x.wav", "-i", "idx"]):
        result = run(lib, args)
        assert result.rc == 2
        one_error_line(result, "give a QUERY or --like AUDIO_OR_STORE")


def test_empty_index_says_so(lib, tmp_path):
    index = str(tmp_path / "idx")
    built = run(lib, ["index", "empty.zarr.zip", "-o", index])
    assert built.rc == 0 and "0 segments, empty index" in built.stderr, built
    result = run(lib, ["search", "distant thunder", "-i", index])
    assert result.rc == 2 and result.stdout == ""
    one_error_line(result, "the index is empty")


def test_index_built_for_another_text_tower(lib, tmp_path):
    index = str(tmp_path / "idx")
    assert run(lib, ["index", "othertext.zarr.zip", "-o", index, "-q"]).rc == 0
    result = run(lib, ["search", "distant thunder", "-i", index])
    assert result.rc == 2
    one_error_line(result, "text tower all-MiniLM-L6-v2 (weights cdcdcdcdcdcd)", "the installed one")


def test_like_with_an_unreadable_file(lib, tmp_path):
    pytest.importorskip("soundtok_cli.embed.query")
    bad = tmp_path / "notes.wav"
    bad.write_text("this is not audio")
    result = run(lib, ["search", "--like", str(bad), "-i", "idx"])
    assert result.rc == 2 and result.stdout == ""
    one_error_line(result, str(bad))


def test_like_with_a_store_of_another_embedder(lib):
    pytest.importorskip("soundtok_cli.embed.query")
    result = run(lib, ["search", "--like", "v2.zarr.zip", "-i", "idx"])
    assert result.rc == 2
    one_error_line(result, "v2.zarr.zip", "test-embedder 2", "test-embedder 1")


def test_like_with_an_embeddings_store_finds_its_own_file(lib):
    pytest.importorskip("soundtok_cli.embed.query")
    result = run(lib, ["search", "--like", "extra.zarr.zip", "-i", "idx", "-k", "1", "--format", "paths"])
    assert result.rc == 0, result
    assert result.stdout.splitlines() == [sound(lib, "thunder.wav")]


def test_words_other_than_a_trained_caption_are_read_with_its_sound(lib, tmp_path):
    """An index of the built-in embedder: -v names the trained caption a query was pulled toward
    (embed/prototypes.py); a trained caption itself and --as-typed are searched as typed."""
    from soundtok_cli.embed.prototypes import for_embedder
    from soundtok_cli.embed.text import encode_queries
    from soundtok_cli.models.registry import find, sha256

    entry = find("soundtok-embed")
    built_in = embedder_attrs(name=entry.name, version=entry.version, weights_sha256=sha256(entry.path()),
                              text=lib["embedder"]["text"])
    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((4, DIM)).astype(np.float32)
    save_store(tmp_path / "b.zarr.zip", files_batch([{"source": "b.wav", "vectors": vectors / np.linalg.norm(
        vectors, axis=1, keepdims=True)}], built_in))
    assert run(lib, ["index", str(tmp_path / "b.zarr.zip"), "-o", str(tmp_path / "idx"), "-q"]).rc == 0
    nearest = for_embedder(built_in).pull(encode_queries(["a rainstorm"])[0])[1]
    assert nearest

    def search(*args):
        result = run(lib, ["search", *args, "-i", str(tmp_path / "idx"), "-v", "--format", "tsv"])
        assert result.rc == 0 and "b.wav" in result.stdout, result
        return result, float(result.stdout.splitlines()[1].split("\t")[1])

    pulled, pulled_score = search("a rainstorm")
    assert f"'a rainstorm' read with the sound of the trained caption '{nearest}'" in pulled.stderr
    typed, typed_score = search("a rainstorm", "--as-typed")
    assert "read with the sound" not in typed.stderr and pulled_score != typed_score
    caption, _ = search("rain")
    assert "read with the sound" not in caption.stderr
    one_error_line(run(lib, ["search", "--like", "x.wav", "--as-typed", "-i", str(tmp_path / "idx")]), "--as-typed")
