"""The sub-band speech mask: one small recurrent network shared by every bin below 4 kHz.

Why: the separator's full-band network knows a voice by its whole spectral envelope, so it keeps
the voices it was trained on and partly removes voices it has never heard (the separator's model
card: 1.8 dB lost from training-split to held-out voices). This network reads, for each bin
alone, only how far that bin and its neighbours rise above the tracked noise floor
(speech.noise_power in training; at run time the floor separate/speech.py's first pass finds),
the noise suppressor's gain, the bin's position and how far the whole
frame rises above its floor, along the whole chunk both ways (a bidirectional GRU; a one-way one
with a few frames of look-ahead is the cheaper configuration, 0.9 dB worse on unseen voices): it
can learn what speech does over time in a band (onsets, harmonics gliding through, syllable
rhythm) but not whose voice it is.

It is trained on the bins below 6 kHz and run on those below 4 kHz (86 of the 513, one sequence
each); above, separate/speech.py gives its share to the separator's network. Why 4 kHz at run
time: the GRU is compute-bound (its cost grows with the bins it runs: 0.18, 0.41 and 0.97 s per
14 s chunk for 64, 128 and 256 on one thread) and is most of the time `--keep speech` takes,
which measured 20.1x real time (mono) and 19.4x (stereo) with every bin below 6 kHz on the
development machine, against the 20x goal; stopping at 4 kHz cost 0.03-0.04 dB on each of the
trainer's three score sets (`train.subband score`: known, shifted and held-out voices +4.82,
+4.49, +4.57 against +4.86, +4.52, +4.61), and giving the bins above to the network instead of the
suppressor more than made up for it (separate/speech.py). It runs with int8 layers (separate/
neural.py): 0.31 -> 0.25 s per 15 s chunk idle, the score sets unchanged to 0.01 dB (at 128 bins
int8 was no faster: 0.49 and 0.52 s).
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view
from torch import nn

from soundtok_cli.separate.speech import FRAME_SECONDS, noise_power, wiener_gain

BIN_HZ = 48000 / 1024  # the separator's bin spacing, kept at every sample rate
RUN_TOP_HZ = 4000.0  # the network runs on the bins below; see the module docstring for why


@dataclasses.dataclass(frozen=True)
class SubbandConfig:
    bins: int = 128  # bins modelled, from 0 Hz (46.9 Hz apart at the separator's STFT)
    neighbours: int = 7  # bins each side read in the current frame
    lookahead: int = 0  # future frames read (the centre bin and 2 each side)
    hidden: int = 32
    bidirectional: bool = True
    harmonics: int = 0  # harmonic multiples read (2x .. (harmonics+1)x the bin's frequency)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "SubbandConfig":
        return cls(**json.loads(text))

    @property
    def features(self) -> int:
        return 2 * self.neighbours + 1 + 5 * self.lookahead + self.harmonics + 3


class SubbandMask(nn.Module):
    def __init__(self, config: SubbandConfig = SubbandConfig()):
        super().__init__()
        self.config = config
        self.inp = nn.Linear(config.features, 48)
        self.gru = nn.GRU(48, config.hidden, batch_first=True, bidirectional=config.bidirectional)
        self.out = nn.Linear(config.hidden * (2 if config.bidirectional else 1), 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(bins, frames, features) -> (bins, frames) mask in [0, 1]."""
        h = nn.functional.gelu(self.inp(features))
        return torch.sigmoid(self.out(self.gru(h)[0]))[..., 0]


def features(magnitude: np.ndarray, config: SubbandConfig, bins: np.ndarray | None = None,
             frame_seconds: float = FRAME_SECONDS, noise: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(frames, F) magnitudes at the separator's bin spacing -> ((bins, frames, features) float32,
    the suppressor's (frames, F) gain, computed on the way). The SNRs and the gain are against
    `noise`, a (frames, F) noise power, by default the minimum-statistics floor (as in training)."""
    power = np.asarray(magnitude, np.float64) ** 2
    noise = noise_power(power, frame_seconds) if noise is None else noise
    gain = wiener_gain(power, noise)
    frames, count = power.shape
    k = config.neighbours
    top = count if config.harmonics else min(count, config.bins + k)  # the bins any feature reads
    snr = np.clip(np.log((power[:, :top] + 1e-12) / (noise[:, :top] + 1e-12)) / 5, -3, 3).astype(np.float32)
    bins = np.arange(min(config.bins, count)) if bins is None else np.asarray(bins)
    padded = np.pad(snr, ((0, config.lookahead), (k, k)), mode="edge")
    out = np.empty((len(bins), frames, config.features), np.float32)
    out[..., : 2 * k + 1] = sliding_window_view(padded[:frames], 2 * k + 1, axis=1)[:, bins].transpose(1, 0, 2)
    for ahead in range(1, config.lookahead + 1):  # the centre bin and 2 each side, `ahead` frames on
        at = 2 * k + 1 + 5 * (ahead - 1)
        out[..., at : at + 5] = sliding_window_view(padded[ahead : ahead + frames], 5, axis=1)[:, bins + k - 2].transpose(1, 0, 2)
    if config.harmonics:
        at = 2 * k + 1 + 5 * config.lookahead
        out[..., at : at + config.harmonics] = harmonic_support(snr, bins, config.harmonics)
    out[..., -3] = (bins / (config.bins - 1) * 2 - 1)[:, None]
    out[..., -2] = np.log(gain[:, bins]).T
    out[..., -1] = snr[:, 2 : config.bins].mean(1)[None, :]  # how far the whole frame rises
    return out, gain


def harmonic_support(snr: np.ndarray, bins: np.ndarray, harmonics: int) -> np.ndarray:
    """(frames, F) scaled log SNR -> (bins, frames, harmonics): for each bin b and multiple
    h = 2 .. harmonics + 1, the highest log SNR in the bins where h times b's frequency can lie. Where a
    low bin holds a voice's fundamental or a low harmonic, its multiples stand above a rumble that
    buries the bin itself: evidence from the clean band above, still blind to whose voice it is."""
    count = snr.shape[1]
    out = np.empty((len(bins), len(snr), harmonics), np.float32)
    for j, h in enumerate(range(2, harmonics + 2)):
        for i, b in enumerate(bins):
            lo = min(count - 1, max(0, round((b - 0.5) * h)))
            hi = min(count - 1, max(lo, round((b + 0.5) * h)))
            out[i, :, j] = snr[:, lo : hi + 1].max(1)
    return out


def subband_masks(net: SubbandMask, magnitude: np.ndarray, frame_seconds: float = FRAME_SECONDS,
                  above: np.ndarray | None = None, noise: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(frames, F) mixture magnitudes -> the (frames, F) sub-band speech mask (the network's below
    RUN_TOP_HZ; above, `above`, by default the noise suppressor's gain) and the suppressor's gain,
    both against `noise` (features())."""
    top = min(net.config.bins, magnitude.shape[1], int(RUN_TOP_HZ / BIN_HZ) + 1)
    feats, gain = features(magnitude, net.config, np.arange(top), frame_seconds, noise)
    mask = (gain if above is None else above).copy()
    with torch.inference_mode():
        mask[:, : len(feats)] = net(torch.from_numpy(feats)).numpy().T
    return mask, gain
