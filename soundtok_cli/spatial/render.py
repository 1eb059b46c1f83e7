"""The renderer: mono sources moving along paths -> binaural, stereo, ambisonics or loudspeakers.

Targets and channel orders:

  binaural  left, right ear, through HRTFs (a SOFA file; the built-in MIT KEMAR set by default)
  stereo    L R, VBAP between loudspeakers at +-30 degrees
  foa hoa2 hoa3
            AmbiX: ACN channel order, SN3D normalisation, orders 1, 2, 3 (4, 9, 16 channels)
  5.1 7.1.4 loudspeaker feeds by VBAP; channel orders in layouts.py (5.1 = L R C LFE Ls Rs)

``via="foa"|"hoa2"|"hoa3"`` renders binaural, stereo or loudspeakers through ambisonics of that
order instead (encode, then decode: AllRAD for loudspeakers, virtual loudspeakers through the
HRTFs for binaural).

How a source is rendered, on a grid of control points every `block` samples (about 21 ms):
- its position at each control point comes from its path (times relative to the source's start);
- distance: gain 1/d (unity at 1 m), air absorption (dsp.py), and a propagation delay d/c read
  from a fractional delay line, whose change over time is the Doppler shift (the distance and
  direction are those at the time the sound left the source, so an approaching source is heard at
  f c / (c - v)) (``doppler=False``
  keeps each source's delay fixed at its mean distance, so no pitch change);
- binaural: the HRTF of the direction (interpolated between measured directions), with the
  onset delay of each ear added to that ear's delay line (smooth ITD), and near-field gains: the
  inverse distance from each ear (ears 8.75 cm either side of the centre) relative to what it is
  at the HRTF's measurement distance, so a source close to one ear gets the stronger level
  difference of real near sources. Each block is filtered by overlap-save FFT convolution with the
  filters of both its control points and the two results crossfaded over the block, so moving
  sources change filters without clicks;
- loudspeakers and ambisonics: panning gains at each control point, linearly interpolated sample
  by sample; all sources are mixed in one batched matrix product per block.

Output is produced in chunks of 64 blocks, so memory holds the sources (mono float32) and one
chunk of output. The rendered length is the scene's length plus a tail for the longest
propagation delay, the filters and the room's reverb.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from soundtok_cli.spatial import ambisonics
from soundtok_cli.spatial.dsp import air_absorption, fractional_read
from soundtok_cli.spatial.geometry import MIN_DISTANCE, SPEED_OF_SOUND
from soundtok_cli.spatial.hrtf import block_for_rate
from soundtok_cli.spatial.layouts import LAYOUTS

TARGETS = ("binaural", "stereo", "foa", "hoa2", "hoa3", "5.1", "7.1.4")
VIA = tuple(ambisonics.FORMATS)
EAR_OFFSET = 0.0875  # m, centre of the head to each ear
CHUNK_BLOCKS = 64


def channel_labels(target: str) -> list[str]:
    if target == "binaural":
        return ["left", "right"]
    if target in ambisonics.FORMATS:
        order = ambisonics.FORMATS[target]
        return [f"ACN{i}" for i in range(ambisonics.channels(order))]
    return list(LAYOUTS[target].labels)


@dataclass
class SpatialSource:
    """A mono signal at the rendering rate, where it starts in the scene, and how it moves."""

    name: str
    signal: np.ndarray  # (n,) float32
    path: object  # anything with cartesian(t) -> (n, 3) metres (a Trajectory)
    start: int = 0  # samples into the scene
    gain: float = 1.0


@dataclass
class RenderOptions:
    target: str
    rate: int
    hrtf: str | None = None  # SOFA path; None: the built-in set
    room: str | None = None
    doppler: bool = True
    via: str | None = None


@dataclass
class _Voice:
    dry: np.ndarray
    start: int
    path: object
    gain: float
    fixed_delay: float | None  # samples, when Doppler is off
    max_delay: float  # samples
    static: bool
    direct: bool  # the source itself (not a reflection): feeds the reverb


def _path_static(path) -> bool:
    return bool(getattr(path, "static", False))


def _sample_distances(path, seconds: float, rate: float = 100.0) -> np.ndarray:
    t = np.linspace(0.0, max(seconds, 0.0), max(2, int(seconds * rate) + 2))
    return np.linalg.norm(path.cartesian(t), axis=1)


class SceneRenderer:
    """Renders sources for one target; iterate `chunks()` for (n, channels) float32 blocks that
    add up to `frames` samples."""

    def __init__(self, sources: list[SpatialSource], options: RenderOptions):
        from soundtok_cli.spatial.room import ROOMS, image_paths

        if options.target not in TARGETS:
            raise ValueError(f"unknown target {options.target}")
        self.options = options
        self.rate = int(options.rate)
        self.target = options.target
        self.labels = channel_labels(options.target)
        self.channels = len(self.labels)
        self.hrtf = None
        via = options.via if options.target in ("binaural", "stereo", "5.1", "7.1.4") else None
        self.via = via
        if self.target == "binaural" and via is None:
            from soundtok_cli.spatial.hrtf import hrtf_for

            self.hrtf = hrtf_for(options.hrtf, self.rate)
            self.block = self.hrtf.block
        else:
            self.block = block_for_rate(self.rate)
        self.room = ROOMS[options.room] if options.room else None
        voices: list[_Voice] = []
        end = 0
        for source in sources:
            signal = np.asarray(source.signal, dtype=np.float32).reshape(-1)
            end = max(end, source.start + len(signal))
            seconds = len(signal) / self.rate
            paths = [(1.0, source.path, True)]
            if self.room is not None:
                paths += [(g, p, False) for g, p in image_paths(self.room, source.path)]
            for gain, path, direct in paths:
                distances = _sample_distances(path, seconds)
                fixed = None if options.doppler else float(np.mean(distances)) / SPEED_OF_SOUND * self.rate
                max_delay = float(distances.max()) / SPEED_OF_SOUND * self.rate if fixed is None else fixed
                block_t = (np.arange(0, len(signal), self.block) + 0.5 * self.block) / self.rate
                block_d = np.linalg.norm(path.cartesian(block_t), axis=1) if len(block_t) else np.zeros(0)
                dry = air_absorption(signal, block_d, self.block, self.rate)
                voices.append(_Voice(dry, int(source.start), path, float(source.gain) * gain, fixed, max_delay,
                                     _path_static(path) or (fixed is not None and _path_static(source.path)), direct))
        self.voices = voices
        self._setup_output()
        tail = max((v.max_delay for v in voices), default=0.0) + 4 * self.block + 8
        if self.hrtf is not None:
            tail += float(self.hrtf.delays.max())
        self.frames = int(end + math.ceil(tail) + self._post_tail) if voices else 0

    # -- output stage ----------------------------------------------------------------------

    def _setup_output(self) -> None:
        """Panning for the voices, and what turns panned signals into the output channels."""
        from soundtok_cli.spatial.room import tail_filters

        self._decode_matrix = None
        self._decoder = None
        self._post_tail = 0
        if self.hrtf is not None:
            self._pan = None
        elif self.target in ambisonics.FORMATS or self.via:
            order = ambisonics.FORMATS[self.via or self.target]
            self._pan = lambda d, order=order: ambisonics.sh_sn3d(order, d)
            if self.target in LAYOUTS:
                self._decode_matrix = ambisonics.speaker_decoder(order, LAYOUTS[self.target]).T.astype(np.float32)
            elif self.target == "binaural":
                from soundtok_cli.spatial.hrtf import hrtf_for

                hrtf = hrtf_for(self.options.hrtf, self.rate)
                filters = ambisonics.binaural_decoder(order, hrtf, hrtf.fft)
                self._decoder = StaticConvolver(filters)
                self._post_tail += filters.shape[-1] + int(hrtf.delays.max())
        else:
            layout = LAYOUTS[self.target]
            self._pan = layout.vbap
        self._reverb = None
        if self.room is not None:
            if self.target in ambisonics.FORMATS:
                order = ambisonics.FORMATS[self.target]
                power = 1.0 / (2 * ambisonics.acn_order(order) + 1)
            elif self.target == "binaural":
                power = np.ones(2)
            else:
                speakers = LAYOUTS[self.target].speakers
                power = np.zeros(self.channels)
                power[speakers] = 1.0 / len(speakers)
            ir = tail_filters(self.room, power, self.rate)
            if ir is not None:
                self._reverb = StaticConvolver(ir)
                self._post_tail += ir.shape[-1]

    # -- rendering -------------------------------------------------------------------------

    def chunks(self) -> Iterator[np.ndarray]:
        step = CHUNK_BLOCKS * self.block
        for a in range(0, self.frames, step):
            b = a + step
            out = self._render_chunk(a, b)
            yield out[: min(b, self.frames) - a]

    def render(self) -> np.ndarray:
        """The whole scene at once, (frames, channels) float32."""
        parts = list(self.chunks())
        return np.concatenate(parts) if parts else np.zeros((0, self.channels), np.float32)

    def _active(self, a: int, b: int) -> list[_Voice]:
        margin = 2 * self.block + 8
        return [v for v in self.voices
                if v.start - margin < b and v.start + len(v.dry) + v.max_delay + margin > a]

    def _render_chunk(self, a: int, b: int) -> np.ndarray:
        n = b - a
        voices = self._active(a, b)
        if self.hrtf is not None:
            out = np.zeros((2, n), np.float32)
            for voice in voices:
                out += self._binaural_voice(voice, a, b)
            out = out.T
        else:
            panned = self._panned(voices, a, b)  # (n, C) of the panning domain
            if self._decode_matrix is not None:
                out = panned @ self._decode_matrix
            elif self._decoder is not None:
                out = self._decoder.process(panned)
            else:
                out = panned
        if self._reverb is not None:
            send = np.zeros(n, np.float32)
            for voice in voices:
                if voice.direct:
                    lo, hi = max(a, voice.start), min(b, voice.start + len(voice.dry))
                    if hi > lo:
                        send[lo - a : hi - a] += voice.gain * voice.dry[lo - voice.start : hi - voice.start]
            out = out + self._reverb.process(send[:, None])
        return np.ascontiguousarray(out, dtype=np.float32)

    def _control(self, voice: _Voice, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions (metres) and distances at global control sample indices, as heard: sound
        arriving at time t left the source at t - d/c, when the source was elsewhere (with
        Doppler on; three fixed-point steps of tau = d(t - tau) / c, each 10x closer for any
        source slower than 34 m/s)."""
        t = (points - voice.start) / self.rate
        xyz = voice.path.cartesian(t)
        dist = np.linalg.norm(xyz, axis=1)
        if voice.fixed_delay is None and not voice.static:
            for _ in range(3):
                xyz = voice.path.cartesian(t - dist / SPEED_OF_SOUND)
                dist = np.linalg.norm(xyz, axis=1)
        return xyz, dist

    def _delays(self, voice: _Voice, dist: np.ndarray) -> np.ndarray:
        if voice.fixed_delay is not None:
            return np.full(len(dist), voice.fixed_delay)
        return dist / SPEED_OF_SOUND * self.rate

    @staticmethod
    def _settle(voice: _Voice, delays: np.ndarray) -> np.ndarray:
        """A source that never moves is delayed by whole samples: an exact copy, without the
        interpolator's high-frequency loss (which only moving sources need)."""
        return np.round(delays) if voice.static else delays

    def _binaural_voice(self, voice: _Voice, a: int, b: int) -> np.ndarray:
        hrtf, B, F = self.hrtf, self.block, self.hrtf.fft
        H = F - B  # input history each block's frame carries (the HRIR length - 1)
        k = (b - a) // B
        points = np.arange(a - B, b + 1, B, dtype=np.float64)  # k + 2 control points
        xyz, dist = self._control(voice, points)
        safe = np.maximum(dist, MIN_DISTANCE)
        directions = xyz / safe[:, None]
        spectra, ear_delays = hrtf.interpolate(directions)
        # near-field: inverse distance from each ear, relative to that at the measurement distance
        ears = np.array([[0.0, EAR_OFFSET, 0.0], [0.0, -EAR_OFFSET, 0.0]])
        here = np.maximum(np.linalg.norm(xyz[:, None, :] - ears[None], axis=2), MIN_DISTANCE)
        far = hrtf.measured_distance
        there = np.linalg.norm(directions[:, None, :] * far - ears[None], axis=2)
        gains = voice.gain * (1.0 / here) * (there / far)
        spectra = spectra * gains[:, :, None].astype(np.float32)
        delays = self._settle(voice, ear_delays + self._delays(voice, dist)[:, None])  # (k + 2, 2)
        samples = np.arange(a - H, b, dtype=np.float64)
        ear = np.empty((2, len(samples)), np.float32)
        for e in range(2):
            read = samples - voice.start - np.interp(samples, points, delays[:, e])
            ear[e] = fractional_read(voice.dry, read)
        frames = np.lib.stride_tricks.sliding_window_view(ear, F, axis=1)[:, ::B][:, :k]  # (2, k, F)
        from scipy import fft as sfft

        spectrum = sfft.rfft(frames, F, axis=-1)
        start = spectra[1 : k + 1].transpose(1, 0, 2)
        y0 = sfft.irfft(spectrum * start, F, axis=-1)[..., H:]
        if voice.static:
            y = y0
        else:
            end = spectra[2 : k + 2].transpose(1, 0, 2)
            y1 = sfft.irfft(spectrum * end, F, axis=-1)[..., H:]
            ramp = (np.arange(B, dtype=np.float32) + 0.5) / B
            y = y0 + ramp * (y1 - y0)
        return y.reshape(2, k * B).astype(np.float32, copy=False)

    def _panned(self, voices: list[_Voice], a: int, b: int) -> np.ndarray:
        B = self.block
        k = (b - a) // B
        width = self._pan(np.array([[1.0, 0.0, 0.0]])).shape[1]
        if not voices:
            return np.zeros((b - a, width), np.float32)
        points = np.arange(a, b + 1, B, dtype=np.float64)  # k + 1 control points
        samples = np.arange(a, b, dtype=np.float64)
        signals = np.empty((len(voices), b - a), np.float32)
        gains = np.empty((len(voices), k + 1, width), np.float32)
        for i, voice in enumerate(voices):
            xyz, dist = self._control(voice, points)
            safe = np.maximum(dist, MIN_DISTANCE)
            gains[i] = self._pan(xyz / safe[:, None]) * (voice.gain / safe)[:, None]
            delays = self._settle(voice, self._delays(voice, dist))
            read = samples - voice.start - (delays[0] if voice.fixed_delay is not None else np.interp(samples, points, delays))
            signals[i] = fractional_read(voice.dry, read)
        ramp = (np.arange(B, dtype=np.float32) + 0.5) / B
        blocks = signals.reshape(len(voices), k, B).transpose(1, 2, 0)  # (k, B, V)
        g0 = gains[:, :k].transpose(1, 0, 2)  # (k, V, C)
        dg = (gains[:, 1:] - gains[:, :k]).transpose(1, 0, 2)
        out = np.matmul(blocks, g0) + np.matmul(blocks * ramp[None, :, None], dg)
        return out.reshape(k * B, width)


@dataclass
class StaticConvolver:
    """Streaming FFT convolution with fixed filters (Cin, Cout, L): process (n, Cin) -> (n, Cout),
    the tail of each chunk carried into the next."""

    filters: np.ndarray
    _carry: np.ndarray | None = None
    _spectra: dict = field(default_factory=dict)

    def process(self, x: np.ndarray) -> np.ndarray:
        from scipy import fft as sfft

        x = np.asarray(x, dtype=np.float32)
        n = len(x)
        cin, cout, length = self.filters.shape
        size = sfft.next_fast_len(n + length - 1, real=True)
        if size not in self._spectra:
            self._spectra[size] = sfft.rfft(self.filters, size, axis=-1)
        spectrum = sfft.rfft(x.T, size, axis=-1)  # (Cin, F)
        y = sfft.irfft(np.einsum("if,iof->of", spectrum, self._spectra[size]), size, axis=-1)[:, : n + length - 1]
        if self._carry is not None:
            m = min(self._carry.shape[1], y.shape[1])
            y[:, :m] += self._carry[:, :m]
            if self._carry.shape[1] > m:
                y = np.concatenate([y, self._carry[:, m:]], axis=1)
        self._carry = y[:, n:]
        return y[:, :n].T.astype(np.float32)
