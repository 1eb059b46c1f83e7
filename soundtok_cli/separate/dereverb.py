"""A room's reverberation, taken out: `--remove reverb`.

A small recurrent network (the sub-band mask's architecture, separate/subband.py: one GRU shared
by every band, run along time for each band on its own) reads each band's level over time and
gives a magnitude mask that keeps the direct sound and the early reflections (the first 50 ms)
and takes out the late reverberation. Why per band: reverberation is the same thing in every
band and for every source (a level that decays exponentially after each onset, filling the gaps
between notes and syllables); a network that sees one band and its neighbours learns that decay,
not which voice or instrument made it, so it carries over to sounds it never heard.

Bands: every bin of the separator's STFT below 4 kHz (1024-sample frames at 48 kHz, 47 Hz apart;
the same frame duration at any rate, as separate/neural.py does), where a voice's harmonics
stand apart and reverberation fills the gaps between them, then sixth-octave bands to 24 kHz,
whose masks are interpolated back to the bins: 102 sequences instead of 513, so it runs at tens
of times real time on one CPU thread. The mask is computed from the mean of the channels'
magnitudes and applied to every channel, so a stereo image stays where it was.

Long files run through `stream.Chunked` like the separation stage: 12 s chunks with 1 s of
context each side (a decay longer than the context still reads as a decay).
"""

from __future__ import annotations

import dataclasses
import functools
import json

import numpy as np
import torch

from soundtok_cli.separate.model import N_FFT, SAMPLE_RATE
from soundtok_cli.separate.neural import SpectralStage, Spectrum, masks_inside
from soundtok_cli.separate.subband import SubbandMask

BIN_HZ = SAMPLE_RATE / N_FFT
SINGLE_BINS_BELOW_HZ = 4000.0
BANDS_PER_OCTAVE = 6
NEIGHBOURS = 2  # bands read on each side
EARLY_SECONDS = 0.05  # what counts as the direct sound: the first 50 ms of the response
FLOOR_DB = -120.0


@dataclasses.dataclass(frozen=True)
class DereverbConfig:
    hidden: int = 32
    bidirectional: bool = True
    neighbours: int = NEIGHBOURS

    @property
    def features(self) -> int:
        """The band's level and its neighbours', the frame's mean level, the band's position."""
        return 2 * self.neighbours + 1 + 2

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "DereverbConfig":
        return cls(**json.loads(text))


def network(config: DereverbConfig) -> SubbandMask:
    return SubbandMask(config)


def band_edges(bins: int = N_FFT // 2 + 1) -> np.ndarray:
    """(bands + 1,) bin edges: one bin per band below SINGLE_BINS_BELOW_HZ, sixth-octave bands above."""
    single = int(SINGLE_BINS_BELOW_HZ / BIN_HZ) + 1
    edges = list(range(single + 1))
    while edges[-1] < bins:
        edges.append(min(bins, max(edges[-1] + 1, int(round(edges[-1] * 2 ** (1 / BANDS_PER_OCTAVE))))))
    return np.array(edges)


@dataclasses.dataclass(frozen=True)
class Bands:
    """Power pooled into bands, and band masks spread back to bins (linear between band centres)."""
    edges: np.ndarray

    @classmethod
    def for_bins(cls, bins: int = N_FFT // 2 + 1) -> "Bands":
        return cls(band_edges(bins))

    @property
    def count(self) -> int:
        return len(self.edges) - 1

    def pool(self, power: np.ndarray) -> np.ndarray:
        """(frames, bins) power -> (frames, bands) mean power per bin of each band."""
        sums = np.add.reduceat(power, self.edges[:-1], axis=1)
        return sums / np.diff(self.edges)[None, :]

    def spread(self, mask: np.ndarray, bins: int) -> np.ndarray:
        """(frames, bands) -> (frames, bins)."""
        centres = (self.edges[:-1] + self.edges[1:] - 1) / 2
        index = np.arange(bins)
        weights = np.clip(np.interp(index, centres, np.arange(self.count)), 0, self.count - 1)
        lo = np.floor(weights).astype(int)
        hi = np.minimum(lo + 1, self.count - 1)
        frac = (weights - lo)[None, :]
        return mask[:, lo] * (1 - frac) + mask[:, hi] * frac


def features(band_power: np.ndarray, config: DereverbConfig) -> np.ndarray:
    """(frames, bands) mean power per bin (48 kHz-scaled magnitudes squared) -> (bands, frames,
    features) float32: levels in dB / 20 (absolute: the network learnt levels over 40 dB)."""
    level = (10 * np.log10(band_power + 10 ** (FLOOR_DB / 10)) / 20).astype(np.float32)
    frames, bands = level.shape
    k = config.neighbours
    padded = np.pad(level, ((0, 0), (k, k)), mode="edge")
    out = np.empty((bands, frames, config.features), np.float32)
    for j in range(2 * k + 1):
        out[..., j] = padded[:, j : j + bands].T
    out[..., -2] = level.mean(1)[None, :]
    out[..., -1] = np.linspace(-1, 1, bands)[:, None]
    return out


def reverb_mask(net: SubbandMask, magnitude: np.ndarray) -> np.ndarray:
    """(frames, bins) magnitudes at the separator's bin spacing (48 kHz-scaled) -> (frames, bins)
    mask keeping the direct sound. Bins missing below 24 kHz (a lower rate) are silence to the
    network, as a band-limited recording's would be; bins above take the highest band's mask."""
    frames, have = magnitude.shape
    full = N_FFT // 2 + 1
    power = np.zeros((frames, full))
    power[:, : min(have, full)] = np.asarray(magnitude[:, :full], np.float64) ** 2
    bands = default_bands()
    feats = features(bands.pool(power), net.config)
    with torch.inference_mode():
        mask = bands.spread(net(torch.from_numpy(feats)).numpy().T, full)
    if have > full:
        mask = np.concatenate([mask, np.repeat(mask[:, -1:], have - full, axis=1)], axis=1)
    return mask[:, :have].astype(np.float32)


default_bands = functools.cache(Bands.for_bins)  # the 102 bands of 48 kHz frames, as trained


@functools.cache
def shipped_network() -> SubbandMask:
    from soundtok_cli.models.registry import load_dereverber
    from soundtok_cli.threads import configure_torch_threads

    configure_torch_threads(workers=2)  # one thread on 2 cores, as the separation stage runs
    return load_dereverber()


def dereverb_stage(sample_rate: int) -> "DereverbStage":
    """The stage `--remove reverb` runs, with the shipped network."""
    return DereverbStage(shipped_network(), sample_rate)


class DereverbStage(SpectralStage):
    """A `stream.Processor`: the input with its late reverberation taken out. It counts the
    energy in and out, so a report can say how much of the sound was the room (`removed_db`)."""

    def __init__(self, net: SubbandMask, sample_rate: int):
        super().__init__(sample_rate)
        self.net = net
        self.energy_in = self.energy_out = 0.0

    def process(self, x: np.ndarray, offset: int, end: int | None) -> np.ndarray:
        n = len(x) - self.before - self.after
        spectrum = Spectrum(x, self.n_fft, self.hop)
        magnitude = spectrum.magnitude
        mask = masks_inside(magnitude, offset, end, self.hop, lambda heard: reverb_mask(self.net, heard),
                            np.ones(magnitude.shape, np.float32))
        y = spectrum.masked(mask)[self.before : self.before + n]
        self.energy_in += float(np.sum(x[self.before : self.before + n] ** 2))
        self.energy_out += float(np.sum(y ** 2))
        return y

    def removed_db(self) -> float:
        """The output's energy against the input's so far, in dB (0: nothing taken out)."""
        if self.energy_in <= 0:
            return 0.0
        return round(10 * np.log10(max(self.energy_out, 1e-30) / self.energy_in), 1)
