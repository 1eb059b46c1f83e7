"""Rooms for ``--room``: first-order early reflections (image sources) and a diffuse reverb tail.

  small    4 x 5 x 2.7 m, listener off-centre at ear height 1.2 m; walls absorb 30 %;
           RT60 0.4 s; critical distance 1 m (direct and reverberant energy equal at 1 m)
  hall     20 x 30 x 12 m, listener at 1.5 m; walls absorb 20 %; RT60 2.0 s; critical distance 3 m
  outdoor  the ground only (listener's ears 1.7 m above grass that absorbs 50 %); no tail

Each wall (or the ground) mirrors every source into an image source that follows the source's
path, so reflections arrive later, from their own directions, with their own Doppler shift, and are
rendered like the direct sound (through the HRTFs for binaural). The tail is exponentially
decaying noise (60 dB in RT60 seconds, starting after the reflections, slightly low-passed),
independent in every output channel: both ears, every loudspeaker (LFE excluded), and every
ambisonic channel with the power a diffuse field has in SN3D (1 / (2n + 1) of W's for order n).
Its input is the sum of the sources at their own level, not attenuated with distance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

NAMES = ("small", "hall", "outdoor")


@dataclass(frozen=True)
class Room:
    name: str
    size: tuple[float, float, float] | None  # x (front), y (left), z (up) in metres; None: no walls
    listener: tuple[float, float, float]  # where the head is, from the room's rear-right-floor corner
    absorption: float
    rt60: float | None
    critical_distance: float
    tail_start: float  # seconds


ROOMS = {
    "small": Room("small", (4.0, 5.0, 2.7), (1.7, 2.3, 1.2), 0.3, 0.4, 1.0, 0.02),
    "hall": Room("hall", (20.0, 30.0, 12.0), (8.0, 13.0, 1.5), 0.2, 2.0, 3.0, 0.08),
    "outdoor": Room("outdoor", None, (0.0, 0.0, 1.7), 0.5, None, 1.0, 0.0),
}


class MirroredPath:
    """A path seen in one wall: the image source of another path (listener coordinates)."""

    def __init__(self, path, axis: int, plane: float):
        self.path, self.axis, self.plane = path, axis, plane  # plane: the wall's coordinate relative to the head

    def cartesian(self, t) -> np.ndarray:
        xyz = self.path.cartesian(t).copy()
        xyz[:, self.axis] = 2.0 * self.plane - xyz[:, self.axis]
        return xyz


def image_paths(room: Room, path) -> list[tuple[float, MirroredPath]]:
    """(reflection gain, image path) for each wall of the room."""
    gain = math.sqrt(1.0 - room.absorption)
    lx, ly, lz = room.listener
    if room.size is None:
        return [(gain, MirroredPath(path, 2, -lz))]
    sx, sy, sz = room.size
    planes = [(0, -lx), (0, sx - lx), (1, -ly), (1, sy - ly), (2, -lz), (2, sz - lz)]
    return [(gain, MirroredPath(path, axis, plane)) for axis, plane in planes]


def tail_filters(room: Room, channel_power: np.ndarray, rate: int, seed: int = 1994) -> np.ndarray | None:
    """(1, C, L) reverb-tail impulse responses, channel c with total energy channel_power[c] times
    the tail energy (1 / critical_distance^2); None for a room without a tail."""
    if room.rt60 is None:
        return None
    length = int(round((room.tail_start + 1.2 * room.rt60) * rate))
    t = np.arange(length) / rate
    envelope = np.exp(-6.91 * t / room.rt60)
    fade = np.clip((t - room.tail_start) / 0.01, 0.0, 1.0)
    envelope *= np.sin(0.5 * math.pi * fade) ** 2
    noise = np.random.default_rng(seed).standard_normal((len(channel_power), length))
    from scipy.signal import lfilter

    pole = math.exp(-2 * math.pi * 8000.0 / rate)
    noise = lfilter([1 - pole], [1, -pole], noise, axis=1)
    ir = noise * envelope
    energy = np.sum(ir ** 2, axis=1, keepdims=True)
    target = np.asarray(channel_power, dtype=np.float64)[:, None] / room.critical_distance ** 2
    ir *= np.sqrt(target / np.where(energy > 0, energy, 1.0))
    return ir[None].astype(np.float32)
