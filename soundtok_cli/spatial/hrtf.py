"""An HRTF set ready for rendering at one sample rate: onset-aligned HRIRs plus per-ear delays,
interpolated smoothly between measured directions.

Each measured HRIR is resampled to the rendering rate when the SOFA file has another one (soxr,
scaled so the filter's gain is kept), then split into its onset delay (per ear, in samples: where
the response first reaches 10 % of its peak, less a few samples of lead-in) and the aligned
response from there on. A direction between measurements takes barycentric weights from the
triangle of measured directions around it (the convex hull of the measurement directions); the
aligned responses are mixed with those weights and the delays interpolated with the same weights,
so a moving source's ITD changes smoothly instead of the responses comb-filtering each other.
Gains are normalised so a source straight ahead has, on average over the two ears, unit energy
gain. Sets without enough directions for a hull (a horizontal ring, a handful of points) use the
three nearest measurements, weighted by inverse angle.

The default set is the MIT KEMAR "normal pinna" set (Gardner and Martin, MIT Media Lab, 1994),
shipped in soundtok_cli/spatial/data/ with its notice.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from importlib import resources

import numpy as np

from soundtok_cli.errors import InputError
from soundtok_cli.spatial.geometry import to_cartesian

DEFAULT_SOFA = "mit_kemar_normal_pinna.sofa"
BLOCK = 1024  # samples between filter updates at 32-64 kHz (scaled with the rate)
LEAD_IN = 8  # samples kept before each detected onset
ONSET_THRESHOLD = 0.1


def default_sofa_path() -> str:
    return str(resources.files("soundtok_cli.spatial") / "data" / DEFAULT_SOFA)


def block_for_rate(rate: int) -> int:
    """Filter-update block: 1024 samples at 32-64 kHz, 512 below, 2048 above (about 21 ms);
    the aligned HRIRs keep block / 2 + 1 taps (10.7 ms), the block FFT is 1.5 x block."""
    return BLOCK // 2 if rate < 32000 else BLOCK * 2 if rate > 64000 else BLOCK


@dataclass
class HrtfSet:
    path: str
    title: str
    rate: int
    block: int
    fft: int  # FFT size of the block convolution: 1.5 * block (aligned HRIRs: block / 2 + 1 taps)
    directions: np.ndarray  # (M, 3) unit vectors
    spectra: np.ndarray  # (M, 2, fft // 2 + 1) complex64: rfft of the aligned responses
    aligned: np.ndarray  # (M, 2, fft - block + 1) float32
    delays: np.ndarray  # (M, 2) float64 samples
    measured_distance: float
    _triangles: np.ndarray | None = None  # (T, 3) indices
    _inverse: np.ndarray | None = None  # (T, 3, 3)
    _incident: np.ndarray | None = None  # (M, D) triangles around each measurement, -1 padded

    # -- interpolation ---------------------------------------------------------------------

    def weights(self, directions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For (Q, 3) unit directions: (Q, 3) measurement indices and (Q, 3) weights summing to 1."""
        directions = np.asarray(directions, dtype=np.float64).reshape(-1, 3)
        if self._inverse is None:
            return self._nearest(directions)
        # the containing triangle is nearly always one around the nearest measurement: try those
        # first, then search all triangles for the few directions left over
        nearest = np.argmax(directions @ self.directions.T, axis=1)
        candidates = self._incident[nearest]  # (Q, D), -1 padded
        bary = np.einsum("qdij,qj->qdi", self._inverse[np.maximum(candidates, 0)], directions)
        score = np.where(candidates >= 0, bary.min(axis=2), -np.inf)
        best = np.argmax(score, axis=1)
        rows = np.arange(len(directions))
        triangle = candidates[rows, best]
        chosen = bary[rows, best]
        missed = np.flatnonzero(score[rows, best] < -1e-9)
        for lo in range(0, len(missed), 256):
            part = missed[lo : lo + 256]
            full = np.einsum("tij,qj->qti", self._inverse, directions[part])
            pick = np.argmax(full.min(axis=2), axis=1)
            triangle[part] = pick
            chosen[part] = full[np.arange(len(part)), pick]
        chosen = np.clip(chosen, 0.0, None)
        total = chosen.sum(axis=1, keepdims=True)
        chosen = np.where(total > 0, chosen / np.where(total > 0, total, 1.0), 1.0 / 3.0)
        return self._triangles[triangle], chosen

    def _nearest(self, directions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        k = min(3, len(self.directions))
        cos = np.clip(directions @ self.directions.T, -1.0, 1.0)
        idx = np.argsort(-cos, axis=1)[:, :k]
        angle = np.arccos(np.take_along_axis(cos, idx, axis=1))
        exact = angle < 1e-6
        w = np.where(exact.any(axis=1, keepdims=True), exact.astype(float), 1.0 / np.maximum(angle, 1e-6))
        w /= w.sum(axis=1, keepdims=True)
        if k < 3:
            idx = np.concatenate([idx, np.repeat(idx[:, :1], 3 - k, axis=1)], axis=1)
            w = np.concatenate([w, np.zeros((len(w), 3 - k))], axis=1)
        return idx, w

    def interpolate(self, directions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(Q, 2, fft//2+1) aligned spectra and (Q, 2) delays (samples) for (Q, 3) directions."""
        idx, w = self.weights(directions)
        w32 = w.astype(np.float32)[:, :, None, None]
        spectra = self.spectra[idx[:, 0]] * w32[:, 0] + self.spectra[idx[:, 1]] * w32[:, 1] + self.spectra[idx[:, 2]] * w32[:, 2]
        delays = np.einsum("qk,qke->qe", w, self.delays[idx])
        return spectra, delays

    def hrirs(self, directions: np.ndarray, length: int) -> np.ndarray:
        """(Q, 2, length) complete HRIRs (delay included, fractional delays exact in the
        frequency domain) for (Q, 3) directions: for static decoders, not per block."""
        idx, w = self.weights(directions)
        aligned = np.einsum("qk,qket->qet", w, self.aligned[idx].astype(np.float64))
        delays = np.einsum("qk,qke->qe", w, self.delays[idx])
        n = 1 << int(np.ceil(np.log2(length + aligned.shape[-1])))
        freqs = np.fft.rfftfreq(n)
        spectra = np.fft.rfft(aligned, n) * np.exp(-2j * np.pi * freqs * delays[..., None])
        return np.fft.irfft(spectra, n)[..., :length]


def _onsets(ir: np.ndarray) -> np.ndarray:
    peak = np.abs(ir).max(axis=-1, keepdims=True)
    above = np.abs(ir) >= ONSET_THRESHOLD * np.where(peak > 0, peak, 1.0)
    return np.argmax(above, axis=-1)


@functools.lru_cache(maxsize=4)
def load_hrtf(path: str | None, rate: int) -> HrtfSet:
    """The HRTF set of a SOFA file (the built-in KEMAR set when None) at ``rate`` Hz."""
    from soundtok_cli.spatial.sofa import read_sofa

    path = path or default_sofa_path()
    sofa = read_sofa(path)
    ir = sofa.ir
    delays = sofa.delays * (rate / sofa.rate)
    if int(round(sofa.rate)) != rate:
        import soxr

        m, _, n = ir.shape
        flat = np.ascontiguousarray(ir.reshape(m * 2, n).T)
        flat = np.pad(flat, ((0, 16), (0, 0)))
        resampled = soxr.resample(flat, sofa.rate, rate, quality="VHQ") * (sofa.rate / rate)
        ir = np.ascontiguousarray(resampled.T).reshape(m, 2, -1)
    block = block_for_rate(rate)
    fft = block + block // 2
    length = fft - block + 1
    onsets = np.maximum(_onsets(ir) - LEAD_IN, 0)
    aligned = np.zeros(ir.shape[:2] + (length,))
    n = ir.shape[-1]
    for i in range(ir.shape[0]):
        for ear in range(2):
            start = onsets[i, ear]
            part = ir[i, ear, start : start + length]
            aligned[i, ear, : len(part)] = part
    delays = delays + onsets
    directions = to_cartesian(sofa.positions[:, 0], sofa.positions[:, 1], 1.0)
    # unit energy gain straight ahead (averaged over the ears)
    front = int(np.argmax(directions @ np.array([1.0, 0.0, 0.0])))
    energy = float(np.mean(np.sum(aligned[front] ** 2, axis=-1)))
    if energy <= 0:
        raise InputError("the HRIR straight ahead is silent", path)
    aligned /= np.sqrt(energy)
    spectra = np.fft.rfft(aligned, fft).astype(np.complex64)
    hrtf = HrtfSet(path, sofa.title, rate, block, fft, directions, spectra, aligned.astype(np.float32),
                   delays, float(np.median(sofa.positions[:, 2])) or 1.0)
    _triangulate(hrtf)
    return hrtf


def _triangulate(hrtf: HrtfSet) -> None:
    d = hrtf.directions
    if len(d) < 4 or np.linalg.matrix_rank(d - d.mean(axis=0), tol=1e-3) < 3:
        return
    from scipy.spatial import ConvexHull
    from scipy.spatial import QhullError

    try:
        hull = ConvexHull(d)
    except (QhullError, ValueError):
        return
    triangles = hull.simplices
    vertices = d[triangles].transpose(0, 2, 1)  # (T, 3 coords, 3 vertices)
    det = np.linalg.det(vertices)
    keep = np.abs(det) > 1e-9
    # The hull must enclose the centre (measurements all round the head); otherwise fall back.
    if keep.sum() < 4 or not (hull.equations[:, 3] < -1e-6).all():
        return
    hrtf._triangles = triangles[keep]
    hrtf._inverse = np.linalg.inv(vertices[keep])
    around: list[list[int]] = [[] for _ in range(len(d))]
    for t, triangle in enumerate(hrtf._triangles):
        for vertex in triangle:
            around[vertex].append(t)
    width = max(len(a) for a in around)
    hrtf._incident = np.array([a + [-1] * (width - len(a)) for a in around], dtype=np.int64)


def hrtf_for(path: str | None, rate: int) -> HrtfSet:
    """`load_hrtf` with the path made absolute (the cache key) and user errors as InputError."""
    return load_hrtf(os.path.abspath(path) if path else None, int(rate))
