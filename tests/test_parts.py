"""Items written in parts: a long item that spans the batches of a stream ("continues": true),
joined for readers and file stores, passed through by streams, and decoded as it arrives."""

from __future__ import annotations

import io
import os
import select
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from soundtok_cli.codec.files import decode_channels, decode_source, plan_decode
from soundtok_cli.codec.sources import group_sources
from soundtok_cli.codec.streaming import BLOCK_FRAMES
from soundtok_cli.errors import InputError, UsageError
from soundtok_cli.io.parts import PartJoiner, check_parts, is_continued, join_parts, mark_continued
from soundtok_cli.io.sink import StreamSink, open_sink
from soundtok_cli.io.store import CONTINUES, Batch, check_compatible
from soundtok_cli.io.stream import Source, read_batches

from factories import codec_attrs, stream_bytes, token_batch

CODEC = codec_attrs(levels=4, codebook_size=2048)
CLI = [sys.executable, "-m", "soundtok_cli.app"]
ENV = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")


def whole_items(n: int, seed: int, codec: dict = CODEC) -> Batch:
    return token_batch(n, seed, codec, max_len=120, min_len=1, source=lambda i: f"w{seed}/{i}.wav",
                       channel=lambda i: 0, sample_rate=lambda i: 48000, content_hash=lambda i: f"h{seed}-{i}")


def item(codes: np.ndarray, codec: dict = CODEC, *, source: str = "gen.wav", channel: int = 0,
         duration: float | None = None, content_hash: str = "", sample_rate: int = 48000) -> Batch:
    """One item as a batch; the duration of the whole source by default."""
    return Batch.tokens(codec, "test", source=[source], channel=[channel], sample_rate=[sample_rate],
                        duration=[duration if duration is not None else len(codes) / codec["frame_rate"]],
                        content_hash=[content_hash], codes=[codes])


def in_parts(codes: np.ndarray, cuts: list[int], codec: dict = CODEC, before: Batch | None = None,
             after: Batch | None = None, **fields) -> list[Batch]:
    """The batches a producer writes for one long item cut at ``cuts`` (frame indices), with whole
    items before it (in its first batch) and after it (in its last batch). Every part carries the
    whole item's duration; only the last part knows the content hash."""
    fields.setdefault("duration", len(codes) / codec["frame_rate"])
    bounds = [0, *cuts, len(codes)]
    batches = []
    for k, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
        last = k == len(bounds) - 2
        part = item(codes[lo:hi], codec, content_hash="hash" if last else "", **fields)
        if k == 0 and before is not None:
            part = Batch.concat([before, part])
        if last and after is not None:
            part = Batch.concat([part, after])
        batches.append(part if last else mark_continued(part))
    return batches


def random_codes(frames: int, seed: int = 0, codec: dict = CODEC) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, codec["codebook_size"], (frames, codec["levels"])).astype(np.uint16)


def assert_same_items(got: Batch, want: Batch) -> None:
    assert not is_continued(got)
    for name in want.items:
        assert np.array_equal(got.items[name], want.items[name]), name
    assert np.array_equal(got.codes, want.codes)


def read_stream(data: bytes, **kwargs) -> list[Batch]:
    return list(read_batches(Source("-", io.BytesIO(data)), **kwargs))


def refusal(data: bytes, **kwargs) -> str:
    with pytest.raises(InputError) as caught:
        read_stream(data, **kwargs)
    message = str(caught.value)
    assert "\n" not in message and message.startswith("-: ")
    return message


# -- joining and splitting ------------------------------------------------------------------------


@pytest.mark.parametrize("cuts", [[1], [100, 101, 102], list(range(50, 1000, 50)), [999]])
def test_parts_join_into_the_whole_item(cuts):
    codes = random_codes(1000)
    before, after = whole_items(3, 1), whole_items(2, 2)
    parts = in_parts(codes, cuts, before=before, after=after)
    assert [is_continued(b) for b in parts] == [True] * len(cuts) + [False]
    want = Batch.concat([before, item(codes, content_hash="hash"), after])
    joined = list(join_parts(parts))
    assert sum(len(b) for b in joined) == 6
    assert_same_items(Batch.concat(joined), want)
    # through a stream: joined by default, as written with parts=True
    data = stream_bytes(*parts)
    assert_same_items(Batch.concat(read_stream(data)), want)
    raw = read_stream(data, parts=True)
    assert [is_continued(b) for b in raw] == [is_continued(b) for b in parts]
    assert [len(b) for b in raw] == [len(b) for b in parts]


def test_consecutive_items_in_parts_and_a_part_per_batch():
    a, b = random_codes(300, 1), random_codes(200, 2)
    first = in_parts(a, [100, 200], source="a.wav")
    second = in_parts(b, [50], source="b.wav")
    # a's last part and b's first part share a batch, which continues
    merged = mark_continued(Batch.concat([first[-1], second[0]]))
    batches = first[:-1] + [merged] + second[1:]
    joined = Batch.concat(join_parts(batches))
    assert list(joined.items["source"]) == ["a.wav", "b.wav"]
    assert list(joined.items["length"]) == [300, 200]
    assert np.array_equal(joined.codes, np.concatenate([a, b]))


def test_joined_item_keeps_the_whole_duration_and_the_last_hash():
    parts = in_parts(random_codes(90), [30, 60], duration=3600.0)
    assert [float(b.items["duration"][0]) for b in parts] == [3600.0] * 3
    (joined,) = join_parts(parts)
    assert joined.item(0)["duration"] == 3600.0 and joined.item(0)["content_hash"] == "hash"
    assert CONTINUES not in joined.attrs


def test_splitting_a_continued_batch_keeps_the_mark_on_its_last_piece():
    batch = mark_continued(Batch.concat([whole_items(6, 3), item(random_codes(150))]))
    pieces = list(batch.split(max_frames=150))
    assert len(pieces) > 2
    assert [is_continued(p) for p in pieces] == [False] * (len(pieces) - 1) + [True]
    assert is_continued(batch)  # the batch itself is untouched


def test_stream_sink_passes_parts_through_and_splits_them_correctly():
    codes = random_codes(900)
    parts = in_parts(codes, [300, 600], before=whole_items(8, 4), after=whole_items(8, 5))
    out = io.BytesIO()
    sink = StreamSink(out, max_frames=200)
    for batch in parts:
        sink.write(batch)
    sink.close()
    assert sink.items == 8 + 1 + 8  # the parts of one item count once
    raw = read_stream(out.getvalue(), parts=True)
    assert len(raw) > len(parts)
    assert sum(is_continued(b) for b in raw) == 2
    assert_same_items(Batch.concat(read_stream(out.getvalue())), Batch.concat(join_parts(parts)))


def test_a_big_continued_archive_read_in_slices_continues_on_its_last_slice():
    parts = in_parts(random_codes(400), [200], before=whole_items(10, 6))
    raw = read_stream(stream_bytes(*parts), parts=True, max_frames=100)
    assert len(raw) > 3
    assert [is_continued(b) for b in raw] == [False] * (len(raw) - 2) + [True, False]


def test_continues_is_no_difference_between_batches():
    parts = in_parts(random_codes(50), [20])
    check_compatible(parts[0].attrs, parts[1].attrs)


def test_joiner_holds_only_the_open_item():
    joiner = PartJoiner()
    before = whole_items(4, 7)
    parts = in_parts(random_codes(300), [100, 200], before=before)
    out = joiner.push(parts[0])
    assert len(out) == 1 and len(out[0]) == 4  # the whole items go out at once
    assert joiner.push(parts[1]) == []
    (joined,) = joiner.push(parts[2])
    assert int(joined.items["length"][0]) == 300
    joiner.finish()


# -- refusals -------------------------------------------------------------------------------------


def test_a_part_of_another_source_or_channel_is_refused():
    codes = random_codes(100)
    head = in_parts(codes, [50])[0]
    for other, what in ((item(codes, source="other.wav"), "'other.wav' channel 0"),
                        (item(codes, channel=1), "'gen.wav' channel 1")):
        data = stream_bytes(head, other)
        for parts in (False, True):
            message = refusal(data, parts=parts)
            assert "parts do not match: 'gen.wav' channel 0 continues" in message
            assert what in message


def test_parts_that_disagree_on_the_duration_are_refused():
    codes = random_codes(100)
    data = stream_bytes(in_parts(codes, [50])[0], item(codes[50:], duration=99.0))
    assert "has duration" in refusal(data)


def test_a_stream_cut_off_inside_an_item_is_refused():
    parts = in_parts(random_codes(100), [30, 60])
    for parts_mode in (False, True):
        message = refusal(stream_bytes(*parts[:2]), parts=parts_mode)
        assert message == "-: the stream was cut off: 'gen.wav' channel 0 continues past its last batch"
    # what came before the cut still reaches a reader of parts
    got = []
    with pytest.raises(InputError):
        for batch in read_batches(Source("-", io.BytesIO(stream_bytes(*parts[:2]))), parts=True):
            got.append(batch)
    assert len(got) == 2


def test_an_empty_batch_cannot_continue():
    empty = Batch.empty(dict(item(random_codes(1)).attrs, **{CONTINUES: True}))
    assert "holds no items" in refusal(stream_bytes(empty))
    with pytest.raises(ValueError):
        mark_continued(Batch.empty(item(random_codes(1)).attrs))


def test_a_continues_attribute_that_is_not_a_boolean_is_refused():
    batch = item(random_codes(10))
    batch.attrs[CONTINUES] = "yes"
    assert "continues must be true or false" in refusal(stream_bytes(batch))


def test_check_parts_passes_batches_unchanged():
    parts = in_parts(random_codes(100), [40])
    assert [b is p for b, p in zip(check_parts(parts), parts)] == [True, True]


# -- file stores hold whole items -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["x.zarr", "x.zarr.zip"])
def test_file_stores_join_parts(tmp_path, name):
    import zarr

    codes = random_codes(700)
    before = whole_items(2, 8)
    parts = in_parts(codes, [100, 350], before=before)
    path = str(tmp_path / name)
    with open_sink(path) as sink:
        for batch in parts:
            sink.write(batch)
    assert sink.items == 3
    store = zarr.storage.ZipStore(path, mode="r") if name.endswith(".zip") else path
    group = zarr.open_group(store, mode="r")
    assert CONTINUES not in group.attrs["soundtok"]
    assert list(group["items/length"][:]) == list(before.items["length"]) + [700]
    assert list(group["items/source"][:])[-1] == "gen.wav"
    assert np.array_equal(group["codes"][:], np.concatenate([before.codes, codes]))


def test_a_file_store_of_a_cut_off_item_is_not_published(tmp_path):
    parts = in_parts(random_codes(100), [50])
    path = tmp_path / "cut.zarr"
    with pytest.raises(InputError, match="cut off"):
        with open_sink(str(path)) as sink:
            sink.write(parts[0])
    assert os.listdir(tmp_path) == []


def run_cli(args, input: bytes | None = None):
    from soundtok_cli.app import app

    return CliRunner().invoke(app, args, input=input)


def error_lines(result) -> list[str]:
    assert "Traceback" not in result.stderr
    return [line for line in result.stderr.splitlines() if line.strip()]


def test_cat_saves_a_parts_stream_as_whole_items(tmp_path):
    codes = random_codes(500)
    stream = tmp_path / "gen.stream"
    stream.write_bytes(stream_bytes(*in_parts(codes, [100, 200, 300], after=whole_items(1, 9))))
    result = run_cli(["cat", str(stream), "-o", str(tmp_path / "out.zarr")])
    assert result.exit_code == 0, result.output
    (batch,) = read_batches(str(tmp_path / "out.zarr"), parts=True)
    assert not is_continued(batch)
    assert list(batch.items["length"])[0] == 500 and len(batch) == 2


# -- decoding as the parts arrive -----------------------------------------------------------------

SECONDS = 20  # 1500 frames: five decoder blocks


@pytest.fixture(scope="module")
def codec():
    from soundtok_cli.models.registry import load_codec

    return load_codec(device="cpu")


@pytest.fixture(scope="module")
def real(codec) -> dict:
    """The attributes of the built-in codec at 4 levels (what decode accepts)."""
    return codec.describe(4)


@pytest.fixture(scope="module")
def sound(codec) -> list[np.ndarray]:
    """Codes (1500, 4) of the two channels of 20 s of sound: a gliding tone, noise bursts."""
    rate = 48000
    t = np.arange(rate * SECONDS) / rate
    rng = np.random.default_rng(0)
    tone = 0.3 * np.sin(2 * np.pi * (200 + 15 * t) * t)
    bursts = 0.2 * rng.standard_normal(len(t)) * (np.sin(2 * np.pi * 0.7 * t) > 0.5)
    channels = []
    for x in (tone, bursts):
        encoder = codec.encoder(rate, 4)
        channels.append(np.concatenate([encoder.push(x.astype(np.float32)), encoder.finish()]))
    assert channels[0].shape == (75 * SECONDS, 4)
    return channels


def next_group(groups):
    group = next(groups)
    assert group.streaming is not None
    return group


CUTS = {
    "one cut": [7],
    "irregular": [1, 2, 40, 41, 300, 326, 327, 650, 1200, 1499],
    "every 50": list(range(50, 1500, 50)),
}
PLANS = {  # decode options: start, end, levels, rate
    "whole": (0.0, None, 4, 48000),
    "range": (3.3, 11.7, 2, 44100),
    "from 17 s": (17.0, None, 4, 22050),
    "to 4 s": (0.0, 4.0, 1, 48000),
}


@pytest.mark.parametrize("cuts", CUTS.values(), ids=CUTS.keys())
@pytest.mark.parametrize("options", PLANS.values(), ids=PLANS.keys())
def test_parts_decode_to_the_audio_of_the_joined_item(codec, real, sound, cuts, options):
    start, end, levels, rate = options
    plan = plan_decode(SECONDS, codec.config.frame_rate, rate, start, end)
    want = np.concatenate(list(decode_channels(codec, [sound[0][:, :levels]], plan)))
    groups = group_sources(check_parts(in_parts(sound[0], cuts, real, duration=SECONDS)))
    got = np.concatenate(list(decode_source(codec, next_group(groups), plan, levels)))
    assert next(groups, None) is None
    assert got.shape == (plan.frames_out, 1)
    assert np.array_equal(got, want)


def test_audio_comes_as_soon_as_the_codes_it_needs_have_arrived(codec, real, sound):
    part = 50
    arrived = [0]

    def arriving(batches):
        for batch in batches:
            arrived[0] += batch.frames
            yield batch

    plan = plan_decode(SECONDS, codec.config.frame_rate, 48000)
    groups = group_sources(arriving(in_parts(sound[0], list(range(part, 1500, part)), real)))
    delivered = 0
    context = codec.config.decoder_context() + 1
    for block in decode_source(codec, next_group(groups), plan, 4):
        delivered += len(block) // codec.config.hop
        if arrived[0] < 1500:
            assert arrived[0] - delivered <= context + part, (arrived[0], delivered)
    assert delivered == 1500


def test_the_frame_decoder_holds_a_window_of_codes(codec, sound):
    decoder = codec.frame_decoder()
    context = codec.config.decoder_context() + 1
    for lo in range(0, 1500, 20):
        decoder.push(sound[0][lo : lo + 20])
        list(decoder.blocks())
        assert len(decoder.codes) <= BLOCK_FRAMES + 2 * context + 20
    decoder.finish()
    assert len(list(decoder.blocks())) == 1 and decoder.exhausted()


def test_a_source_whose_last_channel_comes_in_parts(codec, real, sound):
    left, right = sound
    first = mark_continued(Batch.concat([item(left, real, channel=0), item(right[:400], real, channel=1, duration=SECONDS)]))
    rest = in_parts(right[400:], [300, 600], real, channel=1, duration=SECONDS)
    groups = group_sources(check_parts([first, *rest]))
    group = next_group(groups)
    assert len(group.channels) == 2 and group.streaming == 1
    plan = plan_decode(SECONDS, codec.config.frame_rate, 44100, 1.0, 15.0)
    got = np.concatenate(list(decode_source(codec, group, plan, 3)))
    want = np.concatenate(list(decode_channels(codec, [left[:, :3], right[:, :3]], plan)))
    assert np.array_equal(got, want)


def test_a_channel_after_one_in_parts_is_refused(codec, real, sound):
    left, right = sound
    parts = in_parts(left, [700], real, after=item(right, real, channel=1))
    groups = group_sources(check_parts(parts))
    group = next_group(groups)
    list(group.rest)
    with pytest.raises(InputError, match="channel 1 follows channel 0, which came in parts"):
        next(groups)


# -- the decode command ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def streams(tmp_path_factory, real, sound):
    """A stream holding a 20 s item in parts between two whole items, and the same joined."""
    d = tmp_path_factory.mktemp("streams")
    before = item(sound[1][:150], real, source="before.wav")
    after = item(sound[1][:75], real, source="after.wav")
    parts = in_parts(sound[0], list(range(100, 1500, 100)), real, before=before, after=after)
    (d / "parts.stream").write_bytes(stream_bytes(*parts))
    (d / "gen.stream").write_bytes(stream_bytes(*in_parts(sound[0], list(range(100, 1500, 100)), real)))
    with open_sink(str(d / "joined.zarr")) as sink:
        for batch in parts:
            sink.write(batch)
    return d


@pytest.mark.parametrize("options", [[], ["--start", "3.3", "--end", "11.7", "--levels", "2", "-r", "44100"]])
def test_decode_of_a_parts_stream_equals_decode_of_the_joined_store(streams, options):
    for name in ("parts.stream", "joined.zarr"):
        result = run_cli(["decode", str(streams / name), "-o", str(streams / name) + "-{stem}.wav", *options])
        assert result.exit_code == 0, result.output
    for stem in ("before", "gen", "after"):
        got, got_rate = sf.read(str(streams / f"parts.stream-{stem}.wav"), dtype="int32")
        want, want_rate = sf.read(str(streams / f"joined.zarr-{stem}.wav"), dtype="int32")
        assert got_rate == want_rate and np.array_equal(got, want)


def test_a_stream_of_several_sources_into_one_file_is_refused(streams):
    out = streams / "one.wav"
    result = run_cli(["decode", str(streams / "parts.stream"), "-o", str(out)])
    assert isinstance(result.exception, UsageError)  # soundtok's main prints it, exits 2
    assert "template" in str(result.exception) and not out.exists()
    # one source in parts fits one file
    result = run_cli(["decode", str(streams / "gen.stream"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert sf.info(str(out)).frames == SECONDS * 48000


def test_decode_refuses_a_channel_after_one_in_parts(tmp_path, real, sound):
    stream = tmp_path / "bad.stream"
    stream.write_bytes(stream_bytes(*in_parts(sound[0], [700], real, after=item(sound[1], real, channel=1))))
    result = run_cli(["decode", str(stream), "-o", str(tmp_path / "out.wav")])
    assert result.exit_code == 2
    assert error_lines(result) [0] == ("soundtok decode: gen.wav: channel 1 follows channel 0, which came in "
                                       "parts; only a source's last channel can come in parts")
    assert os.listdir(tmp_path) == ["bad.stream"]


@pytest.mark.parametrize("command", [["info"], ["cat", "-o", "OUT"], ["decode", "-o", "OUT"]])
def test_commands_refuse_a_cut_off_stream_in_one_line(tmp_path, real, command):
    stream = tmp_path / "cut.stream"
    stream.write_bytes(stream_bytes(*in_parts(random_codes(400, codec=real), [350], real)[:1]))
    out = str(tmp_path / ("out.wav" if command[0] == "decode" else "out.zarr"))
    result = run_cli([command[0], str(stream), *[out if a == "OUT" else a for a in command[1:]]])
    assert result.exit_code == 2
    assert error_lines(result)[0] == (f"soundtok {command[0]}: {stream}: the stream was cut off: "
                                      "'gen.wav' channel 0 continues past its last batch")
    assert not os.path.exists(out)


def read_available(f, want: int, seconds: float) -> bytes:
    """Read from a pipe until ``want`` bytes came or ``seconds`` passed."""
    data = b""
    deadline = time.monotonic() + seconds
    while len(data) < want and time.monotonic() < deadline:
        ready, _, _ = select.select([f], [], [], 0.1)
        if ready:
            chunk = os.read(f.fileno(), 1 << 20)
            if not chunk:
                break
            data += chunk
    return data


def test_decode_writes_audio_while_the_parts_arrive(codec, real, sound):
    parts = in_parts(sound[0], list(range(75, 1500, 75)), real)  # one part a second
    data = [stream_bytes(batch) for batch in parts]
    proc = subprocess.Popen(CLI + ["decode", "-", "-o", "-"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    try:
        proc.stdin.write(b"".join(data[:6]))  # 6 s: the first block and its context
        proc.stdin.flush()
        block_bytes = BLOCK_FRAMES * codec.config.hop * 3
        head = read_available(proc.stdout, 44 + block_bytes, 60)
        assert len(head) >= 44 + block_bytes, "no audio came before the stream ended"
        assert proc.poll() is None
        tail, errors = proc.communicate(b"".join(data[6:]), timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, errors.decode()
    audio, rate = sf.read(io.BytesIO(head + tail), dtype="float32")
    plan = plan_decode(SECONDS, codec.config.frame_rate, 48000)
    want = np.concatenate(list(decode_channels(codec, [sound[0]], plan)))[:, 0]
    assert rate == 48000 and audio.shape == want.shape
    assert np.abs(audio - np.clip(want, -1, 1)).max() <= 2 / 2**23
