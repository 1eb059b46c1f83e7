"""Corpus builder, caption cleaning and the MIDI writer, on tiny inputs made here (no network)."""

import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from soundtok_cli.data import corpus
from soundtok_cli.data.captions import clean_label, split_words

SR = corpus.SAMPLE_RATE


# ---------------------------------------------------------------------------- captions

@pytest.mark.parametrize("label,kind,pkg,expected", [
    ("animal/cattle_01", "sfx", "0ad-data", "cattle"),
    ("ui/ui_button_click", "sfx", "0ad-data", "user interface button click"),
    ("weapon/sling_21", "sfx", "0ad-data", "weapon sling"),
    ("/horseman_attack13", "sfx", "megaglest-data", "horseman attack"),
    ("explons/lrgexpl", "sfx", "warzone2100-data", "large explosion"),
    ("ru/tux-vase", "speech", "ktuberling-data", "a voice saying a word in Russian"),
    ("British/Takecover", "speech", "hedgewars-data", 'a voice in a british character style saying "takecover"'),
    ("Default_ru/Missed", "speech", "hedgewars-data", "a voice speaking Russian"),
    ("civ/civ_female_garrison_1", "speech", "0ad-data", "a female voice acknowledging an order in a game"),
    ("tim/RightLongCut", "speech", "trigger-rally-data", 'rally co-driver calling "right long cut"'),
    ("music/Bandit_Country", "music", "0ad-data", 'music, "bandit country"'),
    ("/14-1", "sfx", "bucklespring-data", "mechanical keyboard key release"),
    ("/sound003", "sfx", "colobot-common-sounds", "sound effect"),
])
def test_clean_label(label, kind, pkg, expected):
    assert clean_label(label, kind, pkg) == expected


def test_split_words():
    assert split_words("FootstepSand_Running02.ogg") == ["footstep", "sand", "running"]
    assert split_words("male_death_34") == ["male", "death"]
    assert split_words("hit_b") == ["hit"]


# ---------------------------------------------------------------------------- helpers

def test_split_archive_path():
    assert corpus.split_archive_path("a/public.zip.d/audio/x.ogg") == ("a/public.zip", "audio/x.ogg")
    assert corpus.split_archive_path("g/base.wz.d/s/y.wav") == ("g/base.wz", "s/y.wav")
    assert corpus.split_archive_path("g/pak0.pk3.d/z.ogg") == ("g/pak0.pk3", "z.ogg")
    assert corpus.split_archive_path("usr/share/x.d/y.wav") == ("usr/share/x.d/y.wav", None)


def test_to_mono_mean_and_antiphase():
    t = np.arange(SR // 10) / SR
    s = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    st = np.stack([s, 0.5 * s], axis=1)
    assert np.allclose(corpus.to_mono(st), 0.75 * s)
    anti = np.stack([s, -s], axis=1)
    assert np.allclose(corpus.to_mono(anti), s)


def test_silence_detection_and_int16():
    assert corpus.is_silent(np.zeros(1000, np.float32))
    assert corpus.is_silent(np.full(1000, 1e-5, np.float32))
    assert not corpus.is_silent(0.01 * np.ones(1000, np.float32))
    assert corpus.to_int16(np.array([2.0, -2.0, 0.5])).tolist() == [32767, -32768, 16384]


def test_shard_writer_atomic_and_consistent(tmp_path):
    w = corpus.ShardWriter(tmp_path / "train", shard_bytes=2 * 1000)
    clips = [np.full(n, i + 1, np.int16) for i, n in enumerate([300, 900, 50, 400])]
    for i, c in enumerate(clips):
        w.add(c, "synth", f"synth:t:{i}", f"clip {i}")
    w.flush()
    rows = corpus.read_index(tmp_path / "train" / "index.tsv")
    assert len(rows) == 4
    for i, r in enumerate(rows):
        arr = np.load(tmp_path / "train" / r["shard"], mmap_mode="r")
        seg = arr[int(r["offset"]):int(r["offset"]) + int(r["length"])]
        assert np.array_equal(seg, clips[i])
    assert not list((tmp_path / "train").glob(".*tmp"))
    # a new writer continues numbering
    w2 = corpus.ShardWriter(tmp_path / "train", shard_bytes=2 * 1000)
    assert w2.next_id == len(list((tmp_path / "train").glob("shard-*.npy")))


# ---------------------------------------------------------------------------- MIDI

def test_write_midi_structure(tmp_path):
    notes, programs, bpm, caption = corpus.random_song(np.random.default_rng(0), 6.0)
    path = tmp_path / "x.mid"
    corpus.write_midi(path, notes, programs, bpm)
    data = path.read_bytes()
    assert data[:4] == b"MThd" and data[14:18] == b"MTrk"
    assert int.from_bytes(data[18:22], "big") == len(data) - 22
    assert data.endswith(b"\xff\x2f\x00")
    assert caption.startswith(("music:", "soft music:")) and f"{bpm} bpm" in caption
    assert corpus._vlq(0) == b"\x00" and corpus._vlq(0x80) == b"\x81\x00" and corpus._vlq(0x3FFF) == b"\xff\x7f"


@pytest.mark.skipif(shutil.which("fluidsynth") is None or not Path(corpus.SOUNDFONT).exists(),
                    reason="fluidsynth or the GM soundfont is not installed")
def test_midi_renders_with_fluidsynth(tmp_path):
    notes = [(0.0, 1.0, 0, 60, 100), (1.0, 1.0, 0, 64, 100), (0.0, 0.5, 9, 36, 110)]
    corpus.write_midi(tmp_path / "a.mid", notes, {0: 0}, 120.0)
    corpus.render_midi(tmp_path / "a.mid", tmp_path / "a.wav")
    x, sr = sf.read(str(tmp_path / "a.wav"))
    assert sr == SR and len(x) > 0.8 * SR and np.max(np.abs(x)) > 0.01


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_espeak_batch():
    clips = corpus.espeak_batch(np.random.default_rng(0), 3.0, "espeak-test")
    assert clips and sum(len(c[0]) for c in clips) >= 3.0 * SR
    for x, kind, source, caption in clips:
        assert kind == "speech" and source.startswith("espeak:espeak-test:") and "voice" in caption


# ---------------------------------------------------------------------------- builder

def _tone(seconds, freq=440.0, amp=0.3, channels=1):
    t = np.arange(int(seconds * 44100)) / 44100
    x = (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


def _make_fake_packages(tmp_path):
    """Two unpacked packages (one held out) plus one packed as a real .deb, and a manifest."""
    pkgs = tmp_path / "pkgs"
    debs = tmp_path / "debs"
    debs.mkdir()
    rows = []
    # train package: plain WAV (stereo), OGG, a silent file, and files inside a .zip archive
    root = pkgs / "fake-data"
    d = root / "usr/share/fake"
    d.mkdir(parents=True)
    sf.write(str(d / "boom_01.wav"), _tone(1.0, 100, channels=2), 44100)
    sf.write(str(d / "door-Creak2.ogg"), _tone(0.5, 700), 44100, format="OGG")
    sf.write(str(d / "silence.wav"), np.zeros(44100, np.float32), 44100)
    with zipfile.ZipFile(d / "public.zip", "w") as zf:
        for name, f in (("audio/animal/cattle_01.wav", 200), ("audio/music/Theme_Song.wav", 300)):
            tmp = tmp_path / "z.wav"
            sf.write(str(tmp), _tone(0.7, f), 44100)
            zf.write(tmp, name)
    rows += [
        ("fake-data", "usr/share/fake/boom_01.wav", "1.0", "sfx", "/boom_01"),
        ("fake-data", "usr/share/fake/door-Creak2.ogg", "0.5", "sfx", "/door-Creak2"),
        ("fake-data", "usr/share/fake/silence.wav", "1.0", "sfx", "/silence"),
        ("fake-data", "usr/share/fake/public.zip.d/audio/animal/cattle_01.wav", "0.7", "sfx", "animal/cattle_01"),
        ("fake-data", "usr/share/fake/public.zip.d/audio/music/Theme_Song.wav", "0.7", "music", "music/Theme_Song"),
    ]
    (pkgs / ".fake-data.extracted").write_text("fake\n")
    # held-out package (name from the constant), unpacked
    held = corpus.HELDOUT_PACKAGES[0]
    hd = pkgs / held / "usr/share/h"
    hd.mkdir(parents=True)
    for i in range(3):
        sf.write(str(hd / f"siren_{i}.wav"), _tone(3.0, 500 + 100 * i), 44100)
        rows.append((held, f"usr/share/h/siren_{i}.wav", "3.0", "sfx", f"sounds/siren_{i}"))
    (pkgs / f".{held}.extracted").write_text("fake\n")
    # a package that only exists as a .deb in the cache (exercises dpkg -x, no download)
    if shutil.which("dpkg-deb"):
        src = tmp_path / "debsrc"
        (src / "DEBIAN").mkdir(parents=True)
        (src / "DEBIAN/control").write_text(
            "Package: fake-deb-data\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@t>\nDescription: t\n")
        (src / "usr/share/fd").mkdir(parents=True)
        sf.write(str(src / "usr/share/fd/Hello.wav"), _tone(0.6, 250), 22050)
        subprocess.run(["dpkg-deb", "--build", "-Zgzip", str(src), str(debs / "fake-deb-data_1.0_all.deb")],
                       check=True, capture_output=True)
        rows.append(("fake-deb-data", "usr/share/fd/Hello.wav", "0.6", "speech", "en/Hello"))
    manifest = tmp_path / "manifest.tsv"
    manifest.write_text("pkg\tpath\tduration_s\tkind\tlabel_text\n" + "".join("\t".join(r) + "\n" for r in rows))
    return manifest, pkgs, debs, rows


def _check_index(split_dir):
    rows = corpus.read_index(split_dir / "index.tsv")
    by_shard = {}
    for r in rows:
        by_shard.setdefault(r["shard"], []).append(r)
    for shard, rs in by_shard.items():
        arr = np.load(split_dir / shard, mmap_mode="r")
        assert arr.dtype == np.int16 and arr.ndim == 1
        pos = 0
        for r in rs:  # clips are contiguous, in order, and cover the shard exactly
            assert int(r["offset"]) == pos
            pos += int(r["length"])
        assert pos == len(arr)
    return rows


def test_build_small_corpus(tmp_path):
    manifest, pkgs, debs, rows = _make_fake_packages(tmp_path)
    out = tmp_path / "corpus"
    cfg = corpus.Config(out=out, manifest=manifest, cache_dir=debs, pkgs_dir=pkgs, speech_min=0, music_min=0,
                        synth_min=0.1, gen_unit_s=3.0, jobs=1, shard_bytes=200_000)
    st = corpus.build(cfg)

    train = _check_index(out / "train")
    heldout = _check_index(out / "heldout")
    held = corpus.HELDOUT_PACKAGES[0]
    assert all(not r["source"].startswith(held) for r in train)
    assert heldout and all(r["source"].startswith(f"{held}:") for r in heldout)
    sources = {r["source"] for r in train}
    assert "fake-data:usr/share/fake/silence.wav" not in sources  # silent files are dropped
    assert "fake-data:usr/share/fake/public.zip.d/audio/animal/cattle_01.wav" in sources
    assert len(list((out / "train").glob("shard-*.npy"))) > 1     # small shards force several
    by_source = {r["source"]: r for r in train}
    cattle = by_source["fake-data:usr/share/fake/public.zip.d/audio/animal/cattle_01.wav"]
    assert cattle["caption"] == "cattle" and cattle["kind"] == "sfx"
    assert by_source["fake-data:usr/share/fake/public.zip.d/audio/music/Theme_Song.wav"]["kind"] == "music"
    # content: 48 kHz, real level kept (0.3 peak), stereo mixed to mono
    boom = by_source["fake-data:usr/share/fake/boom_01.wav"]
    assert int(boom["length"]) == SR
    arr = np.load(out / "train" / boom["shard"], mmap_mode="r")
    seg = arr[int(boom["offset"]):int(boom["offset"]) + SR] / 32768.0
    assert 0.28 < np.max(np.abs(seg)) < 0.32
    if shutil.which("dpkg-deb"):
        assert "fake-deb-data:usr/share/fd/Hello.wav" in sources
        assert (pkgs / "fake-deb-data/usr/share/fd/Hello.wav").exists()
    synth_rows = [r for r in train if r["kind"] == "synth"]
    assert synth_rows and sum(int(r["length"]) for r in synth_rows) >= 6 * SR
    assert all(r["source"].startswith("synth:") for r in synth_rows)

    # held-out benchmark clips: 2-10 s mono 48 kHz WAV named kind-NNN.wav
    clips = sorted((out / "heldout" / "clips").glob("*.wav"))
    assert clips and all(c.name.startswith("sfx-") for c in clips)
    for c in clips:
        info = sf.info(str(c))
        assert info.samplerate == SR and info.channels == 1 and 2.0 <= info.duration <= 10.0

    assert st["train"]["synth"] > 0 and st["heldout"]["sfx"] > 0
    ready = (out / "READY").read_text()
    assert "train:" in ready and "heldout:" in ready

    # resumable: a second run adds nothing
    before = (out / "train" / "index.tsv").read_text()
    corpus.build(cfg)
    assert (out / "train" / "index.tsv").read_text() == before
    done = (out / "done.txt").read_text().split()
    assert "pkg:fake-data" in done and "gen:synth-0000" in done


def test_build_resumes_after_interruption(tmp_path):
    manifest, pkgs, debs, rows = _make_fake_packages(tmp_path)
    out = tmp_path / "corpus"
    cfg = corpus.Config(out=out, manifest=manifest, cache_dir=debs, pkgs_dir=pkgs, speech_min=0, music_min=0,
                        synth_min=0, jobs=1, packages=["fake-data"])
    corpus.build(cfg)
    n = len(corpus.read_index(out / "train" / "index.tsv"))
    # simulate a crash after the shard was written but before the package was marked done
    (out / "done.txt").write_text("")
    corpus.build(cfg)
    assert len(corpus.read_index(out / "train" / "index.tsv")) == n


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
def test_ffmpeg_fallback_for_formats_libsndfile_cannot_read(tmp_path):
    path = tmp_path / "tone.m4a"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=0.5",
                    "-c:a", "aac", str(path)], check=True)
    y = corpus.load_clip(path.read_bytes(), path.name)
    assert y is not None and abs(len(y) - SR // 2) < SR // 20
    assert 0.05 < np.max(np.abs(y)) <= 1.0


def test_cli_stats_and_demo_library(tmp_path, capsys):
    from soundtok_cli.data.__main__ import main

    w = corpus.ShardWriter(tmp_path / "c" / "train")
    w.add(np.ones(SR * 36, np.int16), "synth", "synth:x:0", "x")
    w.flush()
    assert main(["stats", str(tmp_path / "c")]) == 0
    assert "train: 0.01 h (synth 0.01 h)" in capsys.readouterr().out
    assert main(["demo-library", str(tmp_path / "demo")]) == 0
    assert len(list((tmp_path / "demo").glob("*.wav"))) + len(list((tmp_path / "demo").glob("*.flac"))) >= 8


def test_units_are_marked_done_only_when_on_disk(tmp_path):
    writers = {"train": corpus.ShardWriter(tmp_path / "train", shard_bytes=2000)}
    log = corpus.DoneLog(tmp_path, writers)
    writers["train"].add(np.ones(100, np.int16), "sfx", "a:1", "x")
    log.finished("pkg:a")
    assert corpus.read_done(tmp_path) == set()
    writers["train"].add(np.ones(1000, np.int16), "sfx", "b:1", "x")  # fills the shard: flushed
    log.finished("pkg:b")
    assert corpus.read_done(tmp_path) == {"pkg:a", "pkg:b"}


def test_recaption_and_lock(tmp_path):
    manifest, pkgs, debs, rows = _make_fake_packages(tmp_path)
    out = tmp_path / "corpus"
    cfg = corpus.Config(out=out, manifest=manifest, cache_dir=debs, pkgs_dir=pkgs, speech_min=0, music_min=0,
                        synth_min=0, jobs=1, packages=["fake-data"])
    corpus.build(cfg)
    index = out / "train" / "index.tsv"
    text = index.read_text()
    index.write_text(text.replace("\tcattle\n", "\told caption\n"))
    assert corpus.recaption(out, manifest) == 1
    assert index.read_text() == text
    with corpus.corpus_lock(out):
        with pytest.raises(RuntimeError, match="another corpus build"):
            corpus.build(cfg)
