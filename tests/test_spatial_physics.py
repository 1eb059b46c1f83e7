"""soundtok spatialize against physics and peers: ITD/ILD of the binaural render, ffmpeg's
sofalizer on the same SOFA file, AmbiX encoding against scipy's spherical harmonics, the direction
of a rendered FOA signal, loudspeaker panning, distance, Doppler, and smooth movement."""

from __future__ import annotations

import math
import os
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf
from scipy import signal

from soundtok_cli.spatial import ambisonics
from soundtok_cli.spatial.geometry import to_cartesian
from soundtok_cli.spatial.hrtf import default_sofa_path, hrtf_for
from soundtok_cli.spatial.layouts import LAYOUTS
from soundtok_cli.spatial.phrases import parse_path
from soundtok_cli.spatial.render import RenderOptions, SceneRenderer, SpatialSource
from soundtok_cli.spatial.trajectory import Trajectory

SR = 48000
DEBIAN_SOFA = "/usr/share/libmysofa/MIT_KEMAR_normal_pinna.sofa"


def noise(seconds: float, rate: int = SR, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(int(seconds * rate))).astype(np.float32)


def render(target: str, path, x: np.ndarray, rate: int = SR, **options) -> np.ndarray:
    return SceneRenderer([SpatialSource("x", x, path)], RenderOptions(target, rate, **options)).render()


def itd_ms(stereo: np.ndarray, rate: int = SR, below: float = 1500.0) -> float:
    """Lag of the right ear behind the left (ms), from the cross-correlation below 1.5 kHz."""
    sos = signal.butter(4, below, "low", fs=rate, output="sos")
    left, right = signal.sosfilt(sos, stereo[:, 0]), signal.sosfilt(sos, stereo[:, 1])
    c = signal.correlate(right, left, "full")
    window = int(0.002 * rate)
    middle = len(left) - 1
    lag = np.argmax(c[middle - window : middle + window + 1]) - window
    return 1000.0 * lag / rate


def ild_db(stereo: np.ndarray, rate: int = SR) -> float:
    """Left minus right level between 4 and 10 kHz, dB."""
    sos = signal.butter(4, [4000, 10000], "band", fs=rate, output="sos")
    left, right = signal.sosfilt(sos, stereo[:, 0]), signal.sosfilt(sos, stereo[:, 1])
    return 10 * math.log10(np.sum(left ** 2) / np.sum(right ** 2))


# --------------------------------------------------------------------------------------------
# Binaural


def test_itd_and_ild_at_the_sides_and_in_front():
    x = noise(1.0)
    left = render("binaural", Trajectory.fixed(90, 0, 1), x)
    right = render("binaural", Trajectory.fixed(-90, 0, 1), x)
    front = render("binaural", Trajectory.fixed(0, 0, 1), x)
    assert 0.55 <= itd_ms(left) <= 0.8  # the left ear leads: the right lags
    assert 0.55 <= itd_ms(right) * -1 <= 0.8
    assert ild_db(left) > 6 and ild_db(right) < -6
    assert abs(itd_ms(left) + itd_ms(right)) < 0.05 and abs(ild_db(left) + ild_db(right)) < 3  # mirrored
    assert abs(itd_ms(front)) < 0.03 and abs(ild_db(front)) < 1.5


def _sofalizer(path: str, x: np.ndarray, rate: int, az: float, el: float, tmp_path) -> np.ndarray:
    src, out = tmp_path / "in.wav", tmp_path / "ff.wav"
    sf.write(src, x, rate, subtype="FLOAT")
    # a mono input is the front-centre channel at az 0; rotation turns it to az (counter-clockwise)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-af",
                    f"sofalizer=sofa={path}:type=time:rotation={az}:elevation={el}:normalize=0",
                    "-c:a", "pcm_f32le", str(out)], check=True, timeout=120)
    rendered, its_rate = sf.read(out, dtype="float32")
    if its_rate != rate:  # sofalizer runs at the SOFA file's rate: ffmpeg resamples the input to it
        import soxr

        rendered = soxr.resample(rendered, its_rate, rate, quality="VHQ")
    return rendered


def _aligned_correlation(reference: np.ndarray, ours: np.ndarray) -> float:
    c = signal.correlate(ours, reference, "full")
    lag = int(np.argmax(np.abs(c))) - (len(reference) - 1)
    n = min(len(reference), len(ours) - lag) if lag >= 0 else min(len(reference) + lag, len(ours))
    a = reference[:n] if lag >= 0 else reference[-lag : -lag + n]
    b = ours[lag : lag + n] if lag >= 0 else ours[:n]
    return float(np.corrcoef(a, b)[0, 1])


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed (Debian package ffmpeg)")
@pytest.mark.parametrize("rate,az,el", [(44100, 90, 0), (44100, -30, 0), (44100, 135, 20), (48000, 60, 0)])
def test_binaural_agrees_with_ffmpeg_sofalizer(tmp_path, rate, az, el):
    """At measured directions (the SOFA file's own rate, and 48 kHz where both resample)."""
    sofa = DEBIAN_SOFA if os.path.exists(DEBIAN_SOFA) else default_sofa_path()
    if not os.path.exists(sofa):
        pytest.skip("no SOFA file (Debian package libmysofa1)")
    probe = subprocess.run(["ffmpeg", "-hide_banner", "-filters"], capture_output=True, text=True)
    if "sofalizer" not in probe.stdout:
        pytest.skip("this ffmpeg has no sofalizer filter (built without libmysofa)")
    x = noise(1.0, rate)
    reference = _sofalizer(sofa, x, rate, az, el, tmp_path)
    ours = render("binaural", Trajectory.fixed(az, el, 1.4), x, rate, hrtf=sofa)
    for ear in range(2):
        assert _aligned_correlation(reference[:, ear], ours[:, ear]) >= 0.9


def test_hrtf_at_another_rate_is_resampled():
    at_44 = hrtf_for(None, 44100)
    at_48 = hrtf_for(None, 48000)
    assert at_44.rate == 44100 and at_48.rate == 48000
    d = to_cartesian([90.0], [0.0], 1.0)
    itd_44 = np.diff(at_44.interpolate(d)[1][0])[0] / 44100
    itd_48 = np.diff(at_48.interpolate(d)[1][0])[0] / 48000
    assert abs(itd_44 - itd_48) < 3e-5  # the same ITD in seconds


def test_moving_source_has_no_clicks():
    """A pure tone flown round the head: the output's second difference stays at the level of a
    tone's (a filter switch would spike it)."""
    t = np.arange(4 * SR) / SR
    x = (0.3 * np.sin(2 * np.pi * 500 * t)).astype(np.float32)
    path = parse_path("around over 4s").trajectory
    out = render("binaural", path, x, doppler=False)[SR // 10 : 4 * SR - SR // 10]
    for ear in range(2):
        d2 = np.abs(np.diff(out[:, ear], 2))
        envelope = np.abs(signal.hilbert(out[:, ear]))
        expected = envelope[1:-1] * (2 * np.pi * 500 / SR) ** 2
        assert np.max(d2 - expected) < 2e-3


def test_distance_gain_is_inverse():
    x = noise(0.5)
    moving_x = signal.sosfilt(signal.butter(8, 8000, fs=SR, output="sos"), x).astype(np.float32)
    away = Trajectory.from_positions([0.0, 0.5], [[0, 0, 2.0], [0, 0, 2.01]])  # moves: fractional delays
    moving = render("foa", away, moving_x)
    static = render("foa", Trajectory.fixed(0, 0, 2.005), moving_x)
    assert math.sqrt(np.sum(moving[:, 0] ** 2.0) / np.sum(static[:, 0] ** 2.0)) == pytest.approx(1.0, abs=0.01)
    near = render("foa", Trajectory.fixed(0, 0, 1), x)
    far = render("foa", Trajectory.fixed(0, 0, 4), x)
    ratio = math.sqrt(np.sum(near[:, 0].astype(np.float64) ** 2) / np.sum(far[:, 0].astype(np.float64) ** 2))
    assert ratio == pytest.approx(4.0, rel=0.01)  # 1/d; air absorption starts further away
    very_far = render("foa", Trajectory.fixed(0, 0, 100), x)
    spectrum = lambda y: np.abs(np.fft.rfft(y[:, 0].astype(np.float64))) ** 2
    bands = lambda p: (np.sum(p[: len(p) // 24]), np.sum(p[len(p) // 2 :]))  # < 1 kHz, > 12 kHz
    (low_near, high_near), (low_far, high_far) = bands(spectrum(near)), bands(spectrum(very_far))
    assert high_far / low_far < 0.3 * high_near / low_near  # air absorbs the highs at 100 m


def test_doppler_shift_of_a_passing_source():
    """A 1 kHz source passing at 30 m/s: about f * c / (c - v) approaching, f * c / (c + v) going."""
    seconds, speed = 4.0, 30.0
    t = np.arange(int(seconds * SR)) / SR
    x = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    from soundtok_cli.spatial.geometry import to_spherical

    times = np.linspace(0.0, seconds, 401)  # a straight line, as keypoints 10 ms apart
    line = np.stack([60.0 - speed * times, np.full_like(times, 5.0), np.zeros_like(times)], axis=1)
    path = Trajectory.from_positions(times, to_spherical(line))
    out = render("foa", path, x)[:, 0]

    def peak_hz(segment: np.ndarray) -> float:
        spectrum = np.abs(np.fft.rfft(segment * np.hanning(len(segment)), 1 << 18))
        return float(np.argmax(spectrum) * SR / (1 << 18))

    # 60 m ahead at first, passing at 2 s, 60 m behind at 4 s (arrivals up to 0.18 s late)
    approaching = peak_hz(out[int(0.4 * SR) : int(1.2 * SR)])
    receding = peak_hz(out[int(3.3 * SR) : int(4.1 * SR)])
    assert approaching == pytest.approx(1000 * 343 / (343 - speed), rel=0.005)
    assert receding == pytest.approx(1000 * 343 / (343 + speed), rel=0.005)
    static = peak_hz(render("foa", path, x, doppler=False)[int(0.5 * SR) : int(1.0 * SR), 0])
    assert static == pytest.approx(1000, abs=3)


# --------------------------------------------------------------------------------------------
# Ambisonics


def scipy_sn3d(order: int, az_deg: np.ndarray, el_deg: np.ndarray) -> np.ndarray:
    """AmbiX gains from scipy's complex spherical harmonics, converted step by step:
    complex orthonormal Y_n^m (with the Condon-Shortley phase) -> real orthonormal (N3D / sqrt(4 pi))
    -> N3D -> SN3D (divide by sqrt(2n + 1)), the phase (-1)^m removed, ACN = n (n + 1) + m."""
    from scipy.special import sph_harm_y

    theta = np.radians(90.0 - np.asarray(el_deg))  # polar angle from +z
    phi = np.radians(np.asarray(az_deg))  # azimuth counter-clockwise from +x
    out = np.zeros((len(theta), (order + 1) ** 2))
    for n in range(order + 1):
        for m in range(-n, n + 1):
            y = sph_harm_y(n, abs(m), theta, phi)  # includes (-1)^m
            if m > 0:
                real = math.sqrt(2) * (-1) ** m * y.real
            elif m < 0:
                real = math.sqrt(2) * (-1) ** m * y.imag
            else:
                real = y.real
            n3d = real * math.sqrt(4 * math.pi)
            out[:, n * (n + 1) + m] = n3d / math.sqrt(2 * n + 1)
    return out


def test_ambix_encoding_matches_scipy_spherical_harmonics():
    rng = np.random.default_rng(3)
    az = rng.uniform(-180, 180, 500)
    el = np.degrees(np.arcsin(rng.uniform(-1, 1, 500)))
    az = np.concatenate([az, [0, 90, -90, 180, 0, 0]])
    el = np.concatenate([el, [0, 0, 0, 0, 90, -90]])
    ours = ambisonics.sh_sn3d(3, to_cartesian(az, el, 1.0))
    assert np.max(np.abs(ours - scipy_sn3d(3, az, el))) < 1e-6
    # and what the renderer writes: a static source's FOA/HOA3 channels are those gains (times 1/d)
    x = noise(0.3)
    out = render("hoa3", Trajectory.fixed(az[0], el[0], 1.0), x)
    gains = np.linalg.lstsq(out[:, :1], out, rcond=None)[0][0]
    assert np.max(np.abs(gains - scipy_sn3d(3, az[:1], el[:1])[0])) < 1e-4


@pytest.mark.parametrize("az,el", [(30, 0), (135, 20), (-100, -30), (10, 70)])
def test_foa_intensity_vector_points_at_the_source(az, el):
    x = noise(1.0)
    foa = render("foa", Trajectory.fixed(az, el, 2.0), x).astype(np.float64)
    w, y, z, xx = foa[:, 0], foa[:, 1], foa[:, 2], foa[:, 3]
    intensity = np.array([np.sum(w * xx), np.sum(w * y), np.sum(w * z)])
    estimate = intensity / np.linalg.norm(intensity)
    asked = to_cartesian(az, el, 1.0)
    assert math.degrees(math.acos(np.clip(estimate @ asked, -1, 1))) < 3.0


def test_foa_of_a_moving_source_follows_its_path():
    x = noise(4.0)
    path = parse_path("from right to left overhead over 4s").trajectory
    foa = render("foa", path, x, doppler=False).astype(np.float64)
    for t in (0.5, 1.5, 2.0, 3.0):
        part = foa[int((t - 0.05) * SR) : int((t + 0.05) * SR)]
        intensity = np.array([np.sum(part[:, 0] * part[:, 3]), np.sum(part[:, 0] * part[:, 1]), np.sum(part[:, 0] * part[:, 2])])
        estimate = intensity / np.linalg.norm(intensity)
        asked = path.cartesian([t])[0]
        assert math.degrees(math.acos(np.clip(estimate @ asked / np.linalg.norm(asked), -1, 1))) < 3.0


def test_ambisonic_decoders_to_speakers_and_binaural():
    for name in ("5.1", "7.1.4"):
        layout = LAYOUTS[name]
        units = np.array([to_cartesian(*p, 1.0) if p else np.zeros(3) for p in layout.positions])
        for order in (1, 3):
            decoder = ambisonics.speaker_decoder(order, layout)
            for index in layout.speakers:
                direction = to_cartesian(*layout.positions[index], 1.0)
                feeds = decoder @ ambisonics.sh_sn3d(order, direction[None])[0]
                energy = feeds ** 2 @ units  # Gerzon's energy vector points where the sound is heard
                error = math.degrees(math.acos(np.clip(energy @ direction / np.linalg.norm(energy), -1, 1)))
                assert error < (25 if order == 1 else 12), (name, order, layout.labels[index], error)
                if order == 3 and name == "5.1":
                    assert int(np.argmax(feeds)) == index, (name, layout.labels[index])
            assert np.all(decoder[layout.labels.index("LFE")] == 0)
    x = noise(1.0)
    via = render("binaural", Trajectory.fixed(90, 0, 1), x, via="hoa3")
    assert 0.4 <= itd_ms(via) <= 0.8 and ild_db(via) > 3
    via_right = render("binaural", Trajectory.fixed(-90, 0, 1), x, via="foa")
    # first order holds the head's ITD up to about 600 Hz (kr = 1), and the level difference
    assert -0.8 <= itd_ms(via_right, below=500) <= -0.55 and ild_db(via_right) < -6


def test_vbap_loudspeaker_renders():
    x = noise(0.5)
    out = render("5.1", Trajectory.fixed(30, 0, 1), x)
    assert out.shape[1] == 6 and int(np.argmax(np.std(out, axis=0))) == 0  # L
    out = render("5.1", Trajectory.fixed(-110, 0, 1), x)
    assert int(np.argmax(np.std(out, axis=0))) == 5  # Rs
    out = render("7.1.4", Trajectory.fixed(45, 30, 1), x)
    assert LAYOUTS["7.1.4"].labels[int(np.argmax(np.std(out, axis=0)))] == "Ltf"
    out = render("stereo", Trajectory.fixed(-30, 0, 1), x)
    assert np.std(out[:, 0]) < 1e-6 < np.std(out[:, 1])
    rng = np.random.default_rng(0)
    for layout in LAYOUTS.values():
        gains = layout.vbap(to_cartesian(rng.uniform(-180, 180, 200), rng.uniform(-90, 90, 200), 1.0))
        assert np.allclose(np.sum(gains ** 2, axis=1), 1.0)  # constant power everywhere


def test_rooms_add_reflections_and_a_tail():
    x = np.zeros(SR // 2, np.float32)
    x[100] = 1.0
    dry = render("binaural", Trajectory.fixed(0, 0, 1), x)
    for room, reverberant, more in (("small", True, 1.5), ("hall", True, 1.1), ("outdoor", False, 1.02)):
        wet = render("binaural", Trajectory.fixed(0, 0, 1), x, room=room)
        assert len(wet) > len(dry) if reverberant else len(wet) >= len(dry)
        late = wet[int(0.05 * SR) :]  # after the direct sound and the first reflections
        assert (np.sum(late ** 2) > 1e-3 * np.sum(wet ** 2)) == reverberant
        assert np.sum(wet ** 2) > more * np.sum(dry ** 2)  # reflections (and the tail: 1/rc^2)
