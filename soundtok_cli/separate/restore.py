"""Restore one audio file: analyse it (hum frequency, hiss floor), then stream it through the
chosen filters into the output (and the residual, input minus output), in bounded memory.

Analysis needs the whole signal before any output can be written (a long-term spectrum, a noise
floor over the quietest moments), so the file is read once per analysing step and once more to
write: hum is found on the input, the hiss floor on the input with hum and clicks removed (or in
a noise print: that stretch of it, so read only that far, or a file of the noise; noiseprint.py).
Reverberation needs no analysis: its network reads each chunk with a second of context.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

from soundtok_cli.io.audio import AudioWriter, open_audio
from soundtok_cli.separate import Settings
from soundtok_cli.separate.clicks import ClickRepair
from soundtok_cli.separate.hiss import HissFilter, NoiseFloor, level_dbfs
from soundtok_cli.separate.hum import HumFilter, LongTermSpectrum, detect_hum
from soundtok_cli.separate.noiseprint import measure_file, range_error, range_meter
from soundtok_cli.separate.stream import Chunked

BLOCK = 1 << 16
CHUNK = 1 << 17


@dataclass
class Restored:
    source: str
    output: str | list[str]
    residual: str | None
    sample_rate: int
    channels: int
    frames: int
    removed: list[str]
    hum: dict | None = None  # {frequency, harmonics, levels_db} when found
    hum_found: bool | None = None  # None: not asked
    clicks: int | None = None  # gaps repaired
    hiss_floor_dbfs: float | None = None
    reverb_removed_db: float | None = None  # the share of the energy taken out as reverberation, dB
    noise_print: str | None = None  # where the hiss floor was learnt, when not from the whole file
    reduction_db: float | None = None  # what is removed turned down by this much, not taken out
    silent: bool = False
    separated: dict | None = None  # {mode, descriptions, nearest_concepts, voice} when the model ran
    notes: list[str] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate

    def as_json(self) -> dict:
        return {**asdict(self), "duration": round(self.duration, 6)}


def restore_file(source: str, remove: list[str], output: str | list[str], residual: str | None = None,
                 fmt: str | None = None, residual_fmt: str | None = None, settings: Settings = Settings(),
                 chunk: int = CHUNK, separation: Callable[[int], object] | None = None) -> Restored:
    """Remove `remove` (names from REMOVABLE, in order) from `source`, then apply the stage that
    `separation(sample_rate)` makes, if given (`neural.MaskStage`: keep, remove or split by
    description); write `output` (a path or "-"; one path per stem when the stage makes stems)
    and optionally `residual` (the input minus everything written). Raises InputError for an
    unreadable input."""
    with open_audio(source) as reader:
        sr, channels = reader.sample_rate, reader.channels
        report = Restored(source, output, residual, sr, channels, reader.frames, list(remove),
                          reduction_db=settings.reduction_db)
        stages: list = []
        peak = 0.0
        if "hum" in remove:
            spectrum = LongTermSpectrum(sr, channels)
            for block in reader.blocks(BLOCK):
                spectrum.update(block)
            peak = spectrum.peak
            info = detect_hum(spectrum.result(), sr) if peak > 0 else None
            report.hum_found = info is not None
            if info is not None:
                report.hum = {"frequency": info.frequency, "harmonics": info.harmonics, "levels_db": info.levels_db}
                stages.append(HumFilter(info, sr))
        if "clicks" in remove:
            stages.append(ClickRepair(sr))
        if "hiss" in remove:
            noise, level = _hiss_noise(reader, stages, chunk, settings, source)
            if noise is not None:
                report.hiss_floor_dbfs = level
                report.noise_print = settings.noise_from.describe() if settings.noise_from else None
                stages.append(HissFilter(noise, sr, settings.strength))
        room = None
        if "reverb" in remove:
            from soundtok_cli.separate.dereverb import dereverb_stage  # (torch) only when asked for

            room = dereverb_stage(sr)
            stages.append(room)
        if separation is not None:
            stages.append(separation(sr))
        if "-" in (output, residual) and reader.format == "MP3" and not ({"hum", "hiss"} & set(remove)):
            for _ in reader.blocks(BLOCK):  # a WAV header on stdout needs the exact length first
                pass
        report.frames = reader.frames  # exact once read through
        peak = _write(reader, stages, channels, chunk, report, fmt, residual_fmt, settings.blend())
        report.silent = peak == 0.0
        if report.silent:
            report.notes.append("silent; passed through unchanged")
        clicker = next((s for s in stages if isinstance(s, ClickRepair)), None)
        if "clicks" in remove:
            report.clicks = clicker.repaired if clicker else 0
        if room is not None and not report.silent:
            report.reverb_removed_db = room.removed_db()
        return report


def _hiss_noise(reader, stages, chunk: int, settings: Settings, source: str) -> tuple[np.ndarray | None, float | None]:
    """The noise power the hiss filter works against, and its level in dBFS: from the whole input
    (after the stages before hiss) or from the noise print asked for."""
    sr, channels, where = reader.sample_rate, reader.channels, settings.noise_from
    if where is not None and where.path is not None:
        noise = measure_file(where.path, sr, channels)
    else:
        meter = NoiseFloor(sr, channels) if where is None else range_meter(where, sr, channels)
        for _, out in _run(reader, stages, channels, chunk):
            meter.update(out)
            if where is not None and meter.complete:
                break  # a print at the start of a long file: no need to read on
        noise = meter.result()
        if where is not None and (noise is None or where.end * sr > reader.frames):
            raise range_error(where, source, reader.frames / sr, sr)
    if noise is None:
        return None, None
    return noise, round(level_dbfs(noise, sr), 1)


def _run(reader, stages, channels: int, chunk: int):
    """(input block, output block) pairs of equal length, through every stage in turn."""
    streams = [Chunked(stage, channels, getattr(stage, "chunk", chunk)) for stage in stages]
    pending: deque[np.ndarray] = deque()  # input not yet matched by output

    def matched(out: np.ndarray):
        parts, need = [], len(out)
        while need:
            head = pending[0]
            take = min(need, len(head))
            parts.append(head[:take])
            if take == len(head):
                pending.popleft()
            else:
                pending[0] = head[take:]
            need -= take
        return np.concatenate(parts), out

    for block in reader.blocks(BLOCK):
        pending.append(block.astype(np.float64))
        out = block
        for s in streams:
            out = s.push(out)
        if len(out):
            yield matched(out)
    for i, s in enumerate(streams):  # flush each stage through the ones after it
        out = s.finish()
        for later in streams[i + 1 :]:
            out = later.push(out)
        if len(out):
            yield matched(out)


def _write(reader, stages, channels: int, chunk: int, report: Restored, fmt, residual_fmt, blend: float = 0.0) -> float:
    """Stream the input through the stages into the outputs and the residual (the input minus every
    output); with `blend`, that share of what the stages remove is left in the output."""
    outputs = report.output if isinstance(report.output, list) else [report.output]
    writers = []
    for path, kind in [(p, fmt) for p in outputs] + [(report.residual, residual_fmt)]:
        if path is None:
            continue
        if path != "-" and os.path.dirname(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
        writers.append(AudioWriter(path, report.sample_rate, channels, kind, frames=report.frames))
    peak = 0.0
    try:
        for x, y in _run(reader, stages, channels, chunk):
            peak = max(peak, float(np.abs(x).max()))
            parts = y.reshape(len(y), len(outputs), channels) if stages else x[:, None, :]
            if blend:
                parts = parts + blend * (x - parts.sum(axis=1))[:, None, :]
            for writer, part in zip(writers, parts.transpose(1, 0, 2)):
                writer.write(part.astype(np.float32))
            if len(writers) > len(outputs):
                writers[-1].write((x - parts.sum(axis=1)).astype(np.float32))
        for writer in writers:
            writer.close()
    except BaseException:
        for writer in writers:
            writer.abort()
        raise
    return peak
