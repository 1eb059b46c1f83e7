"""Placement text, paths, CSV trajectories, scene files and SOFA files: what they mean, and the
one-line errors for what cannot be."""

from __future__ import annotations

import json

import numpy as np
import pytest

from soundtok_cli.errors import InputError, UsageError
from soundtok_cli.spatial.hrtf import default_sofa_path
from soundtok_cli.spatial.phrases import VOCABULARY, parse_at, parse_path
from soundtok_cli.spatial.pipeline import placement, read_scene
from soundtok_cli.spatial.sofa import read_sofa
from soundtok_cli.spatial.trajectory import Trajectory, parse_csv_trajectory


@pytest.mark.parametrize("text,expected", [
    ("az=135 el=0 dist=0.5", (135, 0, 0.5)),
    ("az=-30, el=10", (-30, 10, 1)),
    ("azimuth=90 elevation=-20 distance=3m", (90, -20, 3)),
    ("behind your left ear", (135, 0, 0.2)),
    ("front", (0, 0, 1)),
    ("in front of you", (0, 0, 1)),
    ("left", (90, 0, 1)),
    ("right ear", (-90, 0, 0.2)),
    ("behind", (180, 0, 1)),
    ("front right", (-45, 0, 1)),
    ("overhead", (0, 90, 1)),
    ("above left", (90, 45, 1)),
    ("below", (0, -45, 1)),
    ("far behind", (180, 0, 10)),
    ("very near right", (-90, 0, 0.25)),
    ("2 m to the left", (90, 0, 2)),
    ("3 metres behind", (180, 0, 3)),
    ("left 1.5m above", (90, 45, 1.5)),
])
def test_placements(text, expected):
    assert parse_at(text) == pytest.approx(expected)


@pytest.mark.parametrize("text,message", [
    ("beside the piano", "unknown word 'beside'"),
    ("az=nan", "azimuth must be a finite number"),
    ("az=10 dist=-1", "distance must be positive"),
    ("dist=0", "distance must be positive"),
    ("el=95", "elevation 95 is outside"),
    ("az=ten", "is not a number"),
    ("left right", "contradictory"),
    ("ear", "which ear"),
    ("3 behind", "needs a unit"),
    ("", "empty placement"),
    ("az=1 az=2", "given twice"),
])
def test_impossible_placements(text, message):
    with pytest.raises(InputError) as error:
        parse_at(text)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_unknown_word_lists_the_vocabulary():
    with pytest.raises(InputError) as error:
        parse_at("somewhere nice")
    assert VOCABULARY in str(error.value)
    for word in ("front", "behind", "left", "right", "above", "below", "overhead", "near", "far", "ear"):
        assert word in VOCABULARY


def test_paths():
    jet = parse_path("from right to left overhead over 5s")
    assert jet.duration == 5.0
    at = jet.trajectory.sample([0, 1.25, 2.5, 3.75, 5])
    assert at[0] == pytest.approx([-90, 0, 1], abs=1e-6)
    assert at[2, 1] == pytest.approx(90, abs=1e-6)  # straight overhead half way
    assert at[1] == pytest.approx([-90, 45, 1], abs=1e-6) and at[3] == pytest.approx([90, 45, 1], abs=1e-6)
    assert at[4] == pytest.approx([90, 0, 1], abs=1e-6)
    around = parse_path("around clockwise over 4s").trajectory.sample([0, 1, 2, 3])
    assert around[:, 0] == pytest.approx([0, -90, 180, 90], abs=1e-6) or around[2, 0] == pytest.approx(-180)
    flat = parse_path("from front to behind in 2 seconds").trajectory.sample([1.0])
    assert flat[0] == pytest.approx([90, 0, 1], abs=1e-6)  # opposite ends: through the left
    approach = parse_path("from far left to near left")
    assert approach.duration is None
    stretched = approach.for_duration(8.0).sample([0, 8])
    assert stretched[:, 2] == pytest.approx([10, 0.5])
    via = parse_path("from left via behind to right over 2s").trajectory.sample([1.0])
    assert abs(via[0, 0]) == pytest.approx(180, abs=1e-6)


@pytest.mark.parametrize("text,message", [
    ("left to right", "a path reads"),
    ("from left to left", "does not move"),
    ("from left to nowhere", "unknown word 'nowhere'"),
    ("from left to right over 5", "needs a unit of time"),
    ("from left to right over -2s", "must be positive"),
])
def test_bad_paths(text, message):
    with pytest.raises(InputError) as error:
        parse_path(text)
    assert message in str(error.value)


def test_csv_trajectories(tmp_path):
    path = parse_csv_trajectory("t,az,el,dist\n# a bee\n0,0,0,1\n1,90,0,1\n\n2,90,0,3\n")
    assert path.sample([0.5])[0] == pytest.approx([45, 0, 1])
    assert path.sample([1.5])[0] == pytest.approx([90, 0, 2])
    assert path.sample([9])[0] == pytest.approx([90, 0, 3])  # stays at the last keypoint
    wrapped = parse_csv_trajectory("0,170,0,1\n1,-170,0,1\n")  # the short way round, through 180
    assert abs(wrapped.sample([0.5])[0, 0]) == pytest.approx(180)
    for text, message in [
        ("0,0,0\n", "expected 4 values"),
        ("0,0,0,1\n0,10,0,1\n", "does not come after"),
        ("0,0,0,1\n1,x,0,1\n", "not a number"),
        ("0,0,0,-2\n", "distance must be positive"),
        ("0,0,120,1\n", "elevation 120"),
        ("0,nan,0,1\n", "NaN"),
        ("-1,0,0,1\n", "negative"),
        ("# only a comment\n", "no keypoints"),
    ]:
        with pytest.raises(InputError) as error:
            parse_csv_trajectory(text, "bee.csv")
        assert message in str(error.value) and str(error.value).startswith("bee.csv: ")
    binary = tmp_path / "bee.csv"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InputError, match="not UTF-8"):
        placement(trajectory=str(binary))


def test_placement_needs_exactly_one():
    with pytest.raises(UsageError, match="give one of"):
        placement()
    with pytest.raises(UsageError, match="not 2"):
        placement(at="left", path="from left to right")


def test_scene_files(tmp_path):
    (tmp_path / "bee.csv").write_text("0,0,0,1\n2,90,0,1\n")
    toml = tmp_path / "scene.toml"
    toml.write_text('room = "small"\n\n[[source]]\nfile = "a.wav"\nat = "behind your left ear"\nstart = 1.5\n'
                    'gain_db = -6\n\n[[source]]\nfile = "sub/b.wav"\npath = "from right to left over 3s"\n\n'
                    '[[source]]\nfile = "c.wav"\ntrajectory = "bee.csv"\n')
    scene = read_scene(str(toml))
    assert scene.room == "small" and len(scene.entries) == 3
    first = scene.entries[0]
    assert first.input == str(tmp_path / "a.wav") and first.start == 1.5 and first.gain_db == -6
    assert first.placement.trajectory.sample([0])[0] == pytest.approx([135, 0, 0.2])
    assert scene.entries[2].placement.trajectory.sample([1])[0] == pytest.approx([45, 0, 1])
    as_json = tmp_path / "scene.json"
    as_json.write_text(json.dumps({"source": [{"file": "a.wav", "at": "az=10"}]}))
    assert read_scene(str(as_json)).entries[0].placement.trajectory.sample([0])[0] == pytest.approx([10, 0, 1])
    for text, message in [
        ('[[source]]\nfile = "a.wav"\n', "give one of at or path or trajectory"),
        ('[[source]]\nfile = "a.wav"\nat = "left"\nwhere = 1\n', "unknown key 'where'"),
        ('[[source]]\nat = "left"\n', "needs file"),
        ('room = "cave"\n[[source]]\nfile = "a.wav"\nat = "left"\n', "unknown room 'cave'"),
        ('[[source]]\nfile = "a.wav"\nat = "beside"\n', "unknown word 'beside'"),
        ('[[source]]\nfile = "a.wav"\nat = "left"\nstart = -1\n', "start must not be negative"),
        ('title = "x"\n', "unknown key 'title'"),
        ("this is not toml [", "not valid TOML"),
        ("", "no sources"),
    ]:
        bad = tmp_path / "bad.toml"
        bad.write_text(text)
        with pytest.raises(InputError) as error:
            read_scene(str(bad))
        assert message in str(error.value), (text, str(error.value))


def test_sofa_reading(tmp_path):
    sofa = read_sofa(default_sofa_path())
    assert sofa.ir.shape == (710, 2, 512) and sofa.rate == 44100
    left = np.argmin(np.linalg.norm(sofa.positions[:, :2] - [90, 0], axis=1))
    assert np.sum(sofa.ir[left, 0] ** 2) > 4 * np.sum(sofa.ir[left, 1] ** 2)  # receiver 0 is the left ear
    text = tmp_path / "notes.sofa"
    text.write_text("not a sofa file")
    with pytest.raises(InputError, match="not a SOFA file"):
        read_sofa(str(text))
    import h5py

    other = tmp_path / "other.sofa"
    with h5py.File(other, "w") as f:
        f.attrs["Conventions"] = "CF-1.6"
        f["x"] = np.zeros(3)
    with pytest.raises(InputError, match="Conventions=SOFA"):
        read_sofa(str(other))
    mono = tmp_path / "mono.sofa"
    with h5py.File(mono, "w") as f:
        f.attrs["Conventions"] = "SOFA"
        f["Data.IR"] = np.zeros((4, 1, 16))
        f["Data.SamplingRate"] = [48000.0]
        f["SourcePosition"] = np.zeros((4, 3))
    with pytest.raises(InputError, match="1 receivers"):
        read_sofa(str(mono))
    with pytest.raises(InputError, match="no such file"):
        read_sofa(str(tmp_path / "missing.sofa"))


def test_static_and_moving_trajectories():
    fixed = Trajectory.fixed(30, 10, 2)
    assert fixed.static and fixed.sample([0, 100])[1] == pytest.approx([30, 10, 2])
    with pytest.raises(InputError, match="must increase"):
        Trajectory.from_positions([0, 0], [[0, 0, 1], [10, 0, 1]])
    with pytest.raises(InputError, match="distance must be positive"):
        Trajectory.from_positions([0, 1], [[0, 0, 1], [10, 0, -1]])
