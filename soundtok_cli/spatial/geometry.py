"""Spherical (az, el, dist) <-> Cartesian (x front, y left, z up), and what a position may be."""

from __future__ import annotations

import math

import numpy as np

from soundtok_cli.errors import InputError

SPEED_OF_SOUND = 343.0  # m/s, air at 20 degrees C
MIN_DISTANCE = 0.05  # m: closer than this is inside the head; gains are computed at this distance
MAX_DISTANCE = 10_000.0  # m


def to_cartesian(az, el, dist=1.0) -> np.ndarray:
    """(..., 3) x, y, z from azimuth and elevation in degrees and distance in metres."""
    az, el, dist = np.broadcast_arrays(np.radians(az), np.radians(el), np.asarray(dist, dtype=np.float64))
    cos_el = np.cos(el)
    return np.stack([dist * cos_el * np.cos(az), dist * cos_el * np.sin(az), dist * np.sin(el)], axis=-1)


def to_spherical(xyz) -> np.ndarray:
    """(..., 3) az (degrees, -180..180], el (degrees), dist (metres) from x, y, z."""
    xyz = np.asarray(xyz, dtype=np.float64)
    x, y, z = xyz[..., 0], xyz[..., 1], xyz[..., 2]
    horizontal = np.hypot(x, y)
    return np.stack([np.degrees(np.arctan2(y, x)), np.degrees(np.arctan2(z, horizontal)), np.hypot(horizontal, z)], axis=-1)


def unit(xyz) -> np.ndarray:
    xyz = np.asarray(xyz, dtype=np.float64)
    norm = np.linalg.norm(xyz, axis=-1, keepdims=True)
    return xyz / np.where(norm > 0, norm, 1.0)


def check_position(az: float, el: float, dist: float, subject: str | None = None) -> tuple[float, float, float]:
    """A valid position, or an InputError saying what is impossible about it."""
    for name, value in (("azimuth", az), ("elevation", el), ("distance", dist)):
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InputError(f"{name} must be a finite number, not {value!r}", subject)
    if not -90.0 <= el <= 90.0:
        raise InputError(f"elevation {el:g} is outside -90..90 degrees", subject)
    if dist <= 0:
        raise InputError(f"distance must be positive, not {dist:g} m", subject)
    if dist > MAX_DISTANCE:
        raise InputError(f"distance {dist:g} m is beyond {MAX_DISTANCE:g} m", subject)
    return float(az), float(el), float(dist)


def check_positions(positions: np.ndarray, subject: str | None = None) -> np.ndarray:
    """The (n, 3) az/el/dist array checked as a whole (NaN, elevation range, distance > 0)."""
    positions = np.asarray(positions, dtype=np.float64)
    if positions.ndim != 2 or positions.shape[1] != 3:
        raise InputError(f"positions must be (n, 3) az/el/dist, not {positions.shape}", subject)
    bad = ~np.isfinite(positions).all(axis=1)
    bad |= (np.abs(positions[:, 1]) > 90.0) | (positions[:, 2] <= 0) | (positions[:, 2] > MAX_DISTANCE)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        check_position(*(float(v) for v in positions[i]), subject=f"{subject}: position {i}" if subject else f"position {i}")
    return positions
