"""`soundtok generate` end to end: conditions and material in, tokens or audio out."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import numpy as np

from soundtok_cli.errors import UsageError
from soundtok_cli.generate import oneshot
from soundtok_cli.generate.material import (
    PRIME_SECONDS,
    combine,
    example_vector,
    index_material,
    prompt_vector,
    read_material,
)
from soundtok_cli.generate.run import Request, Settings, generation_batches, source_name, take_batches
from soundtok_cli.io.normalize import NORMALIZE_PEAK_DBFS, write_normalized
from soundtok_cli.io.store import Batch

DEFAULT_SECONDS = 30.0
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


def build_request(generator, *, prompt, seconds, settings, continue_from, like, index_path, device, reporter) -> Request:
    vectors = []
    if prompt is not None:
        vectors.append(prompt_vector(prompt))
    if like is not None:
        vectors.append(example_vector(like, device))
    embedder = None

    def material_vector(codes: np.ndarray) -> np.ndarray:
        """The audio embedding of some codes (the embedder loads once, when first needed)."""
        nonlocal embedder
        if embedder is None:
            from soundtok_cli.models.registry import load_embedder

            embedder = load_embedder(device=device)
        return embedder.embed_item(codes, len(codes) / generator.frame_rate, 2.0, 1.0)[2]

    before = prime = None
    sample_rate = 48000
    source = source_name(prompt, None)
    prime_frames = int(PRIME_SECONDS * generator.frame_rate)
    if continue_from is not None:
        material = read_material(generator, continue_from, device)
        before, prime = material.codes, material.codes[-prime_frames:]
        sample_rate, source = material.sample_rate, source_name(prompt, material)
        vectors.append(material_vector(prime))
    if index_path is not None:
        material = index_material(generator, index_path, prompt, device, reporter)
        prime = material.codes[-prime_frames:] if prime is None else prime
        vectors.append(material_vector(material.codes))
    frames = round((DEFAULT_SECONDS if seconds is None else seconds) * generator.frame_rate)
    return Request(combine(vectors), frames, settings, source, sample_rate, before=before, prime=prime)


def write_generation(*, prompt, seconds, seed, temperature, guidance, top_k, continue_from, like, index_path,
                     scene, allow_mismatch, output, device, reporter, announce_seed=False,
                     normalize=True, takes=1, one_shot=False) -> None:
    """Generate and write; `announce_seed` says the seed (one the user did not give) once the
    inputs have been read and generation starts. With `takes` > 1, that many variations, each
    its own item (or audio file: {take} in `output`). With `one_shot` (audio only), each is made
    longer and cut to start at its event (generate/oneshot.py)."""
    from soundtok_cli.models.registry import load_generator
    from soundtok_cli.progress import format_hours, format_speed
    from soundtok_cli.threads import configure_torch_threads

    # One intra-op thread: a frame is a chain of small operations on one row, which a second
    # thread only slows down (guided, one row: 8.5x real time on one thread, 6.6x on two, measured
    # with `python -m bench.generate --parts speed --threads 1|2`, 2026-11-26).
    configure_torch_threads(workers=os.cpu_count() or 1)
    is_audio = output is not None and output.lower().endswith(AUDIO_SUFFIXES)
    generator = load_generator(device=device)
    settings = Settings(seed, temperature, top_k, guidance)
    identity = generator.identity
    reporter.detail(f"{identity['name']} {identity['version']} on {generator.device}, {generator.levels} levels, "
                    f"seed {seed}, temperature {temperature:g}, top-k {top_k}, guidance {guidance:g}")
    started = time.perf_counter()
    stats: dict = {}
    if scene is not None:
        from soundtok_cli.generate.scene import read_generation_scene, render_scene

        if is_audio:
            raise UsageError("a scene is a spatial store: write it as a stream or store and render it with "
                             "soundtok decode --render binaural", "-o")
        batches = render_scene(read_generation_scene(scene), generator, seconds=seconds, settings=settings,
                               allow_mismatch=allow_mismatch, reporter=reporter, device=device)
    else:
        made_seconds = seconds
        if one_shot:  # made longer: the event is looked for in the extra second
            seconds = oneshot.DEFAULT_SECONDS if seconds is None else seconds
            made_seconds = seconds + oneshot.SEARCH_SECONDS
        request = build_request(generator, prompt=prompt, seconds=made_seconds, settings=settings,
                                continue_from=continue_from, like=like, index_path=index_path,
                                device=device, reporter=reporter)
        stats = request.stats
        if takes > 1:
            reporter.note(f"making {takes} takes together; they are written when all are made")
            batches = take_batches(generator, request, takes)
        else:
            batches = generation_batches(generator, request)
    batches = _announcing(batches, f"seed {seed}" if announce_seed else None, reporter)
    cut = seconds if one_shot else None
    if is_audio and takes > 1:
        made = sum(write_audio(iter([batch]), output.replace("{take}", str(k + 1)), device, normalize, reporter, cut)
                   for k, batch in enumerate(batches))
    elif is_audio:
        made = write_audio(batches, output.replace("{take}", "1"), device, normalize, reporter, cut)
    else:
        made = write_tokens(batches, output)
    wall = time.perf_counter() - started
    repeats = stats.get("no_repeat_interventions")
    what = f"{takes} takes of {format_hours(made / takes)}" if takes > 1 else format_hours(made)
    reporter.note(f"generated {what} at {format_speed(made, wall)}"
                  + (f"; {repeats} repeats of a 1 s stretch avoided" if repeats else ""))


def _announcing(batches: Iterator[Batch], note: str | None, reporter) -> Iterator[Batch]:
    """The batches, with the note said just before the first one (after everything was read)."""
    for batch in batches:
        if note:
            reporter.note(note)
            note = None
        yield batch


def _frames_seconds(batch: Batch) -> float:
    return float(batch.items["length"].sum()) / float(batch.codec["frame_rate"])


def write_tokens(batches: Iterator[Batch], output: str | None) -> float:
    from soundtok_cli.io.sink import open_sink

    seconds = 0.0
    with open_sink(output) as sink:
        for batch in batches:
            sink.write(batch)
            seconds += _frames_seconds(batch)
    return seconds


def write_audio(batches: Iterator[Batch], output: str, device: str, normalize: bool, reporter,
                one_shot: float | None = None) -> float:
    """Decode the generated item to an audio file as its parts are made; with `normalize`, scaled
    to a peak of NORMALIZE_PEAK_DBFS (generated levels vary from clip to clip: see the model card).
    With `one_shot` (seconds), decoded whole and cut to that long from its event (oneshot.py)."""
    from soundtok_cli.codec.files import decode_source, plan_decode
    from soundtok_cli.codec.sources import group_sources
    from soundtok_cli.io.audio import AudioWriter, output_format
    from soundtok_cli.models.registry import codec_for_store

    fmt = output_format(output, None)
    seconds = 0.0
    for group in group_sources(batches):
        codec = codec_for_store(group.attrs, device)
        plan = plan_decode(group.duration, codec.config.frame_rate, group.sample_rate)
        if os.path.dirname(output):
            os.makedirs(os.path.dirname(output), exist_ok=True)
        blocks = decode_source(codec, group, plan, group.channels[0].shape[1])
        frames = plan.frames_out
        if one_shot is not None:  # at most oneshot.MAX_SECONDS: held in memory
            blocks = iter([oneshot.one_shot(np.concatenate(list(blocks)), group.sample_rate, one_shot)])
            frames = int(round(one_shot * group.sample_rate))
        with AudioWriter(output, group.sample_rate, len(group.channels), fmt, frames=frames) as writer:
            if normalize:
                gain_db = write_normalized(blocks, writer, len(group.channels))
                reporter.note(f"{output}: normalised by {gain_db:+.1f} dB to a peak of {NORMALIZE_PEAK_DBFS:g} dBFS")
            else:
                for block in blocks:
                    writer.write(block)
        if clipping := writer.clipping():
            reporter.warn(f"{output}: {clipping}; leave out --no-normalize, or write a tokens stream and "
                          f"decode it with --gain -{writer.reduction_to_fit_db()}")
        seconds += group.duration if one_shot is None else one_shot
    return seconds
