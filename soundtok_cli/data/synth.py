"""Procedural sound synthesis (numpy only, seeded, deterministic).

Every generator has the signature ``gen(rng, sample_rate, duration, **params)`` and returns
``(samples, caption)``: float32 mono samples of exactly ``round(duration * sample_rate)`` samples,
peak-normalised to about 0.9 (``random_sound`` then applies a random level), and a short, honest
caption of what was synthesised.  ``random_sound`` picks a generator with random parameters and
optionally mixes a second sound, simulates distance or adds reverb, changing the caption to match.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

Sound = tuple[np.ndarray, str]

# --------------------------------------------------------------------------------------------
# helpers


def _n(sample_rate: int, duration: float) -> int:
    return max(1, int(round(duration * sample_rate)))


def _t(n: int, sample_rate: int) -> np.ndarray:
    return np.arange(n, dtype=np.float64) / sample_rate


def _band_gain(f: np.ndarray, lo: float | None, hi: float | None, order: int = 2) -> np.ndarray:
    """Butterworth-like magnitude response evaluated on frequencies ``f`` (Hz)."""
    f = np.maximum(f, 1e-3)
    g = np.ones_like(f)
    if lo:
        g = g / np.sqrt(1.0 + (lo / f) ** (2 * order))
    if hi:
        g = g / np.sqrt(1.0 + (f / hi) ** (2 * order))
    return g


def _filter(x: np.ndarray, sample_rate: int, lo: float | None = None, hi: float | None = None,
            order: int = 2) -> np.ndarray:
    """Zero-phase band/low/high-pass filter applied in the frequency domain."""
    if len(x) < 2:
        return x.copy()
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(len(x), 1.0 / sample_rate)
    return np.fft.irfft(spec * _band_gain(f, lo, hi, order), len(x))


def _colored(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Noise with power spectrum ~ 1/f**exponent (0 white, 1 pink, 2 brown), unit RMS."""
    if n < 4:
        return rng.standard_normal(n)
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    spec *= f ** (-exponent / 2.0)
    spec[0] = 0.0
    x = np.fft.irfft(spec, n)
    return x / (np.sqrt(np.mean(x ** 2)) + 1e-12)


def white(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.standard_normal(n)


def pink(rng: np.random.Generator, n: int) -> np.ndarray:
    return _colored(rng, n, 1.0)


def brown(rng: np.random.Generator, n: int) -> np.ndarray:
    return _colored(rng, n, 2.0)


def _smooth_random(rng: np.random.Generator, n: int, sample_rate: int, rate_hz: float) -> np.ndarray:
    """Smooth random curve in [0, 1] varying at about ``rate_hz`` (cosine-interpolated knots)."""
    k = max(2, int(np.ceil(n / sample_rate * rate_hz)) + 2)
    knots = rng.random(k)
    pos = np.linspace(0, k - 1, n)
    i = np.minimum(np.floor(pos).astype(int), k - 2)
    frac = pos - i
    w = 0.5 - 0.5 * np.cos(np.pi * frac)
    return knots[i] * (1 - w) + knots[i + 1] * w


def _decay(n: int, sample_rate: int, tau: float, attack: float = 0.001) -> np.ndarray:
    t = _t(n, sample_rate)
    env = np.exp(-t / max(tau, 1e-5))
    a = max(1, int(attack * sample_rate))
    env[:a] *= np.linspace(0.0, 1.0, a, endpoint=False) if a > 1 else 1.0
    return env


def _add(out: np.ndarray, ev: np.ndarray, pos: int, gain: float = 1.0) -> None:
    if pos >= len(out) or pos + len(ev) <= 0:
        return
    start = max(pos, 0)
    ev = ev[start - pos:]
    m = min(len(ev), len(out) - start)
    out[start:start + m] += gain * ev[:m]


def _fade(x: np.ndarray, sample_rate: int, fade_s: float = 0.01) -> np.ndarray:
    m = min(len(x) // 2, int(fade_s * sample_rate))
    if m > 1:
        ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, m))
        x[:m] *= ramp
        x[-m:] *= ramp[::-1]
    return x


def _norm(x: np.ndarray, peak: float = 0.9) -> np.ndarray:
    x = np.nan_to_num(np.asarray(x, dtype=np.float64))
    p = float(np.max(np.abs(x))) if len(x) else 0.0
    if p > 0:
        x = x * (peak / p)
    return x.astype(np.float32)


def _finish(x: np.ndarray, sample_rate: int, caption: str, fade_s: float = 0.005) -> Sound:
    return _norm(_fade(np.asarray(x, dtype=np.float64), sample_rate, fade_s)), caption


def _midi_hz(note: float) -> float:
    return 440.0 * 2.0 ** ((note - 69) / 12.0)


_NOTE_NAMES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]


def note_name(note: int) -> str:
    return f"{_NOTE_NAMES[note % 12]}{note // 12 - 1}"


def _partials(t: np.ndarray, freqs, amps, taus, sample_rate: int, phase_rng=None) -> np.ndarray:
    out = np.zeros_like(t)
    nyq = sample_rate / 2 * 0.98
    for k, (f, a, tau) in enumerate(zip(freqs, amps, taus)):
        if f >= nyq or f <= 0:
            continue
        ph = phase_rng.random() * 2 * np.pi if phase_rng is not None else 0.0
        out += a * np.sin(2 * np.pi * f * t + ph) * np.exp(-t / tau)
    return out


def _resonate(x: np.ndarray, sample_rate: int, freqs, qs, gains) -> np.ndarray:
    """Sum of resonant peaks (modal body) applied as a frequency-domain filter."""
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(len(x), 1.0 / sample_rate)
    h = np.zeros_like(f)
    for fc, q, g in zip(freqs, qs, gains):
        bw = fc / q
        h += g / (1.0 + ((f - fc) / (bw / 2)) ** 2)
    return np.fft.irfft(spec * h, len(x))


def reverb(rng: np.random.Generator, x: np.ndarray, sample_rate: int, rt60: float,
           wet: float = 0.35) -> np.ndarray:
    """Convolve with a synthetic exponentially decaying noise tail (length preserved)."""
    ir_n = max(16, int(rt60 * sample_rate))
    t = _t(ir_n, sample_rate)
    ir = rng.standard_normal(ir_n) * np.exp(-6.91 * t / rt60)
    # darker tail: low-pass the later part by mixing a filtered copy that grows over time
    ir_dark = _filter(ir, sample_rate, hi=3000.0, order=1)
    mix = np.minimum(1.0, t / rt60 * 2)
    ir = ir * (1 - mix) + ir_dark * mix
    ir[: int(0.002 * sample_rate)] = 0.0
    ir /= np.sqrt(np.sum(ir ** 2)) + 1e-12
    nfft = 1 << int(np.ceil(np.log2(len(x) + ir_n)))
    y = np.fft.irfft(np.fft.rfft(x, nfft) * np.fft.rfft(ir, nfft), nfft)[: len(x)]
    dry_rms = np.sqrt(np.mean(x ** 2)) + 1e-12
    y *= dry_rms / (np.sqrt(np.mean(y ** 2)) + 1e-12)
    return (1 - wet) * x + wet * y


def _swept_bandpass(x: np.ndarray, sample_rate: int, centres, centre_log2: np.ndarray, width: float,
                    spread: float, order: int) -> np.ndarray:
    """x through a band-pass whose centre moves (`centre_log2`: log2 Hz, per sample): a sum of
    fixed bands (`centres`, each from centre / spread to centre x spread), each weighted by a
    Gaussian of `width` octaves around the moving centre."""
    out = np.zeros(len(x))
    for fc in centres:
        band = _filter(x, sample_rate, lo=fc / spread, hi=fc * spread, order=order)
        out += band * np.exp(-0.5 * ((np.log2(fc) - centre_log2) / width) ** 2)
    return out


# --------------------------------------------------------------------------------------------
# generators


def rain(rng: np.random.Generator, sample_rate: int, duration: float, intensity: str | None = None) -> Sound:
    n = _n(sample_rate, duration)
    intensity = intensity or rng.choice(["light", "moderate", "heavy"])
    rate = {"light": 40, "moderate": 200, "heavy": 900}[intensity] * rng.uniform(0.6, 1.5)
    bed_gain = {"light": 0.15, "moderate": 0.35, "heavy": 0.7}[intensity]
    bed = _filter(pink(rng, n) * 0.5 + white(rng, n) * 0.5, sample_rate, lo=400, hi=16000, order=1)
    bed *= 0.8 + 0.4 * _smooth_random(rng, n, sample_rate, 0.5)
    out = bed_gain * bed / (np.abs(bed).max() + 1e-9)
    drops = rng.poisson(rate * duration)
    for _ in range(drops):
        dn = int(rng.uniform(0.002, 0.02) * sample_rate)
        dn = max(8, dn)
        tt = _t(dn, sample_rate)
        f0 = rng.uniform(1500, 9000)
        chirp = np.sin(2 * np.pi * f0 * tt * (1 + rng.uniform(0, 2) * tt / tt[-1]))
        ev = (0.6 * chirp + 0.4 * rng.standard_normal(dn)) * np.exp(-tt / (dn / sample_rate / 4))
        _add(out, ev, int(rng.integers(0, n)), rng.uniform(0.05, 0.6) * rng.random() ** 2)
    return _finish(out, sample_rate, f"{intensity} rain" if intensity != "moderate" else "rain")


def wind(rng: np.random.Generator, sample_rate: int, duration: float, strength: str | None = None) -> Sound:
    n = _n(sample_rate, duration)
    strength = strength or rng.choice(["gentle", "gusty", "howling"])
    src = pink(rng, n)
    # time-varying band-pass: mix of log-spaced bands, weighted around a moving centre
    centres = np.geomspace(150, 6000, 10)
    centre_curve = np.log2(200 + 2500 * _smooth_random(rng, n, sample_rate, 0.3 if strength == "gentle" else 0.8))
    width = 0.7 if strength == "howling" else 1.4
    out = _swept_bandpass(src, sample_rate, centres, centre_curve, width, 1.3, 2 if strength == "howling" else 1)
    gust_rate = {"gentle": 0.2, "gusty": 0.6, "howling": 0.4}[strength]
    env = 0.25 + _smooth_random(rng, n, sample_rate, gust_rate) ** 2
    out *= env
    out += 0.02 * _filter(white(rng, n), sample_rate, lo=4000) * env
    cap = {"gentle": "gentle wind", "gusty": "gusty wind", "howling": "howling wind"}[strength]
    return _finish(out, sample_rate, cap, 0.2)


def thunder(rng: np.random.Generator, sample_rate: int, duration: float, distance: str | None = None) -> Sound:
    n = _n(sample_rate, duration)
    distance = distance or rng.choice(["distant", "near"])
    out = np.zeros(n)
    start = int(rng.uniform(0.0, 0.25) * n)
    length = n - start
    t = _t(length, sample_rate)
    rumble = brown(rng, length)
    if distance == "near":
        crack_n = int(0.15 * sample_rate)
        crack = white(rng, crack_n) * _decay(crack_n, sample_rate, 0.03, 0.0005)
        # several close strokes
        for k in range(int(rng.integers(1, 4))):
            _add(out, crack, start + int(rng.uniform(0, 0.12) * sample_rate), rng.uniform(0.5, 1.0))
        env = np.exp(-t / rng.uniform(0.8, 2.5)) * (0.6 + 0.8 * _smooth_random(rng, length, sample_rate, 6))
        body = _filter(rumble, sample_rate, lo=20, hi=3000, order=1) * env
        _add(out, body / (np.abs(body).max() + 1e-9), start, 0.8)
        cap = "close thunder clap"
    else:
        attack = rng.uniform(0.3, 1.0)
        env = np.minimum(1.0, t / attack) * np.exp(-t / rng.uniform(1.5, 4.0))
        env *= 0.5 + _smooth_random(rng, length, sample_rate, 3)
        body = _filter(rumble, sample_rate, lo=20, hi=rng.uniform(200, 500), order=2) * env
        _add(out, body, start)
        cap = "distant thunder rumble"
    return _finish(out, sample_rate, cap, 0.02)


def surf(rng: np.random.Generator, sample_rate: int, duration: float) -> Sound:
    n = _n(sample_rate, duration)
    t = _t(n, sample_rate)
    period = rng.uniform(4.0, 9.0)
    phase = rng.uniform(0, period)
    ph = ((t + phase) % period) / period
    # each wave: slow build, crash, long foamy wash
    env = np.where(ph < 0.35, (ph / 0.35) ** 2, np.exp(-(ph - 0.35) * 5.0))
    env = np.convolve(env, np.ones(2048) / 2048, mode="same")
    low = _filter(brown(rng, n), sample_rate, lo=30, hi=600, order=1)
    foam = _filter(pink(rng, n), sample_rate, lo=800, hi=18000, order=1)
    hiss = foam * (env ** 2.5)
    out = 0.5 * low * (0.3 + env) / (np.abs(low).max() + 1e-9) + 0.9 * hiss / (np.abs(hiss).max() + 1e-9)
    return _finish(out, sample_rate, "ocean waves breaking on a shore", 0.3)


def fire(rng: np.random.Generator, sample_rate: int, duration: float) -> Sound:
    n = _n(sample_rate, duration)
    roar = _filter(brown(rng, n), sample_rate, lo=40, hi=400) * (0.6 + 0.4 * _smooth_random(rng, n, sample_rate, 2))
    out = 0.35 * roar / (np.abs(roar).max() + 1e-9)
    hiss = _filter(white(rng, n), sample_rate, lo=2000, hi=20000, order=1)
    out += 0.05 * hiss * _smooth_random(rng, n, sample_rate, 4)
    rate = rng.uniform(8, 40)
    for _ in range(rng.poisson(rate * duration)):
        cn = int(rng.uniform(0.0005, 0.006) * sample_rate) + 4
        ev = white(rng, cn) * _decay(cn, sample_rate, cn / sample_rate / 3, 0.0)
        ev = _filter(ev, sample_rate, lo=rng.uniform(500, 3000), order=1)
        pos = int(rng.integers(0, n))
        _add(out, ev, pos, rng.uniform(0.1, 1.0) ** 1.5)
        # pops come in small bursts
        for _ in range(int(rng.integers(0, 4))):
            _add(out, ev * rng.uniform(0.2, 0.7), pos + int(rng.uniform(0.005, 0.04) * sample_rate))
    return _finish(out, sample_rate, "crackling fire", 0.1)


def birdsong(rng: np.random.Generator, sample_rate: int, duration: float) -> Sound:
    n = _n(sample_rate, duration)
    out = np.zeros(n)
    n_birds = int(rng.integers(1, 4))
    for b in range(n_birds):
        base = rng.uniform(2000, 6500)
        sweep = rng.uniform(-0.6, 0.8)
        chirp_len = rng.uniform(0.03, 0.15)
        trill = rng.random() < 0.4
        gain = rng.uniform(0.3, 1.0)
        tpos = rng.uniform(0, 0.5)
        while tpos < duration:
            phrase = int(rng.integers(2, 9))
            for _ in range(phrase):
                cn = int(chirp_len * rng.uniform(0.7, 1.3) * sample_rate)
                tt = _t(cn, sample_rate)
                u = tt / tt[-1] if cn > 1 else tt
                f = base * (1 + sweep * u + 0.1 * np.sin(2 * np.pi * u * rng.uniform(0.5, 3)))
                if trill:
                    f *= 1 + 0.06 * np.sin(2 * np.pi * rng.uniform(40, 90) * tt)
                f = np.minimum(f, sample_rate / 2 * 0.45)
                phase = 2 * np.pi * np.cumsum(f) / sample_rate
                ev = (np.sin(phase) + 0.2 * np.sin(2 * phase)) * np.sin(np.pi * u) ** 2
                _add(out, ev, int(tpos * sample_rate), gain * rng.uniform(0.6, 1.0))
                tpos += cn / sample_rate + rng.uniform(0.02, 0.12)
            tpos += rng.uniform(0.4, 2.5)
    cap = "a bird chirping" if n_birds == 1 else "birds chirping and singing"
    return _finish(out, sample_rate, cap)


def engine(rng: np.random.Generator, sample_rate: int, duration: float, mode: str | None = None) -> Sound:
    n = _n(sample_rate, duration)
    t = _t(n, sample_rate)
    mode = mode or rng.choice(["idling", "revving", "steady"])
    cyl = int(rng.choice([2, 4, 6, 8]))
    rpm0 = rng.uniform(700, 1000) if mode == "idling" else rng.uniform(1500, 3000)
    if mode == "revving":
        curve = _smooth_random(rng, n, sample_rate, 0.7)
        rpm = rpm0 + curve * rng.uniform(1500, 4000)
    else:
        rpm = rpm0 * (1 + 0.02 * (_smooth_random(rng, n, sample_rate, 3) - 0.5))
    fire_hz = rpm / 60 * cyl / 2
    phase = 2 * np.pi * np.cumsum(fire_hz) / sample_rate
    out = np.zeros(n)
    for h in range(1, 40):
        amp = 1.0 / h ** rng.uniform(0.8, 1.4)
        mask = (fire_hz * h) < sample_rate / 2 * 0.95
        out += amp * np.sin(h * phase + rng.uniform(0, 2 * np.pi)) * mask
    out = _filter(out, sample_rate, lo=25, hi=rng.uniform(1500, 5000), order=1)
    noise = _filter(white(rng, n), sample_rate, lo=200, hi=8000, order=1) * (0.5 + 0.5 * np.sin(phase) ** 2)
    out = out / (np.abs(out).max() + 1e-9) + 0.15 * noise / (np.abs(noise).max() + 1e-9)
    cap = {"idling": "an engine idling", "revving": "an engine revving", "steady": "engine hum"}[mode]
    return _finish(out, sample_rate, cap, 0.1)


_SURFACES = {
    # surface: (low cut, high cut, body resonances, decay s, noise/gravel amount)
    "wood": (80, 6000, [180, 420, 950], 0.05, 0.2),
    "concrete": (100, 9000, [], 0.02, 0.3),
    "gravel": (300, 16000, [], 0.045, 1.0),
    "snow": (500, 12000, [], 0.09, 0.8),
}


def footsteps(rng: np.random.Generator, sample_rate: int, duration: float, surface: str | None = None) -> Sound:
    n = _n(sample_rate, duration)
    surface = surface or rng.choice(list(_SURFACES))
    lo, hi, res, tau, grit = _SURFACES[surface]
    out = np.zeros(n)
    interval = rng.uniform(0.4, 0.7) if rng.random() < 0.7 else rng.uniform(0.25, 0.35)
    running = interval < 0.38
    tpos = rng.uniform(0.05, 0.3)
    while tpos < duration:
        sn = int((tau * 4 + 0.06) * sample_rate)
        step = np.zeros(sn)
        for part, delay, g in (("heel", 0.0, 1.0), ("toe", rng.uniform(0.03, 0.08), 0.6)):
            pn = sn - int(delay * sample_rate)
            ev = white(rng, pn) * _decay(pn, sample_rate, tau * rng.uniform(0.7, 1.3), 0.001)
            if grit > 0.5:  # granular crunch
                ev *= rng.random(pn) < 0.3
            _add(step, ev, int(delay * sample_rate), g)
        step = _filter(step, sample_rate, lo=lo, hi=hi, order=2)
        if res:
            step = step + 2 * _resonate(step, sample_rate, res, [8] * len(res), [1.0] * len(res))
        _add(out, step, int(tpos * sample_rate), rng.uniform(0.6, 1.0))
        tpos += interval * rng.uniform(0.92, 1.08)
    cap = f"{'running ' if running else ''}footsteps on {surface}"
    return _finish(out, sample_rate, cap)


def door_knock(rng: np.random.Generator, sample_rate: int, duration: float) -> Sound:
    n = _n(sample_rate, duration)
    out = np.zeros(n)
    modes = np.array([rng.uniform(90, 160), rng.uniform(200, 320), rng.uniform(450, 700), rng.uniform(900, 1400)])
    knocks = int(rng.integers(2, 6))
    gap = rng.uniform(0.12, 0.25)
    tpos = rng.uniform(0.05, 0.3)
    groups = 1 if rng.random() < 0.6 else 2
    for g in range(groups):
        for k in range(knocks):
            kn = int(0.25 * sample_rate)
            tt = _t(kn, sample_rate)
            body = _partials(tt, modes * rng.uniform(0.97, 1.03), [1.0, 0.6, 0.35, 0.2],
                             [0.05, 0.035, 0.02, 0.012], sample_rate, rng)
            tap = _filter(white(rng, kn) * _decay(kn, sample_rate, 0.002, 0.0), sample_rate, lo=500, hi=8000)
            _add(out, body + 0.4 * tap, int(tpos * sample_rate), rng.uniform(0.7, 1.0))
            tpos += gap * rng.uniform(0.85, 1.15)
        tpos += rng.uniform(0.6, 1.2)
    return _finish(out, sample_rate, "knocking on a wooden door")


_BELL_RATIOS = {
    "church bell": [0.5, 1.0, 1.19, 1.5, 2.0, 2.51, 2.66, 3.01, 4.1, 5.4],
    "small bell": [1.0, 2.76, 5.40, 8.93, 13.34],
    "wind chimes": [1.0, 2.76, 5.40, 8.93],
    "singing bowl": [1.0, 2.71, 5.15, 8.43],
}


def bell(rng: np.random.Generator, sample_rate: int, duration: float, kind: str | None = None) -> Sound:
    n = _n(sample_rate, duration)
    kind = kind or rng.choice(list(_BELL_RATIOS))
    ratios = np.array(_BELL_RATIOS[kind]) * rng.uniform(0.985, 1.015, len(_BELL_RATIOS[kind]))
    out = np.zeros(n)
    if kind == "wind chimes":
        pitches = rng.uniform(900, 2500, int(rng.integers(4, 7)))
        tpos = 0.0
        while tpos < duration:
            f0 = rng.choice(pitches)
            en = n - int(tpos * sample_rate)
            tt = _t(en, sample_rate)
            amps = 1.0 / (np.arange(len(ratios)) + 1) ** 1.2
            taus = 2.5 / (np.arange(len(ratios)) + 1)
            _add(out, _partials(tt, f0 * ratios, amps, taus, sample_rate, rng), int(tpos * sample_rate),
                 rng.uniform(0.2, 1.0))
            tpos += rng.exponential(0.35)
        cap = "wind chimes tinkling"
    else:
        f0 = {"church bell": rng.uniform(150, 500), "small bell": rng.uniform(800, 3000),
              "singing bowl": rng.uniform(200, 600)}[kind]
        strikes = 1 if kind == "singing bowl" else int(rng.integers(1, 4))
        period = rng.uniform(0.8, 2.0)
        base_tau = {"church bell": 3.0, "small bell": 1.2, "singing bowl": 6.0}[kind]
        for s in range(strikes):
            pos = int(s * period * sample_rate)
            tt = _t(n - pos, sample_rate) if pos < n else _t(0, sample_rate)
            amps = rng.uniform(0.3, 1.0, len(ratios)) / (np.arange(len(ratios)) + 1) ** 0.5
            taus = base_tau / (ratios / ratios.min()) ** 0.6
            ev = _partials(tt, f0 * ratios, amps, taus, sample_rate, rng)
            strike_n = min(len(tt), int(0.02 * sample_rate))
            if strike_n > 16:  # the clapper's short metallic click
                click = white(rng, strike_n) * _decay(strike_n, sample_rate, 0.002, 0.0)
                ev[:strike_n] += 0.15 * _filter(click, sample_rate, lo=1000, hi=10000, order=1)
            _add(out, ev, pos)
        cap = {"church bell": "a church bell ringing", "small bell": "a small bell ringing",
               "singing bowl": "a singing bowl resonating"}[kind]
        if strikes > 1 and kind != "singing bowl":
            cap = cap.replace("ringing", f"ringing {strikes} times")
    return _finish(out, sample_rate, cap, 0.003)


def siren(rng: np.random.Generator, sample_rate: int, duration: float, mode: str | None = None) -> Sound:
    n = _n(sample_rate, duration)
    t = _t(n, sample_rate)
    mode = mode or rng.choice(["wail", "yelp", "hi-lo"])
    lo, hi = rng.uniform(500, 800), rng.uniform(1200, 1800)
    if mode == "wail":
        rate = rng.uniform(0.15, 0.35)
        f = lo + (hi - lo) * (0.5 - 0.5 * np.cos(2 * np.pi * rate * t))
        cap = "a siren wailing"
    elif mode == "yelp":
        rate = rng.uniform(2.5, 4.5)
        f = lo + (hi - lo) * ((t * rate) % 1.0)
        cap = "a siren yelping"
    else:
        rate = rng.uniform(0.8, 1.6)
        f = np.where(((t * rate) % 1.0) < 0.5, hi * 0.9, lo * 1.1)
        f = np.convolve(f, np.ones(64) / 64, mode="same")
        cap = "a two-tone hi-lo siren"
    phase = 2 * np.pi * np.cumsum(f) / sample_rate
    out = np.zeros(n)
    for h in range(1, 12):
        out += np.sin(h * phase) / h ** 1.3 * ((f * h) < sample_rate / 2 * 0.95)
    out = _filter(out, sample_rate, lo=300, hi=7000, order=1)
    if rng.random() < 0.5:  # passing by: doppler-free level swell
        env = np.exp(-((t - rng.uniform(0.3, 0.7) * duration) / (0.35 * duration)) ** 2)
        out *= 0.1 + env
        cap += " as it passes by"
    return _finish(out, sample_rate, cap, 0.05)


def hum(rng: np.random.Generator, sample_rate: int, duration: float, mains: int | None = None) -> Sound:
    n = _n(sample_rate, duration)
    t = _t(n, sample_rate)
    mains = int(mains or rng.choice([50, 60]))
    buzz = rng.random() < 0.5
    out = np.zeros(n)
    nh = 120 if buzz else 8
    for h in range(1, nh + 1):
        f = mains * h
        if f >= sample_rate / 2 * 0.95:
            break
        amp = (1.0 / h ** 0.7) if buzz else (1.0 / h ** 2) * (2.0 if h % 2 == 0 else 1.0)
        out += amp * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
    out *= 1 + 0.05 * (_smooth_random(rng, n, sample_rate, 1.5) - 0.5)
    out += 0.01 * white(rng, n) * np.abs(out).max()
    cap = f"electrical buzz at {mains} Hz" if buzz else f"low electrical hum at {mains} Hz"
    return _finish(out, sample_rate, cap, 0.05)


def ui_beeps(rng: np.random.Generator, sample_rate: int, duration: float, mode: str | None = None) -> Sound:
    n = _n(sample_rate, duration)
    out = np.zeros(n)
    mode = mode or rng.choice(["beep", "chime", "clicks", "error"])
    if mode == "clicks":
        tpos = rng.uniform(0.05, 0.3)
        count = 0
        while tpos < duration:
            cn = int(0.004 * sample_rate)
            ev = white(rng, cn) * _decay(cn, sample_rate, 0.0007, 0.0)
            ev = _filter(ev, sample_rate, lo=1500, order=1)
            _add(out, ev, int(tpos * sample_rate))
            count += 1
            tpos += rng.uniform(0.08, 0.9)
        cap = "mouse clicks" if count > 1 else "a click"
    else:
        wave = rng.choice(["sine", "square"])
        if mode == "beep":
            notes = [int(rng.integers(72, 96))] * int(rng.integers(1, 4))
            cap = "short electronic beep" if len(notes) == 1 else f"{len(notes)} short electronic beeps"
        elif mode == "chime":
            base = int(rng.integers(67, 84))
            step_sets = [[0, 4, 7], [0, 7], [0, 5, 9, 12], [7, 0]]
            steps = step_sets[int(rng.integers(len(step_sets)))]
            notes = [base + s for s in steps]
            cap = "a notification chime"
        else:
            base = int(rng.integers(55, 70))
            notes = [base + 3, base]
            cap = "an error beep"
        tpos = rng.uniform(0.05, 0.2)
        dur = rng.uniform(0.06, 0.2)
        for nt in notes:
            bn = int(dur * sample_rate)
            tt = _t(bn, sample_rate)
            f = _midi_hz(nt)
            if wave == "sine":
                ev = np.sin(2 * np.pi * f * tt)
            else:
                ev = sum(np.sin(2 * np.pi * f * k * tt) / k for k in range(1, 40, 2) if f * k < sample_rate / 2 * 0.95)
            env = np.minimum(1, tt / 0.003) * (np.exp(-tt / (dur * 0.6)) if mode == "chime" else 1.0)
            ev = _fade(ev * env, sample_rate, 0.004)
            _add(out, ev, int(tpos * sample_rate))
            tpos += dur + rng.uniform(0.02, 0.12)
        if wave == "square" and mode != "error":
            cap = cap.replace("electronic", "square-wave")
    return _finish(out, sample_rate, cap, 0.002)


def whoosh(rng: np.random.Generator, sample_rate: int, duration: float) -> Sound:
    n = _n(sample_rate, duration)
    t = _t(n, sample_rate)
    centre_t = rng.uniform(0.3, 0.7) * duration
    width = rng.uniform(0.08, 0.3) * duration
    env = np.exp(-0.5 * ((t - centre_t) / width) ** 2)
    src = white(rng, n)
    centres = np.geomspace(200, 16000, 12)
    f_lo, f_hi = rng.uniform(300, 1000), rng.uniform(4000, 14000)
    rising = rng.random() < 0.5
    u = np.clip((t - centre_t + 2 * width) / (4 * width), 0, 1)
    if not rising:
        u = 1 - u
    centre_curve = np.log2(f_lo) + (np.log2(f_hi) - np.log2(f_lo)) * u
    out = _swept_bandpass(src, sample_rate, centres, centre_curve, 0.8, 1.25, 2) * env
    return _finish(out, sample_rate, "a whoosh" if rng.random() < 0.5 else "a swoosh passing by")


def plucked_string(rng: np.random.Generator, sample_rate: int, duration: float, note: int | None = None) -> Sound:
    """Karplus-Strong plucked string, one or a few notes."""
    n = _n(sample_rate, duration)
    out = np.zeros(n)
    notes = [int(note)] if note is not None else list(rng.integers(40, 76, int(rng.integers(1, 6))))
    brightness = rng.uniform(0.3, 1.0)
    step = duration / len(notes)
    for i, nt in enumerate(notes):
        f = _midi_hz(nt)
        period = max(2, int(round(sample_rate / f)))
        length = n - int(i * step * sample_rate)
        if length <= 0:
            continue
        buf = rng.uniform(-1, 1, period)
        if brightness < 1:
            buf = _filter(buf, sample_rate, hi=brightness * 12000 + 500, order=1) if period > 8 else buf
        decay = 0.996 + 0.0035 * rng.random()
        nblocks = length // period + 2
        y = np.empty(nblocks * period)
        y[:period] = buf
        prev = buf
        for b in range(1, nblocks):
            shifted = np.concatenate(([prev[-1]], prev[:-1]))
            cur = decay * 0.5 * (prev + shifted)
            y[b * period:(b + 1) * period] = cur
            prev = cur
        _add(out, y[:length], int(i * step * sample_rate), rng.uniform(0.6, 1.0))
    if len(notes) == 1:
        cap = f"a plucked string note {note_name(notes[0])}"
    else:
        cap = f"{len(notes)} plucked string notes"
    return _finish(out, sample_rate, cap, 0.002)


def _kick(rng, sample_rate):
    kn = int(0.5 * sample_rate)
    tt = _t(kn, sample_rate)
    f = 45 + rng.uniform(80, 160) * np.exp(-tt / 0.03)
    ev = np.sin(2 * np.pi * np.cumsum(f) / sample_rate) * np.exp(-tt / rng.uniform(0.12, 0.3))
    click = _filter(white(rng, kn) * _decay(kn, sample_rate, 0.002, 0.0), sample_rate, lo=1000)
    return ev + 0.3 * click


def _snare(rng, sample_rate):
    sn = int(0.4 * sample_rate)
    tt = _t(sn, sample_rate)
    tone = np.sin(2 * np.pi * rng.uniform(170, 240) * tt) * np.exp(-tt / 0.06)
    rattle = _filter(white(rng, sn), sample_rate, lo=1500, hi=18000, order=1) * np.exp(-tt / rng.uniform(0.08, 0.2))
    return 0.6 * tone + rattle


def _hat(rng, sample_rate, open_: bool = False):
    hn = int((0.5 if open_ else 0.12) * sample_rate)
    tt = _t(hn, sample_rate)
    metal = sum(np.sign(np.sin(2 * np.pi * f * tt)) for f in (205.3, 304.4, 369.6, 522.7, 540.0, 800.0))
    noise = white(rng, hn)
    x = _filter(0.5 * metal + noise, sample_rate, lo=7000, order=2)
    return x * np.exp(-tt / (0.15 if open_ else 0.025))


def drums(rng: np.random.Generator, sample_rate: int, duration: float, mode: str | None = None) -> Sound:
    n = _n(sample_rate, duration)
    out = np.zeros(n)
    mode = mode or rng.choice(["kick", "snare", "hihat", "beat", "beat"])
    if mode in ("kick", "snare", "hihat"):
        ev = {"kick": _kick, "snare": _snare, "hihat": _hat}[mode](rng, sample_rate)
        hits = int(rng.integers(1, 5))
        gap = rng.uniform(0.3, 0.8)
        for h in range(hits):
            _add(out, ev, int((0.05 + h * gap) * sample_rate), rng.uniform(0.6, 1.0))
        name = {"kick": "kick drum", "snare": "snare drum", "hihat": "hi-hat"}[mode]
        cap = f"a {name} hit" if hits == 1 else f"{hits} {name} hits"
    else:
        bpm = int(rng.integers(70, 160))
        sixteenth = 60.0 / bpm / 4
        kick_pats = [[0, 8], [0, 6, 8], [0, 10], [0, 4, 8, 12]]
        kick_pat = kick_pats[int(rng.integers(len(kick_pats)))]
        snare_pat = [4, 12]
        hat_step = int(rng.choice([1, 2, 4]))
        k, s, h, ho = _kick(rng, sample_rate), _snare(rng, sample_rate), _hat(rng, sample_rate), _hat(rng, sample_rate, True)
        step = 0
        while step * sixteenth < duration:
            pos = int(step * sixteenth * sample_rate)
            i = step % 16
            if i in kick_pat:
                _add(out, k, pos, 1.0)
            if i in snare_pat:
                _add(out, s, pos, 0.8)
            if i % hat_step == 0:
                _add(out, ho if i == 14 else h, pos, 0.35 * rng.uniform(0.7, 1.0))
            step += 1
        cap = f"a drum beat at {bpm} bpm"
    return _finish(out, sample_rate, cap, 0.002)


def noise_bed(rng: np.random.Generator, sample_rate: int, duration: float, color: str | None = None) -> Sound:
    n = _n(sample_rate, duration)
    color = color or rng.choice(["white", "pink", "brown"])
    x = {"white": white, "pink": pink, "brown": brown}[color](rng, n)
    if color == "brown":  # keep some high-frequency content audible
        x = x + 0.003 * white(rng, n)
    return _finish(x, sample_rate, f"{color} noise", 0.02)


def fm_tone(rng: np.random.Generator, sample_rate: int, duration: float) -> Sound:
    n = _n(sample_rate, duration)
    t = _t(n, sample_rate)
    nt = int(rng.integers(36, 84))
    fc = _midi_hz(nt)
    ratio = float(rng.choice([1.0, 2.0, 3.0, 1.4, 3.5, 0.5]))
    index = rng.uniform(0.5, 8.0)
    index_env = np.exp(-t / rng.uniform(0.1, 2.0))
    amp_env = np.minimum(1, t / rng.uniform(0.002, 0.2)) * np.exp(-t / rng.uniform(0.3, 4.0))
    out = np.sin(2 * np.pi * fc * t + index * index_env * np.sin(2 * np.pi * fc * ratio * t)) * amp_env
    timbre = "bell-like" if ratio not in (1.0, 2.0, 0.5) else "brassy" if index > 4 else "mellow"
    return _finish(out, sample_rate, f"a {timbre} FM synth tone {note_name(nt)}", 0.003)


def _wavetable_osc(wave: str, freq: float, n: int, sample_rate: int, phase0: float = 0.0,
                   table_size: int = 4096) -> np.ndarray:
    """Band-limited sine/sawtooth/square oscillator: one cycle with the harmonics below Nyquist."""
    k_max = max(1, int(sample_rate / 2 * 0.95 / freq))
    ph = np.arange(table_size) / table_size * 2 * np.pi
    if wave == "sine":
        ks = [1]
    elif wave == "square":
        ks = range(1, k_max + 1, 2)
    else:
        ks = range(1, k_max + 1)
    spec = np.zeros(table_size // 2 + 1, dtype=complex)
    for k in ks:
        if k < len(spec) - 1:
            spec[k] = -1j * table_size / 2 / k  # sin(k*ph)/k
    table = np.fft.irfft(spec, table_size)
    pos = (phase0 + freq * np.arange(n) / sample_rate) % 1.0 * table_size
    i = pos.astype(np.int64)
    frac = pos - i
    return table[i] * (1 - frac) + table[(i + 1) % table_size] * frac


_CHORDS = {"major": [0, 4, 7], "minor": [0, 3, 7], "dominant seventh": [0, 4, 7, 10],
           "major seventh": [0, 4, 7, 11], "minor seventh": [0, 3, 7, 10], "suspended": [0, 5, 7]}


def chord(rng: np.random.Generator, sample_rate: int, duration: float) -> Sound:
    n = _n(sample_rate, duration)
    t = _t(n, sample_rate)
    root = int(rng.integers(45, 66))
    quality = rng.choice(list(_CHORDS))
    wave = rng.choice(["sine", "sawtooth", "square"])
    pad = rng.random() < 0.5
    out = np.zeros(n)
    for iv in _CHORDS[quality]:
        f = _midi_hz(root + iv)
        for det in ((-0.003, 0.003) if pad else (0.0,)):
            out += _wavetable_osc(wave, f * (1 + det), n, sample_rate, rng.uniform(0, 1))
    attack = rng.uniform(0.3, 1.0) if pad else 0.005
    env = np.minimum(1, t / attack) * (np.ones(n) if pad else np.exp(-t / rng.uniform(0.5, 2.5)))
    out *= env
    if wave != "sine":
        out = _filter(out, sample_rate, hi=rng.uniform(2000, 16000), order=1)
    name = note_name(root)[:-1] if note_name(root)[1] != "#" else note_name(root)[:2]
    cap = f"a {name} {quality} chord {'pad ' if pad else ''}on a {wave} synth".replace("chord pad on", "chord pad on")
    return _finish(out, sample_rate, cap, 0.01)


def _bands(x: np.ndarray, sample_rate: int, edges) -> list[np.ndarray]:
    """x split into adjacent bands at `edges` (Hz): a cheap time-varying filter is a sum of these
    bands under different envelopes."""
    cuts = [None, *edges, None]
    return [_filter(x, sample_rate, lo=lo, hi=hi, order=2) for lo, hi in zip(cuts[:-1], cuts[1:])]


def _noise_burst(rng: np.random.Generator, sample_rate: int, seconds: tuple[float, float],
                 lo: tuple[float, float], hi: tuple[float, float] | None = None) -> np.ndarray:
    """A short burst of high-passed (or band-passed) noise that dies within its length: a bit of
    debris, one clap. Length and cut-offs are drawn from the given ranges (seconds, Hz)."""
    cn = int(rng.uniform(*seconds) * sample_rate)
    noise = white(rng, cn)
    burst = _filter(noise, sample_rate, lo=rng.uniform(*lo), hi=None if hi is None else rng.uniform(*hi), order=1)
    return burst * _decay(cn, sample_rate, cn / sample_rate / 4, 0.0)


DEBRIS = " with debris falling"  # an explosion's own tail, not a second sound (laid_over_bed)


def explosion(rng: np.random.Generator, sample_rate: int, duration: float, size: str | None = None) -> Sound:
    """A blast: a broadband crack whose high end dies first (the low-pass closing), a sub-bass
    thump, a rumbling tail and, sometimes, debris falling."""
    n = _n(sample_rate, duration)
    size = size or rng.choice(["small", "large", "plain"])
    out = np.zeros(n)
    start = int(rng.uniform(0.0, 0.15) * n)
    length = n - start
    t = _t(length, sample_rate)
    scale = {"small": 0.4, "plain": 1.0, "large": 2.0}[size] * rng.uniform(0.7, 1.4)
    src = 0.5 * brown(rng, length) + 0.3 * pink(rng, length) + 0.2 * white(rng, length)
    body = np.zeros(length)
    # bands from low to high decay ever faster: the sound darkens as it dies away
    for band, tau in zip(_bands(src, sample_rate, (150, 600, 2500, 8000)), (0.9, 0.5, 0.22, 0.08, 0.03)):
        env = np.minimum(1.0, t / 0.004) * np.exp(-t / (tau * scale))
        body += band / (np.abs(band).max() + 1e-9) * env * (1.0 if tau > 0.1 else 0.6)
    body *= 0.7 + 0.6 * _smooth_random(rng, length, sample_rate, 12)
    f = rng.uniform(45, 70) * np.exp(-t / 0.25) + 28
    thump = np.sin(2 * np.pi * np.cumsum(f) / sample_rate) * np.exp(-t / (0.35 * scale))
    _add(out, body / (np.abs(body).max() + 1e-9) + rng.uniform(0.4, 0.9) * thump, start)
    debris = size != "small" and rng.random() < 0.5
    if debris:
        rate = rng.uniform(15, 60)
        for _ in range(rng.poisson(rate * max(0.0, duration - 0.3))):
            at = rng.exponential(0.6 * scale) + 0.15
            if at * sample_rate >= length:
                continue
            ev = _noise_burst(rng, sample_rate, (0.003, 0.03), (800, 4000))
            _add(out, ev, start + int(at * sample_rate), 0.25 * rng.random() * np.exp(-at / scale))
    cap = {"small": "a small explosion", "large": "a large explosion", "plain": "an explosion"}[size]
    if debris:
        cap += DEBRIS
    return _finish(out, sample_rate, cap, 0.02)


def _bubble(rng: np.random.Generator, sample_rate: int, f0: float) -> np.ndarray:
    """One bubble: a sine whose pitch rises as it decays (Minnaert resonance of a shrinking bubble)."""
    tau = rng.uniform(0.004, 0.02) * (1000 / f0) ** 0.5
    bn = max(16, int(6 * tau * sample_rate))
    tt = _t(bn, sample_rate)
    f = np.minimum(f0 * (1 + rng.uniform(0.5, 4.0) * tt / (6 * tau)), sample_rate / 2 * 0.45)
    return np.sin(2 * np.pi * np.cumsum(f) / sample_rate) * np.exp(-tt / tau)


def water(rng: np.random.Generator, sample_rate: int, duration: float, mode: str | None = None) -> Sound:
    """Water made of bubbles (pitched, rising blips) over filtered noise: a flowing stream,
    bubbling, splashes or drips."""
    n = _n(sample_rate, duration)
    mode = mode or rng.choice(["stream", "bubbling", "splashing", "dripping"])
    out = np.zeros(n)
    if mode == "stream":
        bed = _filter(pink(rng, n), sample_rate, lo=rng.uniform(150, 400), hi=rng.uniform(4000, 12000), order=1)
        out += 0.4 * bed / (np.abs(bed).max() + 1e-9) * (0.8 + 0.4 * _smooth_random(rng, n, sample_rate, 1.5))
        rate, f_range, gain = rng.uniform(150, 500), (400, 4000), 0.25
    elif mode == "bubbling":
        rate, f_range, gain = rng.uniform(8, 40), (150, 1200), 0.8
    elif mode == "dripping":
        rate, f_range, gain = 0.0, (800, 3500), 0.9
        period = rng.uniform(0.25, 1.2)
        pos = rng.uniform(0, period)
        while pos < duration:
            _add(out, _bubble(rng, sample_rate, rng.uniform(*f_range)), int(pos * sample_rate), gain * rng.uniform(0.6, 1.0))
            pos += period * rng.uniform(0.8, 1.2)
    else:  # splashing: noisy bursts, each followed by a cloud of bubbles
        rate, f_range, gain = 0.0, (300, 3000), 0.3
        for _ in range(int(rng.integers(1, 4))):
            at = int(rng.uniform(0.0, 0.7) * n)
            sn = int(rng.uniform(0.15, 0.5) * sample_rate)
            burst = _filter(white(rng, sn), sample_rate, lo=300, hi=rng.uniform(6000, 14000), order=1)
            _add(out, burst * _decay(sn, sample_rate, sn / sample_rate / 4, 0.003), at, rng.uniform(0.5, 1.0))
            for _ in range(int(rng.integers(20, 80))):
                _add(out, _bubble(rng, sample_rate, rng.uniform(*f_range)),
                     at + int(rng.exponential(0.12) * sample_rate), gain * rng.random())
    for _ in range(rng.poisson(rate * duration)):
        f0 = float(np.exp(rng.uniform(np.log(f_range[0]), np.log(f_range[1]))))
        _add(out, _bubble(rng, sample_rate, f0), int(rng.integers(0, n)), gain * rng.random() ** 1.5)
    if mode != "stream":
        out += 0.01 * _filter(white(rng, n), sample_rate, lo=2000, order=1)
    cap = {"stream": "flowing water, a stream", "bubbling": "water bubbling",
           "splashing": "water splashing", "dripping": "water dripping"}[mode]
    return _finish(out, sample_rate, cap, 0.05)


def machinery(rng: np.random.Generator, sample_rate: int, duration: float, mode: str | None = None) -> Sound:
    """Machines: a motor's rotation and whine under broadband noise, optionally with a working
    cycle of metallic impacts and air bursts (a press, a conveyor, a pump)."""
    n = _n(sample_rate, duration)
    t = _t(n, sample_rate)
    mode = mode or rng.choice(["humming", "clanking", "whirring", "pumping"])
    rot = rng.uniform(15, 60)
    speed = np.ones(n)
    if mode == "whirring":  # an electric motor spinning up or down
        ramp = np.clip(t / rng.uniform(0.5, max(0.6, duration)), 0, 1)
        speed = 0.3 + 0.7 * (ramp if rng.random() < 0.5 else 1 - ramp)
    phase = 2 * np.pi * np.cumsum(rot * speed) / sample_rate
    motor = sum(np.sin(h * phase + rng.uniform(0, 2 * np.pi)) / h for h in range(1, 12))
    whine_h = rng.uniform(8, 40)
    whine = np.sin(whine_h * phase) + 0.3 * np.sin(2 * whine_h * phase)
    noise = _filter(pink(rng, n), sample_rate, lo=60, hi=rng.uniform(3000, 9000), order=1)
    noise *= 0.6 + 0.4 * np.sin(phase) ** 2
    out = (0.5 * motor / (np.abs(motor).max() + 1e-9) + rng.uniform(0.05, 0.4) * whine
           + 0.35 * noise / (np.abs(noise).max() + 1e-9))
    if mode in ("clanking", "pumping"):
        period = rng.uniform(0.3, 1.2)
        hit_n = int(0.4 * sample_rate)
        tt = _t(hit_n, sample_rate)
        modes = rng.uniform(300, 4000, size=6)
        clank = _partials(tt, modes, rng.uniform(0.3, 1.0, 6), rng.uniform(0.02, 0.15, 6), sample_rate, rng)
        thump = np.sin(2 * np.pi * rng.uniform(50, 90) * tt) * np.exp(-tt / 0.06)
        hiss_n = int(rng.uniform(0.1, 0.3) * sample_rate)
        hiss = _filter(white(rng, hiss_n), sample_rate, lo=2000, order=1) * np.hanning(hiss_n)
        offsets = sorted(rng.uniform(0, period, size=int(rng.integers(1, 4))))
        pos = rng.uniform(0, period)
        while pos < duration:
            for k, off in enumerate(offsets):
                at = int((pos + off) * sample_rate)
                if mode == "clanking":
                    _add(out, clank if k % 2 == 0 else thump, at, rng.uniform(0.6, 1.0))
                else:
                    _add(out, thump, at, 1.0)
                    _add(out, hiss, at + int(0.5 * period * sample_rate), 0.4)
            pos += period
    cap = {"humming": "machinery humming", "clanking": "an industrial machine clanking",
           "whirring": "an electric motor whirring", "pumping": "a pump working"}[mode]
    return _finish(out, sample_rate, cap, 0.05)


def scifi(rng: np.random.Generator, sample_rate: int, duration: float, mode: str | None = None) -> Sound:
    """Science-fiction sounds: laser zaps (falling chirps), an energy hum (detuned sawtooths
    through a sweeping resonance), a teleport shimmer, a power-up or power-down sweep."""
    n = _n(sample_rate, duration)
    t = _t(n, sample_rate)
    mode = mode or rng.choice(["laser", "energy", "teleport", "power"])
    out = np.zeros(n)
    if mode == "laser":
        zap_s = rng.uniform(0.08, 0.35)
        f_hi, f_lo = rng.uniform(2000, 8000), rng.uniform(150, 900)
        shots = int(rng.integers(1, 5))
        gap = rng.uniform(0.1, 0.5)
        for k in range(shots):
            zn = int(zap_s * sample_rate)
            tt = _t(zn, sample_rate)
            f = f_lo + (f_hi - f_lo) * np.exp(-tt / (zap_s / rng.uniform(2, 6)))
            ph = 2 * np.pi * np.cumsum(f) / sample_rate
            zap = np.sign(np.sin(ph)) * 0.5 + np.sin(ph + 2 * np.sin(3 * ph))
            _add(out, zap * _decay(zn, sample_rate, zap_s / 2, 0.002), int((0.05 + k * (zap_s + gap)) * sample_rate))
        out = _filter(out, sample_rate, hi=16000, order=1)
        cap = "a sci-fi laser shot" if shots == 1 else "sci-fi laser shots"
    elif mode == "energy":
        f0 = rng.uniform(40, 160)
        for det in (-0.01, 0.0, 0.013):
            out += _wavetable_osc("sawtooth", f0 * (1 + det), n, sample_rate, rng.uniform(0, 1))
        sweep = np.log2(300) + 4 * _smooth_random(rng, n, sample_rate, rng.uniform(0.3, 2.0))
        shaped = _swept_bandpass(out, sample_rate, np.geomspace(200, 8000, 10), sweep, 0.6, 1.2, 2)
        out = shaped * (1 + 0.3 * np.sin(2 * np.pi * rng.uniform(3, 12) * t))
        cap = "a futuristic energy hum"
    elif mode == "teleport":
        for _ in range(int(rng.integers(6, 14))):
            f0 = rng.uniform(400, 3000)
            f = f0 * 2 ** (rng.uniform(1, 3) * t / duration)
            out += np.sin(2 * np.pi * np.cumsum(np.minimum(f, sample_rate * 0.45)) / sample_rate) * rng.uniform(0.2, 1)
        out *= 0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(10, 30) * t)
        out += 0.3 * _filter(white(rng, n), sample_rate, lo=3000, order=1) * np.sin(np.pi * t / duration)
        out *= np.sin(np.pi * np.clip(t / duration, 0, 1)) ** 0.5
        cap = "a sci-fi teleport shimmer"
    else:
        up = rng.random() < 0.5
        u = np.clip(t / rng.uniform(0.5, max(0.6, duration)), 0, 1)
        f = 80 * 2 ** (rng.uniform(3, 6) * (u if up else 1 - u))
        ph = 2 * np.pi * np.cumsum(f) / sample_rate
        out = np.sin(ph) + 0.5 * np.sin(2 * ph + np.sin(0.5 * ph)) + 0.25 * np.sign(np.sin(3 * ph))
        out *= 1 + 0.5 * np.sin(2 * np.pi * rng.uniform(6, 20) * t)
        out = _filter(out, sample_rate, hi=12000, order=1)
        cap = "a sci-fi power-up sweep" if up else "a sci-fi power-down sweep"
    return _finish(out, sample_rate, cap, 0.01)


# vowel formants (Hz) for the crowd's voices
_VOWELS = ((730, 1090, 2440), (530, 1840, 2480), (270, 2290, 3010), (570, 840, 2410), (300, 870, 2240))


def _voice(rng: np.random.Generator, sample_rate: int, n: int, f0: float, syllable_hz: float, shout: bool) -> np.ndarray:
    """A wordless voice: a glottal-like pulse train through vowel formants, in syllables."""
    t = _t(n, sample_rate)
    pitch = f0 * (1 + 0.15 * (_smooth_random(rng, n, sample_rate, syllable_hz / 2) - 0.5))
    if shout:
        pitch *= 1.4
    ph = 2 * np.pi * np.cumsum(pitch) / sample_rate
    source = sum(np.sin(k * ph) / k for k in range(1, 30) if k * f0 * 1.6 < sample_rate / 2)
    vowel = _VOWELS[int(rng.integers(len(_VOWELS)))]
    voiced = _resonate(source, sample_rate, vowel, (8, 12, 15), (1.0, 0.6, 0.3))
    if shout:
        env = np.clip(_smooth_random(rng, n, sample_rate, 0.8) * 1.5 - 0.2, 0, 1)
    else:
        syllables = np.sin(np.pi * ((t * syllable_hz + rng.uniform(0, 1)) % 1.0)) ** 2
        env = syllables * (_smooth_random(rng, n, sample_rate, 0.7) > 0.35)
        env = np.convolve(env, np.ones(480) / 480, mode="same")
    return voiced * env


def crowd(rng: np.random.Generator, sample_rate: int, duration: float, mode: str | None = None) -> Sound:
    """A crowd of wordless synthetic voices: murmuring, or cheering with applause."""
    n = _n(sample_rate, duration)
    mode = mode or rng.choice(["murmuring", "cheering", "applause"])
    out = np.zeros(n)
    voices = 0 if mode == "applause" else int(rng.integers(8, 25))
    for _ in range(voices):
        f0 = rng.uniform(90, 140) if rng.random() < 0.5 else rng.uniform(170, 260)
        v = _voice(rng, sample_rate, n, f0, rng.uniform(3, 6), shout=mode == "cheering")
        out += v / (np.abs(v).max() + 1e-9) * rng.uniform(0.3, 1.0)
    if mode in ("cheering", "applause"):
        claps = np.zeros(n)
        rate = rng.uniform(80, 400)
        for _ in range(rng.poisson(rate * duration)):
            _add(claps, _noise_burst(rng, sample_rate, (0.004, 0.012), (600, 1500), (4000, 10000)),
                 int(rng.integers(0, n)), rng.uniform(0.3, 1.0))
        claps *= 0.5 + _smooth_random(rng, n, sample_rate, 0.5)
        out = out / (np.abs(out).max() + 1e-9) * (0.6 if voices else 0.0) + claps / (np.abs(claps).max() + 1e-9)
    out += 0.02 * _filter(pink(rng, n), sample_rate, lo=100, hi=6000, order=1)
    cap = {"murmuring": "a crowd murmuring", "cheering": "a crowd cheering and clapping",
           "applause": "applause, people clapping"}[mode]
    return _finish(out, sample_rate, cap, 0.1)


GENERATORS: dict[str, Callable[..., Sound]] = {
    "rain": rain, "wind": wind, "thunder": thunder, "surf": surf, "fire": fire,
    "birdsong": birdsong, "engine": engine, "footsteps": footsteps, "door_knock": door_knock,
    "bell": bell, "siren": siren, "hum": hum, "ui_beeps": ui_beeps, "whoosh": whoosh,
    "plucked_string": plucked_string, "drums": drums, "noise_bed": noise_bed, "fm_tone": fm_tone,
    "chord": chord, "explosion": explosion, "water": water, "machinery": machinery, "scifi": scifi,
    "crowd": crowd,
}
# noise-based generators whose output has substantial energy above 12 kHz
NOISE_BASED = ("rain", "fire", "whoosh", "surf", "footsteps", "drums")
# plausible background beds for mixing ("<fg> with <bg>")
_BEDS = ("rain", "wind", "surf", "fire", "hum", "noise_bed", "birdsong")
# sounds that happen outdoors: never placed "in a small room" or "in a large hall"
_OUTDOOR = ("rain", "wind", "thunder", "surf", "birdsong", "siren")


def random_sound(rng: np.random.Generator, sample_rate: int = 48000, duration: float = 4.0) -> Sound:
    """One random procedural sound with random parameters, level and processing, honestly captioned."""
    n = _n(sample_rate, duration)
    name = rng.choice(list(GENERATORS))
    x, cap = GENERATORS[name](rng, sample_rate, duration)
    x = x.astype(np.float64)
    # sometimes mix in a background bed at a lower level
    mixed_outdoor = False
    if rng.random() < 0.25:
        bg_name = rng.choice([b for b in _BEDS if b != name])
        mixed_outdoor = bg_name in _OUTDOOR
        bg, bg_cap = GENERATORS[bg_name](rng, sample_rate, duration)
        rel_db = rng.uniform(-20, -4)
        x = x + bg.astype(np.float64) * 10 ** (rel_db / 20)
        cap = f"{cap} with {bg_cap} in the background" if rel_db < -10 else f"{cap} with {bg_cap}"
    # distance: lower level, low-passed, more reverberant
    r = rng.random()
    if r < 0.15 and not cap.startswith(("distant", "close")):
        x = _filter(x, sample_rate, hi=rng.uniform(1500, 4000), order=1)
        x = reverb(rng, x, sample_rate, rng.uniform(1.0, 2.5), wet=0.5)
        cap = f"{cap}, far away"
    elif r < 0.35 and name not in _OUTDOOR and not mixed_outdoor:
        space = rng.choice(["small room", "large hall"])
        rt = rng.uniform(0.2, 0.6) if space == "small room" else rng.uniform(1.5, 3.5)
        x = reverb(rng, x, sample_rate, rt, wet=rng.uniform(0.2, 0.5))
        cap = f"{cap} in a {space}"
    peak = np.max(np.abs(x)) + 1e-12
    level_db = rng.uniform(-40.0, -1.0)
    x = x / peak * 10 ** (level_db / 20)
    if level_db < -30:
        cap = _quiet(cap)
    return np.clip(x[:n], -1, 1).astype(np.float32), cap


def laid_over_bed(caption: str) -> bool:
    """Whether `random_sound` laid this sound over a background bed: its caption is "<sound> with
    <bed>" ("footsteps on wood with gentle wind"), two sounds under one caption. The explosion's
    own DEBRIS is one event, not a bed."""
    return " with " in caption.replace(DEBRIS, "")


def _quiet(cap: str) -> str:
    for art in ("a ", "an "):
        if cap.startswith(art):
            return "a quiet " + cap[len(art):]
    return "quiet " + cap


def _stereo(rng: np.random.Generator, gen, sample_rate: int, duration: float, **kw) -> tuple[np.ndarray, str]:
    """Decorrelated stereo from two renders with related seeds (a wide, diffuse image)."""
    seed = int(rng.integers(0, 2**31))
    left, cap = gen(np.random.default_rng(seed), sample_rate, duration, **kw)
    right, _ = gen(np.random.default_rng(seed + 1), sample_rate, duration, **kw)
    mid = 0.5 * (left + right)
    st = np.stack([0.6 * left + 0.4 * mid, 0.6 * right + 0.4 * mid], axis=1)
    return (st / (np.abs(st).max() + 1e-9) * 0.8).astype(np.float32), cap


def demo_library(out_dir: str | Path, sample_rate: int = 48000, seed: int = 1234) -> list[Path]:
    """Write a small library of named demo sounds (some stereo, one 44.1 kHz, one FLAC)."""
    import soundfile as sf

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    captions = []
    written: list[Path] = []

    def put(name: str, x: np.ndarray, cap: str, sr: int = sample_rate, fmt: str = "wav", level_db: float = -3.0):
        x = x / (np.abs(x).max() + 1e-9) * 10 ** (level_db / 20)
        path = out / f"{name}.{fmt}"
        sf.write(str(path), x.astype(np.float32), sr, subtype="PCM_16" if fmt == "wav" else "PCM_24")
        captions.append(f"{path.name}\t{sr}\t{1 if x.ndim == 1 else x.shape[1]}\t{cap}")
        written.append(path)

    x, cap = _stereo(rng, rain, sample_rate, 4.0, intensity="heavy")
    put("rain_heavy", x, cap, level_db=-6)
    x, cap = thunder(rng, sample_rate, 4.0, distance="distant")
    put("thunder_distant", x, cap, level_db=-2)
    x, cap = birdsong(np.random.default_rng(seed + 7), 44100, 3.0)
    put("birdsong_44k", x, cap, sr=44100)
    x, cap = bell(rng, sample_rate, 3.5, kind="church bell")
    put("church_bell", x, cap, fmt="flac")
    x, cap = _stereo(rng, wind, sample_rate, 4.0, strength="gusty")
    put("wind_gusty", x, cap, level_db=-10)
    x, cap = footsteps(rng, sample_rate, 3.0, surface="gravel")
    put("footsteps_gravel", x, cap)
    x, cap = drums(rng, sample_rate, 3.0, mode="beat")
    put("drum_beat", x, cap, level_db=-1)
    x, cap = plucked_string(rng, sample_rate, 2.0, note=57)
    put("plucked_a3", x, cap, level_db=-20)
    (out / "captions.tsv").write_text("file\tsample_rate\tchannels\tcaption\n" + "\n".join(captions) + "\n")
    return written
