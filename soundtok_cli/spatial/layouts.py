"""Loudspeaker layouts and vector-base amplitude panning (VBAP, Pulkki 1997).

Channel orders (as WAV files' channel masks and ffmpeg's layouts of the same names):

  stereo  L R                          L/R at +-30 degrees
  5.1     L R C LFE Ls Rs              ITU-R BS.775: C 0, L/R +-30, Ls/Rs +-110
  7.1.4   L R C LFE Lb Rb Ls Rs Ltf Rtf Ltb Rtb
                                       ITU-R BS.2051 System J positions: L/R +-30, C 0,
                                       Ls/Rs +-90 (side), Lb/Rb +-135 (back), Ltf/Rtf +-45 el 30,
                                       Ltb/Rtb +-135 el 30 (WAV/ffmpeg order: backs before sides)

Positive azimuth is to the left. LFE channels carry nothing (no bass management). Directions the
layout cannot reach (above a 5.1 layout or the top of 7.1.4, below any of these, behind a stereo
pair) fall on imaginary loudspeakers whose power is shared equally among the real ones nearest
them (the top layer for the zenith, the lowest layer for the nadir, the nearer loudspeaker beside
a gap in the ring: a stereo pair puts sources on its left wholly in L, those behind in both), so
nothing is lost.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from soundtok_cli.spatial.geometry import to_cartesian


@dataclass
class Layout:
    name: str
    labels: tuple[str, ...]
    positions: tuple[tuple[float, float] | None, ...]  # (az, el) per channel; None = LFE
    _triangles: np.ndarray | None = field(default=None, repr=False)
    _inverse: np.ndarray | None = field(default=None, repr=False)
    _vertices: np.ndarray | None = field(default=None, repr=False)
    _real: int = 0
    _shares: list = field(default_factory=list, repr=False)

    @property
    def channels(self) -> int:
        return len(self.labels)

    @property
    def speakers(self) -> list[int]:
        return [i for i, p in enumerate(self.positions) if p is not None]

    def _prepare(self) -> None:
        if self._inverse is not None:
            return
        from scipy.spatial import ConvexHull

        real = np.array([to_cartesian(*self.positions[i], 1.0) for i in self.speakers])
        heights = real[:, 2]
        lowest = np.flatnonzero(heights <= heights.min() + 1e-6)
        highest = np.flatnonzero(heights >= heights.max() - 1e-6)
        # imaginary loudspeakers, each with the real ones that share its signal
        imaginary, shares = [np.array([0.0, 0.0, -1.0])], [lowest]
        if heights.max() < 0.95:
            imaginary.append(np.array([0.0, 0.0, 1.0]))
            shares.append(highest)
        ring = [i for i in lowest]
        azimuths = np.degrees(np.arctan2(real[ring, 1], real[ring, 0])) % 360.0
        order = np.argsort(azimuths)
        sorted_az = azimuths[order]
        gaps = np.diff(np.concatenate([sorted_az, [sorted_az[0] + 360.0]]))
        for i, gap in enumerate(gaps):  # fill wide gaps in the lowest ring (behind a stereo pair)
            if gap <= 170.0:
                continue
            before, after = ring[order[i]], ring[order[(i + 1) % len(order)]]
            pieces = int(math.ceil(gap / 90.0))
            for j in range(1, pieces):  # points at most 90 degrees apart, each shared by the
                offset = gap * j / pieces  # nearer end of the gap (both ends half way)
                middle = math.radians(sorted_az[i] + offset)
                imaginary.append(np.array([math.cos(middle), math.sin(middle), 0.0]))
                if abs(offset - gap / 2) < 1.0:
                    shares.append(np.array([before, after]))
                else:
                    shares.append(np.array([before if offset < gap / 2 else after]))
        self._shares = shares
        vertices = np.concatenate([real, np.array(imaginary)])
        hull = ConvexHull(vertices)
        triangles = hull.simplices
        matrices = vertices[triangles].transpose(0, 2, 1)
        keep = np.abs(np.linalg.det(matrices)) > 1e-9
        self._triangles, self._inverse = triangles[keep], np.linalg.inv(matrices[keep])
        self._vertices, self._real = vertices, len(real)

    def vbap(self, directions: np.ndarray) -> np.ndarray:
        """(Q, channels) power-normalised gains for (Q, 3) unit directions."""
        self._prepare()
        d = np.asarray(directions, dtype=np.float64).reshape(-1, 3)
        n_vertices = len(self._vertices)
        gains = np.zeros((len(d), n_vertices))
        for lo in range(0, len(d), 1024):
            part = d[lo : lo + 1024]
            g = np.einsum("tij,qj->qti", self._inverse, part)
            best = np.argmax(g.min(axis=2), axis=1)
            chosen = np.clip(g[np.arange(len(part)), best], 0.0, None)
            rows = np.arange(len(part))[:, None]
            gains[lo + rows, self._triangles[best]] = chosen
        real = gains[:, : self._real]
        spare = gains[:, self._real :]
        # an imaginary loudspeaker's power goes equally to the real ones that share it
        power = real ** 2
        for j, share in enumerate(self._shares):
            power[:, share] += spare[:, j : j + 1] ** 2 / len(share)
        norm = np.sqrt(np.sum(power, axis=1, keepdims=True))
        real = np.sqrt(power) / np.where(norm > 0, norm, 1.0)
        out = np.zeros((len(d), self.channels))
        out[:, self.speakers] = real
        return out


LAYOUTS = {
    "stereo": Layout("stereo", ("L", "R"), ((30.0, 0.0), (-30.0, 0.0))),
    "5.1": Layout("5.1", ("L", "R", "C", "LFE", "Ls", "Rs"),
                  ((30.0, 0.0), (-30.0, 0.0), (0.0, 0.0), None, (110.0, 0.0), (-110.0, 0.0))),
    "7.1.4": Layout("7.1.4", ("L", "R", "C", "LFE", "Lb", "Rb", "Ls", "Rs", "Ltf", "Rtf", "Ltb", "Rtb"),
                    ((30.0, 0.0), (-30.0, 0.0), (0.0, 0.0), None, (135.0, 0.0), (-135.0, 0.0),
                     (90.0, 0.0), (-90.0, 0.0), (45.0, 30.0), (-45.0, 30.0), (135.0, 30.0), (-135.0, 30.0))),
}
