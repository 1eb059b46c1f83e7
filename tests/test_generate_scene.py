"""soundtok generate --scene: durations, scene files and their errors, scheduling, the mismatch
rule (measured on held-out pairs), and scenes made into spatial stores that decode --render plays."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from soundtok_cli.errors import InputError
from soundtok_cli.generate.durations import parse_duration
from soundtok_cli.generate.scene import (
    FADE_FRAMES,
    LEAD_IN_FRAMES,
    occurrence_times,
    read_generation_scene,
    render_scene,
)

ENV = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")


# --------------------------------------------------------------------------------------------
# Durations


@pytest.mark.parametrize("text, seconds", [
    ("10m", 600), ("90s", 90), ("1h30m", 5400), ("2:30", 150), ("1:02:03", 3723), ("45", 45), ("1.5s", 1.5),
    ("500ms", 0.5), ("2m 15s", 135), ("2:30.5", 150.5), (" 1 hour ", 3600), ("3 seconds", 3), (45, 45), (0.25, 0.25),
])
def test_durations(text, seconds):
    assert parse_duration(text, "--duration") == pytest.approx(seconds)


@pytest.mark.parametrize("text, why", [
    ("", "is not a duration"), ("soon", "is not a duration"), ("10 parsecs", "is not a duration"),
    ("-5s", "is not a duration"), ("1:60", "is not a duration"), ("30s 1m", "is not a duration"),
    ("1m1m", "is not a duration"), ("1e3", "is not a duration"), ("nan", "is not a duration"),
    ("1:2:3:4", "is not a duration"), (True, "is not a duration"), ([], "is not a duration"),
    ("0s", "longer than zero"), (0, "longer than zero"), ("25h", "longer than the most allowed, 24 h"),
])
def test_not_durations(text, why):
    with pytest.raises(InputError) as caught:
        parse_duration(text, "--duration")
    line = str(caught.value)
    assert line.startswith("--duration: ") and why in line and repr(text) in line and "\n" not in line


# --------------------------------------------------------------------------------------------
# Scene files

GOOD = """
description = "a rainforest at dawn"
duration = "2m"
seed = 11
room = "outdoor"

[bed]
prompt = "rain on leaves"
level_db = -6

[[event]]
prompt = "tropical birds"
density = 4
length = "2s"
at = "left far above"
jitter = 30

[[event]]
prompt = "a waterfall"
density = 0.5
path = "from front to right"
"""


def write(tmp_path, text: str, name: str = "scene.toml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_scene_file(tmp_path):
    scene = read_generation_scene(write(tmp_path, GOOD))
    assert (scene.description, scene.duration, scene.seed, scene.room) == ("a rainforest at dawn", 120, 11, "outdoor")
    (bed,) = scene.beds
    assert (bed.label, bed.prompt, bed.level_db, bed.placement.text) == ("bed", "rain on leaves", -6, "front")
    birds, falls = scene.events
    assert (birds.label, birds.density, birds.length, birds.jitter, birds.level_db) == ("event 1", 4, 2, 30, 0)
    assert np.allclose(birds.placement.trajectory.sample([0.0])[0], [90, 45, 10])
    assert (falls.length, falls.jitter, falls.placement.stretch) == (3.0, 0.0, True)


def test_scene_file_json_with_bed_layers(tmp_path):
    doc = {"description": "a cabin in a thunderstorm", "duration": 90,
           "bed": [{"prompt": "heavy rain", "at": "above"}, {"prompt": "wind around the cabin", "level_db": -12}],
           "event": [{"prompt": "thunder", "density": 1, "trajectory": "thunder.csv"}]}
    (tmp_path / "thunder.csv").write_text("t,az,el,dist\n0,90,10,300\n4,-90,10,300\n")
    scene = read_generation_scene(write(tmp_path, json.dumps(doc), "storm.json"))
    assert [b.label for b in scene.beds] == ["bed 1", "bed 2"] and scene.duration == 90 and scene.seed is None
    assert scene.events[0].placement.trajectory.duration == 4


BAD = [
    ('description = "x"\nduration = "1m"\ntempo = 3\n[bed]\nprompt = "rain"',
     "scene.toml: unknown key 'tempo' (a scene has: bed, description, duration, event, room, seed)"),
    ('description = "x"\nduration = "1m"\n[[event]]\nprompt = "rain"\ndensty = 3',
     "scene.toml: event 1: unknown key 'densty' (an event has: at, density, jitter, length, level_db, path, prompt, trajectory)"),
    ('description = "x"\nduration = "1m"\n[bed]\nprompt = "rain"\ndensity = 3',
     "scene.toml: bed: unknown key 'density' (a bed has: at, level_db, path, prompt, trajectory)"),
    ('description = "x"\nduration = "10 parsecs"\n[bed]\nprompt = "rain"',
     "scene.toml: duration: '10 parsecs' is not a duration"),
    ('description = "x"\nduration = "1m"\n[[event]]\nprompt = "rain"\ndensity = 2\nlength = "long"',
     "scene.toml: event 1: length: 'long' is not a duration"),
    ('description = "x"\nduration = "1m"\n[[event]]\nprompt = "rain"\ndensity = "often"',
     "scene.toml: event 1: density must be a number occurrences per minute, not 'often'"),
    ('description = "x"\nduration = "1m"\n[[event]]\nprompt = "rain"\ndensity = -2',
     "scene.toml: event 1: density must lie between 0 and 600 occurrences per minute, not -2"),
    ('description = "x"\nduration = "1m"\n[[event]]\nprompt = "rain"',
     "scene.toml: event 1: needs density = occurrences per minute"),
    ('description = "x"\nduration = "1m"\n[bed]\nprompt = "  "', "scene.toml: bed: prompt is empty"),
    ('description = "x"\nduration = "1m"\n[bed]\nlevel_db = 3', "scene.toml: bed: needs prompt = "),
    ('description = "x"\nduration = "1m"\n[bed]\nprompt = 7', "scene.toml: bed: needs prompt = "),
    ('description = "x"\nduration = "1m"\n[[bed]]\nprompt = "a"\n[[bed]]\nprompt = "b"\nlevel_db = "loud"',
     "scene.toml: bed 2: level_db must be a number dB, not 'loud'"),
    ('description = "x"\nduration = "1m"\n[bed]\nprompt = "a"\nlevel_db = 90',
     "scene.toml: bed: level_db must lie between -120 and 40 dB, not 90"),
    ('description = "x"\nduration = "1m"\n[bed]\nprompt = "a"\nat = "nowhere"', "scene.toml: bed: "),
    ('description = "x"\nduration = "1m"\n[bed]\nprompt = "a"\nat = "left"\npath = "around"',
     "scene.toml: bed: give one of at or path or trajectory, not 2"),
    ('description = "x"\nduration = "1m"\n[[event]]\nprompt = "a"\ndensity = 1\njitter = 500',
     "scene.toml: event 1: jitter must lie between 0 and 180 degrees, not 500"),
    ('duration = "1m"\n[bed]\nprompt = "rain"', "scene.toml: needs description = "),
    ('description = "x"\n[bed]\nprompt = "rain"', "scene.toml: needs duration = "),
    ('description = "x"\nduration = "1m"\nseed = -1\n[bed]\nprompt = "rain"', "scene.toml: seed must be a whole number"),
    ('description = "x"\nduration = "1m"\nroom = "attic"\n[bed]\nprompt = "rain"', "scene.toml: unknown room 'attic'"),
    ('description = "x"\nduration = "1m"', "scene.toml: nothing to generate: add a [bed] table or [[event]] tables"),
    ('description = "x"\nduration = "1m"\nevent = 3', "scene.toml: event must be a table ([event]) or tables ([[event]])"),
    ('description = "x"\nduration = "1m\n', "scene.toml: not valid TOML"),
]


@pytest.mark.parametrize("text, message", BAD)
def test_bad_scene_files(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(InputError) as caught:
        read_generation_scene(path)
    line = str(caught.value).replace(str(tmp_path) + os.sep, "")
    assert line.startswith(message), line
    assert "\n" not in line


def test_missing_scene_file(tmp_path):
    with pytest.raises(InputError, match="nowhere.toml"):
        read_generation_scene(str(tmp_path / "nowhere.toml"))


# --------------------------------------------------------------------------------------------
# Scheduling


def test_occurrences_are_seeded_and_inside_the_scene():
    a = occurrence_times(6, 600, np.random.default_rng([5, 1, 0]))
    b = occurrence_times(6, 600, np.random.default_rng([5, 1, 0]))
    c = occurrence_times(6, 600, np.random.default_rng([6, 1, 0]))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert (np.diff(a) > 0).all() and a.min() >= 0 and a.max() < 600
    assert len(occurrence_times(0, 600, np.random.default_rng(0))) == 0


@pytest.mark.parametrize("density, seconds", [(6, 600), (0.5, 3600), (120, 30)])
def test_occurrence_density(density, seconds):
    """A Poisson process: the count has mean and variance density * minutes (within 4 standard
    errors over 400 seeded scenes), and the gaps have mean 60/density."""
    expected = density * seconds / 60
    runs = [occurrence_times(density, seconds, np.random.default_rng([seed, 1, 0])) for seed in range(400)]
    counts = np.array([len(r) for r in runs])
    assert abs(counts.mean() - expected) < 4 * np.sqrt(expected / len(runs))
    assert 0.75 < counts.var() / expected < 1.3
    gaps = np.concatenate([np.diff(r) for r in runs])
    assert abs(gaps.mean() - 60 / density) < 0.05 * 60 / density


# --------------------------------------------------------------------------------------------
# Mismatch: the issue's examples, and held-out pairs, written after the rule and its reference
# list were fixed (a few of their elements happen to be worded like a listed sound: "a camel",
# "a foghorn"; the accuracy is measured without those).

ISSUE_PAIRS = [
    ("a rainforest at dawn", "a camel grunting", False), ("a rainforest at dawn", "a desert fox", False),
    ("a rainforest at dawn", "tropical birds", True), ("a rainforest at dawn", "rain on leaves", True),
    ("a rainforest at dawn", "a waterfall", True), ("a rainforest at dawn", "insects buzzing", True),
    ("a quiet mountain lake", "a car horn", False), ("a quiet mountain lake", "a police siren", False),
    ("a busy city street", "footsteps", True),
]

HELD_OUT = {  # scene: (elements that fit, elements that do not)
    "a medieval village market": (["a blacksmith hammering on an anvil", "merchants shouting their prices",
                                   "a horse-drawn cart"], ["a helicopter overhead", "a smartphone notification"]),
    "an african savanna at noon": (["a herd of elephants", "a lion's growl"], ["a snowmobile", "a foghorn"]),
    "a tropical island beach": (["palm fronds rustling in the breeze", "gentle surf"],
                                ["a reindeer", "a subway announcement"]),
    "a busy airport terminal": (["a flight being announced", "a suitcase on wheels"], ["a cowbell", "frogs in a pond"]),
    "a quiet library": (["someone turning a page", "a soft cough"], ["a rock concert crowd", "a tractor engine"]),
    "a swamp at night": (["a chorus of frogs", "buzzing mosquitoes"], ["a tram passing", "typing on a laptop"]),
    "an underground car park": (["a car door slamming", "tyres squealing on concrete"], ["a humpback whale", "a parrot"]),
    "a ski resort in the mountains": (["skiers carving through snow", "a chairlift"], ["a herd of camels", "tropical rain"]),
    "a suburban garden in summer": (["a sprinkler", "a lawn mower in the distance"], ["an icebreaker ship", "walruses"]),
    "a fishing harbour at dawn": (["fishing boats chugging out", "gulls fighting over fish"],
                                  ["a lion", "an office printer"]),
    "a dense jungle": (["a troop of monkeys screeching", "macaws"], ["a sleigh", "a ship's foghorn"]),
    "a coal mine": (["pickaxes striking rock", "a mine cart on rails"], ["seagulls crying", "songbirds at dawn"]),
    "a hospital emergency room": (["a defibrillator charging", "an ambulance arriving"],
                                  ["sheep in a field", "waves on a beach"]),
    "a rainy night in the city": (["wet tyres hissing on the road", "rain gurgling in a drain"],
                                  ["a camel caravan", "a penguin colony"]),
    "a lighthouse on a rocky coast": (["waves smashing against rocks", "a foghorn in the mist",
                                       "gulls wheeling overhead"], ["a cash register", "a herd of goats"]),
    "a spring morning in an english woodland": (["a blackbird singing", "a woodpecker drumming"],
                                                ["a tuk-tuk", "an arctic blizzard"]),
    "a night train crossing the countryside": (["wheels clattering over rail joints", "a conductor checking tickets"],
                                               ["dolphins", "a church choir"]),
    "a bakery early in the morning": (["an oven door opening", "dough being kneaded"], ["a tiger", "a jet fighter"]),
    "a mountain stream in the alps": (["water rushing over pebbles", "cowbells in the distance"],
                                      ["a traffic jam", "a nightclub dj"]),
    "a gym": (["weights clanking", "a treadmill running"], ["a walrus", "frogs in a marsh"]),
    "an arctic research station in winter": (["a howling polar wind", "sled dogs barking"],
                                             ["a parrot", "a tropical thunderstorm"]),
    "a sleepy fishing village": (["a small boat engine", "nets being hauled"], ["a roaring stadium crowd", "a jackhammer"]),
    "a car repair garage": (["an impact wrench", "a car engine idling"], ["whales singing", "a choir"]),
    "a bamboo forest in japan": (["bamboo creaking in the wind", "a temple bell far away"], ["a subway train", "a camel"]),
    "a classroom during a lesson": (["chalk on a blackboard", "pupils whispering"], ["a lion roaring", "a foghorn"]),
    "a volcano erupting": (["rumbling lava", "rocks falling"], ["a kettle whistling", "birdsong in a garden"]),
    "a wedding reception": (["champagne glasses clinking", "guests laughing"], ["a chainsaw", "a pack of wolves"]),
    "a space station": (["air recyclers humming", "beeping control panels"], ["cows mooing", "ocean surf"]),
    "a prairie in summer": (["grasshoppers chirping", "wind across tall grass"], ["a subway announcement", "seals"]),
    "a thunderstorm over the prairie": (["rolling thunder in the distance", "rain hammering the grass"],
                                        ["a dentist's drill", "a penguin"]),
    "a busy port with container ships": (["a crane lowering a container", "a ship's horn blasting"],
                                         ["a woodpecker", "a cow in a field"]),
    "a roman amphitheatre during games": (["a roaring crowd", "swords clashing"], ["a police car", "a microwave"]),
    "an old clock shop": (["dozens of clocks ticking", "a cuckoo clock chiming"], ["a jungle waterfall", "a motorway"]),
    "a laundromat": (["washing machines spinning", "a dryer tumbling"], ["a howling wolf pack", "surf on a reef"]),
    "a canyon in arizona": (["wind echoing off the rock walls", "a hawk's cry"], ["a tram bell", "a fishing trawler"]),
    "a pine forest after rain": (["water dripping from needles", "a squirrel chattering"],
                                 ["a cash machine beeping", "a stadium announcer"]),
    "a kindergarten at playtime": (["toddlers giggling", "a toy drum"], ["a chainsaw cutting trees", "a bull elephant"]),
    "a jazz club late at night": (["a double bass", "a saxophone solo"], ["a rooster", "a snowstorm"]),
    "a rice paddy in the monsoon": (["rain on flooded fields", "frogs calling"], ["a ski lift", "a dishwasher"]),
    "an ice hockey rink": (["skates scraping the ice", "a puck hitting the boards"], ["a camel", "a tropical parrot"]),
    "a vineyard in autumn": (["grapes being picked", "a tractor between the vines"],
                             ["a submarine sonar", "a subway train"]),
    "a mosque at prayer time": (["the call to prayer", "worshippers murmuring"], ["a disco beat", "a seal colony"]),
    "a petrol station at night": (["a fuel pump running", "a car pulling in"], ["a whale", "birds in a rainforest"]),
    "a greenhouse": (["a watering can", "a fan humming"], ["a foghorn", "an avalanche"]),
}
HELD_OUT_PAIRS = [(scene, element, fits) for scene, (good, bad) in HELD_OUT.items()
                  for fits, elements in ((True, good), (False, bad)) for element in elements]


@pytest.fixture(scope="module")
def judge():
    from soundtok_cli.generate.mismatch import FitJudge

    return FitJudge()


def test_mismatch_issue_examples(judge):
    for scene, element, fits in ISSUE_PAIRS:
        fit = judge.judge(scene, [element])[0]
        assert fit.fits == fits, fit.describe()
    camel = judge.judge("a rainforest at dawn", ["a camel grunting"])[0]
    assert camel.element_place == "a desert" and camel.scene_place == "a tropical rainforest"


def test_mismatch_accuracy_on_held_out_pairs(judge):
    """Measured when written, on the 162 pairs whose element is not a listed phrase: 139 agree
    with the labels (86 %); 72 of 73 misfits caught, 67 of 89 fits kept."""
    from soundtok_cli.generate.mismatch import ENVIRONMENTS

    listed = {text.lower() for place, sounds in ENVIRONMENTS.items() for text in (place, *sounds)}
    pairs = [(scene, element, fits) for scene, element, fits in HELD_OUT_PAIRS if element.lower() not in listed]
    assert len(pairs) >= 150 and len({scene for scene, _, _ in pairs}) >= 40
    right = {True: 0, False: 0}
    for scene, element, fits in pairs:
        right[fits] += judge.judge(scene, [element])[0].fits == fits
    fitting = sum(fits for _, _, fits in pairs)
    accuracy = (right[True] + right[False]) / len(pairs)
    print(f"mismatch agreement {accuracy:.3f} on {len(pairs)} pairs: fits kept {right[True]}/{fitting}, "
          f"misfits caught {right[False]}/{len(pairs) - fitting}")
    assert accuracy >= 0.83
    assert right[False] / (len(pairs) - fitting) >= 0.9


# --------------------------------------------------------------------------------------------
# Scenes made into spatial stores (a small untrained model: the shapes and the plumbing are real,
# the sound is noise)


class Recorder:
    def __init__(self):
        self.notes, self.errors, self.failures = [], [], 0

    def note(self, message):
        self.notes.append(message)

    def detail(self, message):
        pass

    def error(self, error):
        self.failures += 1
        self.errors.append(str(error))


@pytest.fixture(scope="module")
def small_generator():
    import torch

    from soundtok_cli.generate.model import LMConfig, TokenLM
    from soundtok_cli.generate.sampler import TokenGenerator
    from soundtok_cli.generate.silence import silence_codes
    from soundtok_cli.models.registry import load_codec

    torch.manual_seed(0)
    codec = load_codec(device="cpu")
    identity = {"name": "soundtok-generate", "version": "1", "weights_sha256": "untrained", "codec": codec.describe(4)}
    return TokenGenerator(TokenLM(LMConfig(dim=32, layers=1)), identity, silence_codes(codec))


SMALL = """
description = "a rainforest at dawn"
duration = "12s"
seed = 4

[bed]
prompt = "rain on leaves"
level_db = -6
path = "around"

[[event]]
prompt = "tropical birds"
density = 60
length = "1s"
at = "left"
jitter = 20

[[event]]
prompt = "a camel grunting"
density = 60
"""


def made(scene, generator, seed=4, allow_mismatch=False, seconds=None):
    from soundtok_cli.generate.run import Settings

    reporter = Recorder()
    batches = list(render_scene(scene, generator, seconds=seconds, settings=Settings(seed), reporter=reporter,
                                allow_mismatch=allow_mismatch, device="cpu"))
    return batches, reporter


def test_scene_stream(tmp_path, small_generator, monkeypatch):
    from soundtok_cli.generate import scene as scene_module
    from soundtok_cli.generate.scene import silence_frame
    from soundtok_cli.io.parts import is_continued, join_parts

    monkeypatch.setattr(scene_module, "WINDOW_SECONDS", 5.0)  # events: a batch per 5 s of scene
    scene = read_generation_scene(write(tmp_path, SMALL))
    batches, reporter = made(scene, small_generator)
    assert reporter.failures == 1 and "event 2: 'a camel grunting' does not fit 'a rainforest at dawn'" in reporter.errors[0]
    assert "it belongs in a desert" in reporter.errors[0] and "left out (--allow-mismatch keeps it)" in reporter.errors[0]
    assert all(b.kind == "spatial" for b in batches)
    # the bed: one item in 5 s parts, all but the last marked as continued
    bed = [b for b in batches if str(b.items["source"][0]).startswith("scene/bed")]
    assert len(bed) == 3 and all(is_continued(b) for b in bed[:-1]) and not is_continued(bed[-1])
    whole = list(join_parts(batches))
    bed_item = [b for b in whole if len(b) == 1 and str(b.items["source"][0]).startswith("scene/bed")][0]
    assert bed_item.items["length"][0] == 12 * 75 and bed_item.items["gain_db"][0] == -6
    azimuths = bed_item.arrays["positions"][:, 0]
    assert azimuths.min() < -170 and azimuths.max() > 170  # "around" over the whole bed
    # the events: one batch per window of scene, every occurrence its own item inside the scene
    events = [b for b in batches if str(b.items["source"][0]).startswith("scene/event")]
    silence = silence_frame("cpu")[:4]
    starts = np.concatenate([b.items["scene_start"] for b in events])
    assert 5 <= len(starts) <= 25 and (np.diff(starts) > 0).all() and starts.max() < 12
    assert [int(b.items["scene_start"][0] // 5) for b in events] == sorted({int(t // 5) for t in starts})
    for b in events:
        for i in range(len(b)):
            codes, item = b.item_codes(i), b.item(i)
            assert (codes[:LEAD_IN_FRAMES] == silence).all() and (codes[-FADE_FRAMES:] == silence).all()
            assert len(codes) <= LEAD_IN_FRAMES + 75 + FADE_FRAMES
            assert item["scene_start"] + item["duration"] <= 12 + 1e-9
            assert abs(b.item_array(i, "positions")[:, 0] - 90).max() <= 20 + 1e-3
    again, _ = made(scene, small_generator)
    assert all(np.array_equal(a.codes, b.codes) and np.array_equal(a.arrays["positions"], b.arrays["positions"])
               for a, b in zip(batches, again))


def test_allow_mismatch_keeps_and_notes(tmp_path, small_generator):
    scene = read_generation_scene(write(tmp_path, SMALL))
    batches, reporter = made(scene, small_generator, allow_mismatch=True, seconds=6)
    assert reporter.failures == 0 and "kept (--allow-mismatch)" in reporter.notes[0]
    sources = {str(s) for b in batches for s in b.items["source"]}
    assert any(s.startswith("scene/event2-a-camel-grunting-") for s in sources)


def test_nothing_fits(tmp_path, small_generator):
    scene = read_generation_scene(write(tmp_path, 'description = "a quiet mountain lake"\nduration = "5s"\n'
                                                  '[bed]\nprompt = "a police siren"'))
    with pytest.raises(InputError, match="nothing left to generate: no element fits"):
        made(scene, small_generator)


def test_no_event_happens(tmp_path, small_generator):
    scene = read_generation_scene(write(tmp_path, 'description = "a busy city street"\nduration = "2s"\nseed = 1\n'
                                                  '[[event]]\nprompt = "a car horn"\ndensity = 0.01'))
    with pytest.raises(InputError, match="no event happens in the scene's 2 s"):
        made(scene, small_generator)


def test_scene_store_renders(tmp_path, small_generator):
    """A scene written to a store plays through soundtok decode --render (the real codec)."""
    from soundtok_cli.io.sink import open_sink

    scene = read_generation_scene(write(tmp_path, SMALL.replace('"12s"', '"4s"')))
    batches, _ = made(scene, small_generator)
    with open_sink(str(tmp_path / "scene.zarr.zip")) as sink:
        for batch in batches:
            sink.write(batch)
    out = tmp_path / "scene.wav"
    done = subprocess.run([sys.executable, "-m", "soundtok_cli.app", "decode", "-q", "--render", "stereo",
                           str(tmp_path / "scene.zarr.zip"), "-o", str(out)], env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    audio, rate = sf.read(out)
    assert rate == 48000 and audio.shape[1] == 2 and 4 * rate <= len(audio) < 5 * rate and np.abs(audio).max() > 0


# --------------------------------------------------------------------------------------------
# The real model, through the command


def _weights() -> str:
    from soundtok_cli.models.registry import find

    return find("soundtok-generate").path()


@pytest.mark.skipif(not os.path.isfile(_weights()), reason="the soundtok-generate weights are not trained yet")
def test_generate_scene_command_renders(tmp_path):
    scene = write(tmp_path, SMALL.replace('"12s"', '"3s"'), "forest.toml")
    store = tmp_path / "forest.zarr.zip"
    done = subprocess.run([sys.executable, "-m", "soundtok_cli.app", "generate", "--scene", scene, "-o", str(store)],
                          env=ENV, capture_output=True, text=True)
    assert done.returncode in (0, 1), done.stderr
    assert "'a camel grunting' does not fit 'a rainforest at dawn'" in done.stderr and "Traceback" not in done.stderr
    out = tmp_path / "forest.wav"
    done = subprocess.run([sys.executable, "-m", "soundtok_cli.app", "decode", "-q", "--render", "stereo", str(store),
                           "-o", str(out)], env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    audio, rate = sf.read(out)
    assert audio.shape[1] == 2 and 3 * rate <= len(audio) and np.abs(audio).max() > 0


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isfile(_weights()), reason="the soundtok-generate weights are not trained yet")
def test_examples_makefile_renders_scenes(tmp_path):
    """make -j2 scenes: every scene file made and rendered binaurally, and nothing redone after."""
    import shutil

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    shutil.copy(os.path.join(root, "examples", "Makefile"), tmp_path / "Makefile")
    (tmp_path / "scenes").mkdir()
    for name in ("rainforest", "city-night"):
        text = open(os.path.join(root, "examples", "scenes", f"{name}.toml")).read()
        (tmp_path / "scenes" / f"{name}.toml").write_text(text.replace('duration = "2m"', 'duration = "4s"'))
    soundtok = f"{sys.executable} -m soundtok_cli.app"
    make = ["make", "-j2", "-C", str(tmp_path), f"SOUNDTOK={soundtok}", "scenes"]
    done = subprocess.run(make, env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    for name in ("rainforest", "city-night"):
        info = sf.info(tmp_path / "rendered" / f"{name}-binaural.wav")
        assert info.channels == 2 and info.duration >= 4
    assert subprocess.run(["make", "-q", "-C", str(tmp_path), f"SOUNDTOK={soundtok}", "scenes"], env=ENV).returncode == 0
