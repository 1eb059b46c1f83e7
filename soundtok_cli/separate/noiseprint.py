"""Where `--remove hiss` learns the noise from: the quietest moments of the whole file (the
default, hiss.NoiseFloor), or a noise print (`--noise-from`): a stretch of each input that holds
the noise alone (START-END, room tone before a take), or a file of it. A print is what to give
when a file never pauses (continuous music or ambience over tape hiss, where the quietest
twentieth of the time still holds signal) or when the noise should be measured, not guessed.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass

import numpy as np

from soundtok_cli.errors import InputError, UsageError
from soundtok_cli.separate.hiss import NoisePrint, frame_size

OPTION = "--noise-from"
BLOCK = 1 << 16
_TIME = r"(?:\d+:)?\d+(?:\.\d*)?"
_RANGE = re.compile(rf"\s*({_TIME})\s*-\s*({_TIME})\s*")


@dataclass(frozen=True)
class NoiseFrom:
    text: str  # as given on the command line
    start: float = 0.0  # seconds into each input, for a range
    end: float = 0.0
    path: str | None = None  # a file of the noise alone

    def describe(self) -> str:
        return self.path if self.path is not None else f"{self.start:g}-{self.end:g} s of the input"


def parse_noise_from(value: str) -> NoiseFrom:
    """`--noise-from`: an audio file (checked here: readable, with sound in it) or a time range
    START-END of each input in seconds or m:ss ('0-1.5', '1:02-1:04.5')."""
    if os.path.exists(value):
        measure_file(value, 48000, 1)  # one clear line now rather than one per input later
        return NoiseFrom(value, path=value)
    match = _RANGE.fullmatch(value)
    if match is None:
        raise UsageError(f"{value!r} is neither an audio file nor a time range START-END (seconds or m:ss, "
                         "e.g. 0-1.5)", OPTION)
    start, end = (_parse_time(t) for t in match.groups())
    if end <= start:
        raise UsageError(f"{value}: the range ends before it starts", OPTION)
    return NoiseFrom(value, start, end)


@functools.lru_cache(maxsize=8)
def measure_file(path: str, sample_rate: int, channels: int) -> np.ndarray:
    """The noise power (bins, channels) of a print file, measured at the input's sample rate (the
    print resampled to it) and given to each of its channels (the print's own channels when it has
    as many, their mean otherwise). UsageError for a print that cannot serve."""
    import soxr

    from soundtok_cli.io.audio import open_audio

    try:
        with open_audio(path) as reader:
            meter = NoisePrint(sample_rate, reader.channels)
            resampler = (soxr.ResampleStream(reader.sample_rate, sample_rate, reader.channels, dtype="float64")
                         if reader.sample_rate != sample_rate else None)
            for block in reader.blocks(BLOCK):
                block = block.astype(np.float64)
                meter.update(resampler.resample_chunk(block) if resampler else block)
            if resampler:
                meter.update(resampler.resample_chunk(np.zeros((0, reader.channels)), last=True))
    except InputError as error:
        raise UsageError(f"{path}: {error.message}", OPTION) from None
    noise = meter.result()
    if noise is None:
        raise UsageError(f"{path}: no noise to learn (digital silence, or shorter than one "
                         f"{1000 * frame_size(sample_rate) / sample_rate:.0f} ms frame)", OPTION)
    if noise.shape[1] != channels:
        noise = np.repeat(noise.mean(axis=1, keepdims=True), channels, axis=1)
    return noise


def range_meter(noise_from: NoiseFrom, sample_rate: int, channels: int) -> NoisePrint:
    """The meter for a range of the input (fed the input as the hiss stage would see it)."""
    return NoisePrint(sample_rate, channels, round(noise_from.start * sample_rate), round(noise_from.end * sample_rate))


def range_error(noise_from: NoiseFrom, source: str, seconds: float, sample_rate: int) -> InputError:
    """Why a range cannot serve: it runs past the input's end, is too short, or is digital silence."""
    frame = frame_size(sample_rate) / sample_rate
    if noise_from.end > seconds:
        why = f"runs past the end of the input ({seconds:.2f} s)"
    elif noise_from.end - noise_from.start < frame:
        why = f"is shorter than one {1000 * frame:.0f} ms frame"
    else:
        why = "is digital silence"
    return InputError(f"the noise print {noise_from.text} {why}", source)


def _parse_time(text: str) -> float:
    minutes, _, seconds = text.rpartition(":")
    return 60 * int(minutes or 0) + float(seconds)
