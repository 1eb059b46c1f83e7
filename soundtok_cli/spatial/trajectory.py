"""Positions over time: keypoints (t, az, el, dist), followed along great circles between them.

Between two keypoints the direction moves along the shorter great circle at a steady angular speed
(slerp) and the distance changes linearly; before the first keypoint and after the last the source
stays put. Two opposite directions have no shorter great circle: the path then turns through the
direction 90 degrees to the left of the first (counter-clockwise seen from above), or through the
front for a start straight above or below.

CSV trajectories: one row per keypoint, ``t,az,el,dist`` (seconds, degrees, degrees, metres), an
optional header line with those names, ``#`` comments and blank lines ignored; times must increase.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass

import numpy as np

from soundtok_cli.errors import InputError
from soundtok_cli.spatial.geometry import check_positions, to_cartesian, to_spherical

MAX_KEYPOINTS = 1_000_000
MAX_CSV_BYTES = 64 << 20


@dataclass(frozen=True)
class Trajectory:
    """Keypoint times (seconds, increasing) and unit directions and distances at them."""

    times: np.ndarray  # (K,)
    directions: np.ndarray  # (K, 3) unit vectors
    distances: np.ndarray  # (K,)

    @classmethod
    def from_positions(cls, times, positions, subject: str | None = None) -> "Trajectory":
        times = np.asarray(times, dtype=np.float64).reshape(-1)
        positions = check_positions(np.asarray(positions, dtype=np.float64).reshape(-1, 3), subject)
        if len(times) != len(positions) or not len(times):
            raise InputError("a trajectory needs at least one keypoint, with a time for each", subject)
        if not np.isfinite(times).all():
            raise InputError("keypoint times must be finite", subject)
        if len(times) > 1 and not (np.diff(times) > 0).all():
            i = int(np.flatnonzero(np.diff(times) <= 0)[0]) + 1
            raise InputError(f"keypoint times must increase (keypoint {i} at {times[i]:g} s)", subject)
        directions = to_cartesian(positions[:, 0], positions[:, 1], 1.0)
        times, directions, distances = _split_opposites(times, directions, positions[:, 2])
        return cls(times, directions, distances)

    @classmethod
    def fixed(cls, az: float, el: float, dist: float) -> "Trajectory":
        return cls.from_positions([0.0], [[az, el, dist]])

    @property
    def static(self) -> bool:
        return len(self.times) == 1

    @property
    def duration(self) -> float:
        """Time of the last keypoint (0 for a fixed position)."""
        return float(self.times[-1])

    def cartesian(self, t) -> np.ndarray:
        """(n, 3) positions in metres at times t (seconds)."""
        t = np.asarray(t, dtype=np.float64).reshape(-1)
        if self.static:
            return np.broadcast_to(self.directions[0] * self.distances[0], (len(t), 3)).copy()
        k = np.clip(np.searchsorted(self.times, t, side="right") - 1, 0, len(self.times) - 2)
        t0, t1 = self.times[k], self.times[k + 1]
        f = np.clip((t - t0) / (t1 - t0), 0.0, 1.0)[:, None]
        a, b = self.directions[k], self.directions[k + 1]
        cos = np.clip(np.einsum("ij,ij->i", a, b), -1.0, 1.0)[:, None]
        omega = np.arccos(cos)
        sin = np.sin(omega)
        small = sin < 1e-6
        safe = np.where(small, 1.0, sin)
        wa = np.where(small, 1.0 - f, np.sin((1.0 - f) * omega) / safe)
        wb = np.where(small, f, np.sin(f * omega) / safe)
        direction = wa * a + wb * b
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        dist = self.distances[k] + (self.distances[k + 1] - self.distances[k]) * f[:, 0]
        return direction * dist[:, None]

    def sample(self, t) -> np.ndarray:
        """(n, 3) az/el/dist at times t (seconds)."""
        return to_spherical(self.cartesian(t))

    def positions_over(self, seconds: float, rate: float) -> np.ndarray:
        """az/el/dist at ``rate`` points a second over ``seconds`` (a store's per-frame track)."""
        n = max(1, int(math.ceil(seconds * rate - 1e-9)))
        return self.sample(np.arange(n) / rate)

    def scaled(self, seconds: float) -> "Trajectory":
        """The same path stretched to end at ``seconds`` (a path phrase with no duration)."""
        if self.static or self.duration <= 0 or seconds <= 0:
            return self
        return Trajectory(self.times * (seconds / self.duration), self.directions, self.distances)


def _split_opposites(times, directions, distances):
    """Insert a keypoint half way between consecutive opposite directions (see module doc)."""
    if len(times) < 2:
        return times, directions, distances
    dots = np.einsum("ij,ij->i", directions[:-1], directions[1:])
    if not (dots < -0.9999).any():
        return times, directions, distances
    out_t, out_d, out_r = [times[0]], [directions[0]], [distances[0]]
    for i in range(1, len(times)):
        a, b = directions[i - 1], directions[i]
        if float(a @ b) < -0.9999:
            side = np.cross([0.0, 0.0, 1.0], a)
            if np.linalg.norm(side) < 1e-6:
                side = np.array([1.0, 0.0, 0.0])
            out_t.append(0.5 * (times[i - 1] + times[i]))
            out_d.append(side / np.linalg.norm(side))
            out_r.append(0.5 * (distances[i - 1] + distances[i]))
        out_t.append(times[i])
        out_d.append(b)
        out_r.append(distances[i])
    return np.array(out_t), np.array(out_d), np.array(out_r)


def read_csv_trajectory(path: str) -> Trajectory:
    """A trajectory from a CSV file of ``t,az,el,dist`` rows (see the module doc)."""
    from soundtok_cli.io.inputs import read_small_input

    data = read_small_input(path, MAX_CSV_BYTES, "trajectory")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError("not a CSV trajectory (not UTF-8 text)", path) from None
    return parse_csv_trajectory(text, path)


def parse_csv_trajectory(text: str, subject: str = "trajectory") -> Trajectory:
    rows: list[list[float]] = []
    header_seen = False
    for line_no, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [c.strip() for c in row]
        if not cells or not any(cells) or cells[0].startswith("#"):
            continue
        if not rows and not header_seen and [c.lower() for c in cells] == ["t", "az", "el", "dist"]:
            header_seen = True
            continue
        if len(cells) != 4:
            raise InputError(f"line {line_no}: expected 4 values t,az,el,dist, found {len(cells)}", subject)
        try:
            values = [float(c) for c in cells]
        except ValueError:
            raise InputError(f"line {line_no}: not a number in {','.join(cells)!r} (expected t,az,el,dist)", subject) from None
        if not all(math.isfinite(v) for v in values):
            raise InputError(f"line {line_no}: NaN or infinite value", subject)
        if values[0] < 0:
            raise InputError(f"line {line_no}: time {values[0]:g} s is negative", subject)
        if rows and values[0] <= rows[-1][0]:
            raise InputError(f"line {line_no}: time {values[0]:g} s does not come after {rows[-1][0]:g} s", subject)
        if not -90 <= values[2] <= 90:
            raise InputError(f"line {line_no}: elevation {values[2]:g} is outside -90..90 degrees", subject)
        if values[3] <= 0:
            raise InputError(f"line {line_no}: distance must be positive, not {values[3]:g} m", subject)
        rows.append(values)
        if len(rows) > MAX_KEYPOINTS:
            raise InputError(f"more than {MAX_KEYPOINTS} keypoints", subject)
    if not rows:
        raise InputError("no keypoints (expected rows of t,az,el,dist)", subject)
    array = np.array(rows)
    return Trajectory.from_positions(array[:, 0], array[:, 1:], subject)
