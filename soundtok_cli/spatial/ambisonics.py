"""Ambisonics in AmbiX form: real spherical harmonics in ACN channel order with SN3D
normalisation, orders 1 to 3, no Condon-Shortley phase; and decoders to loudspeakers and binaural.

Channel ACN = n * (n + 1) + m for order n and degree m (-n..n): W, Y, Z, X for first order.
A plane wave from unit direction (x, y, z) is encoded with the gains written out below (SN3D: the
m = 0 harmonic of each order peaks at 1).

Decoders use max-rE weights (Zotter and Frank 2012: a_n = P_n(cos(137.9 deg / (N + 1.51)))) on a
sampling decoder over an even grid of virtual directions (a Fibonacci sphere of 240 points):
- loudspeakers: AllRAD, the virtual directions panned onto the real layout with VBAP;
- binaural: each virtual direction rendered through its HRIR, folded into one pair of filters per
  ambisonic channel (dual-band: the basic decoder at low frequencies keeps the ITD).
"""

from __future__ import annotations

import math

import numpy as np

FORMATS = {"foa": 1, "hoa2": 2, "hoa3": 3}
GRID_POINTS = 240


def channels(order: int) -> int:
    return (order + 1) ** 2


def acn_order(order: int) -> np.ndarray:
    """The order n of each ACN channel."""
    return np.array([n for n in range(order + 1) for _ in range(2 * n + 1)])


def sh_sn3d(order: int, directions: np.ndarray) -> np.ndarray:
    """(Q, (order+1)^2) real SN3D spherical harmonics (ACN order) at (Q, 3) unit directions."""
    if not 0 <= order <= 3:
        raise ValueError("orders 0 to 3 are supported")
    d = np.asarray(directions, dtype=np.float64).reshape(-1, 3)
    x, y, z = d[:, 0], d[:, 1], d[:, 2]
    out = [np.ones_like(x)]
    if order >= 1:
        out += [y, z, x]
    if order >= 2:
        s3 = math.sqrt(3.0)
        out += [s3 * x * y, s3 * y * z, 0.5 * (3 * z * z - 1), s3 * x * z, 0.5 * s3 * (x * x - y * y)]
    if order >= 3:
        a, b, c = math.sqrt(5 / 8), math.sqrt(15), math.sqrt(3 / 8)
        out += [a * y * (3 * x * x - y * y), b * x * y * z, c * y * (5 * z * z - 1), 0.5 * z * (5 * z * z - 3),
                c * x * (5 * z * z - 1), 0.5 * b * z * (x * x - y * y), a * x * (x * x - 3 * y * y)]
    return np.stack(out, axis=1)


def max_re_weights(order: int) -> np.ndarray:
    """Per-order max-rE weights a_n, expanded to ACN channels."""
    from numpy.polynomial import legendre

    c = math.cos(math.radians(137.9 / (order + 1.51)))
    per_order = np.array([legendre.legval(c, [0] * n + [1]) for n in range(order + 1)])
    return per_order[acn_order(order)]


def fibonacci_sphere(n: int = GRID_POINTS) -> np.ndarray:
    """(n, 3) nearly evenly spread unit directions."""
    i = np.arange(n) + 0.5
    z = 1 - 2 * i / n
    phi = math.pi * (1 + math.sqrt(5)) * i
    r = np.sqrt(1 - z * z)
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


def sampling_decoder(order: int, grid: np.ndarray, max_re: bool = True) -> np.ndarray:
    """(G, C) gains from SN3D ambisonics to G evenly spread virtual directions; the virtual
    signals of a plane wave sum to about 1."""
    n = acn_order(order)
    weights = (2 * n + 1) * (max_re_weights(order) if max_re else 1.0)
    return sh_sn3d(order, grid) * weights[None, :] / len(grid)


def speaker_decoder(order: int, layout) -> np.ndarray:
    """(speakers, C) AllRAD decoding matrix onto a loudspeaker layout (LFE rows zero), scaled so
    a plane wave has, averaged over directions, the energy of a directly panned source."""
    grid = fibonacci_sphere()
    virtual = sampling_decoder(order, grid)  # (G, C)
    pan = layout.vbap(grid)  # (G, speakers)
    decoder = pan.T @ virtual  # (speakers, C)
    probe = fibonacci_sphere(500)
    energy = np.mean(np.sum((sh_sn3d(order, probe) @ decoder.T) ** 2, axis=1))
    return decoder / math.sqrt(energy)


def binaural_decoder(order: int, hrtf, length: int | None = None) -> np.ndarray:
    """(C, 2, L) filters: ambisonic channel c through them, summed over c, gives the two ears.

    Dual-band: the basic (mode-matching) decoder below order x 600 Hz, where it reproduces the
    interaural time differences of a head of radius 8.75 cm, and max-rE above (Zotter and Frank:
    N c / (2 pi r) = N x 624 Hz), crossfaded over an octave; scaled so a plane wave has, averaged
    over directions, the energy of a direct HRTF render."""
    grid = fibonacci_sphere()
    length = length or hrtf.fft
    hrirs = hrtf.hrirs(grid, length)  # (G, 2, L)
    size = 2 * length
    spectra = np.fft.rfft(hrirs, size)
    basic = np.einsum("gc,gef->cef", sampling_decoder(order, grid, max_re=False), spectra)
    max_re = np.einsum("gc,gef->cef", sampling_decoder(order, grid, max_re=True), spectra)
    freqs = np.fft.rfftfreq(size, 1.0 / hrtf.rate)
    crossover = 600.0 * order
    octaves = np.log2(np.maximum(freqs, 1.0) / crossover)
    high = np.clip(octaves + 0.5, 0.0, 1.0)
    high = np.sin(0.5 * math.pi * high) ** 2
    filters = np.fft.irfft(basic * (1 - high) + max_re * high, size)[..., :length]
    probe = fibonacci_sphere(200)
    direct = hrtf.hrirs(probe, length)
    through = np.einsum("qc,cel->qel", sh_sn3d(order, probe), filters)
    scale = math.sqrt(np.sum(direct ** 2) / max(np.sum(through ** 2), 1e-30))
    return (filters * scale).astype(np.float32)
