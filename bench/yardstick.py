"""The quality yardstick, as the project defines it (numpy, soxr and soundfile only).

Every quality figure in bench/ follows one definition, so that numbers for soundtok, Opus and any
other codec can be compared directly, and with figures measured elsewhere in the project:

* Audio is compared at 48 kHz mono: channels averaged, other rates resampled with soxr (HQ).
* Codec delay is removed first: the decoded signal is shifted left by the lag, between 0 and
  0.1 s, at which its cross-correlation with the reference is largest in magnitude; both are then
  cut to the shorter length.
* "mel": multi-scale log-mel L1 distance, lower is better. Three scales (FFT size, mel bands):
  (512, 40), (1024, 80), (2048, 160); symmetric Hann window (numpy.hanning), hop = FFT size / 4,
  whole frames only (a signal shorter than one window is zero-padded to one); triangular filters spaced evenly on the
  HTK mel scale (2595 log10(1 + f/700)) from 0 Hz to Nyquist; magnitudes (not power) summed by the
  filters; log10 of the band energy floored at 1e-5; mean absolute difference per scale, averaged
  over the scales. A clip set is summarised by the mean over clips.
* "sisdr": scale-invariant signal-to-distortion ratio in dB, both signals made zero-mean first.
  A clip set is summarised by the median over clips.

`opus_roundtrip` runs the Opus reference tools the same way the yardstick does (constrained
bitrate, hard CBR, decoded at 48 kHz) so Opus can be scored next to a codec in the same run.
"""

from __future__ import annotations

import functools
import os
import subprocess
from typing import Callable, Iterable

import numpy as np
import soundfile as sf
import soxr

SR = 48000
MAX_LAG_SECONDS = 0.1
MEL_SCALES = ((512, 40), (1024, 80), (2048, 160))
LOG_FLOOR = 1e-5


def hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + f / 700.0)


def mel_to_hz(m):
    return 700.0 * (10 ** (m / 2595.0) - 1.0)


@functools.lru_cache(maxsize=16)
def _filterbank_cached(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]  # (n_mels, 1) each
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)[None, :]
    rising = (freqs - lower) / (centre - lower + 1e-9)
    falling = (upper - freqs) / (upper - centre + 1e-9)
    fb = np.clip(np.minimum(rising, falling), 0, None)
    fb.setflags(write=False)
    return fb


def mel_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular filters on the HTK mel scale, fmin..fmax (default Nyquist)."""
    return _filterbank_cached(sr, n_fft, n_mels, float(fmin), float(fmax or sr / 2))


def stft_magnitude(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """(frames, n_fft // 2 + 1) magnitudes of Hann-windowed frames; frames start at 0, hop apart,
    and only whole frames are taken (a signal shorter than one window is zero-padded to one)."""
    if len(x) < n_fft:
        x = np.pad(x, (0, n_fft - len(x)))
    frames = 1 + (len(x) - n_fft) // hop
    starts = hop * np.arange(frames)
    windowed = x[starts[:, None] + np.arange(n_fft)[None, :]] * np.hanning(n_fft)
    return np.abs(np.fft.rfft(windowed, axis=1))


def mel_distance(ref: np.ndarray, est: np.ndarray, sr: int = SR) -> float:
    """Multi-scale log-mel L1 distance between two signals (cut to the shorter); lower is better."""
    n = min(len(ref), len(est))
    ref, est = ref[:n], est[:n]
    total = 0.0
    for n_fft, n_mels in MEL_SCALES:
        fb_t = mel_filterbank(sr, n_fft, n_mels).T
        log_ref = np.log10(np.maximum(stft_magnitude(ref, n_fft, n_fft // 4) @ fb_t, LOG_FLOOR))
        log_est = np.log10(np.maximum(stft_magnitude(est, n_fft, n_fft // 4) @ fb_t, LOG_FLOOR))
        total += np.mean(np.abs(log_ref - log_est))
    return total / len(MEL_SCALES)


def si_sdr(ref: np.ndarray, est: np.ndarray) -> float:
    """Scale-invariant SDR in dB of est against ref (cut to the shorter, zero-mean); higher is better."""
    n = min(len(ref), len(est))
    r = ref[:n].astype(np.float64)
    e = est[:n].astype(np.float64)
    r = r - r.mean()
    e = e - e.mean()
    gain = np.dot(e, r) / (np.dot(r, r) + 1e-12)
    target = gain * r
    noise = e - target
    return 10 * np.log10((np.dot(target, target) + 1e-12) / (np.dot(noise, noise) + 1e-12))


def best_lag(ref: np.ndarray, est: np.ndarray, max_lag: int) -> int:
    """The delay (0..max_lag samples) of est relative to ref with the largest |cross-correlation|."""
    n = min(len(ref), len(est))
    size = 1 << int(np.ceil(np.log2(2 * n)))
    spectrum = np.fft.rfft(est[:n], size) * np.conj(np.fft.rfft(ref[:n], size))
    xcorr = np.fft.irfft(spectrum, size)
    return int(np.argmax(np.abs(xcorr[: max_lag + 1])))


def align(ref: np.ndarray, est: np.ndarray, max_lag: int) -> np.ndarray:
    """est with its delay relative to ref (at most max_lag samples) removed from the start."""
    return est[best_lag(ref, est, max_lag):]


def read_mono48(path: str) -> np.ndarray:
    """A file as float64 mono at 48 kHz (channels averaged, resampled with soxr when needed)."""
    x, sr = sf.read(path, always_2d=True)
    x = x.mean(axis=1)
    return soxr.resample(x, sr, SR) if sr != SR else x


def prepare_pair(ref: np.ndarray, est: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """48 kHz mono reference and estimate -> the two signals the metrics see (delay removed, equal length)."""
    est = align(ref, est, int(SR * MAX_LAG_SECONDS))
    n = min(len(ref), len(est))
    return ref[:n], est[:n]


def score_pair(ref: np.ndarray, est: np.ndarray) -> dict:
    """Per-clip figures for 48 kHz mono float signals: {"mel", "sisdr"}."""
    ref, est = prepare_pair(ref, est)
    return {"mel": float(mel_distance(ref, est, SR)), "sisdr": float(si_sdr(ref, est))}


def summarise(clip_scores: Iterable[dict]) -> dict:
    """A clip set's figures: mean mel distance, median SI-SDR, clip count."""
    clip_scores = list(clip_scores)
    if not clip_scores:
        return {"mel": float("nan"), "sisdr": float("nan"), "n": 0}
    return {"mel": float(np.mean([s["mel"] for s in clip_scores])),
            "sisdr": float(np.median([s["sisdr"] for s in clip_scores])),
            "n": len(clip_scores)}


def score_files(ref_paths: Iterable[str], decoded_path_for: Callable[[str], str]) -> dict:
    """Score decoded files against reference files (each read as 48 kHz mono)."""
    return summarise(score_pair(read_mono48(p), read_mono48(decoded_path_for(p))) for p in ref_paths)


def opus_roundtrip(wav_path: str, kbps: float, tmpdir: str) -> str:
    """Encode a WAV with opusenc (hard CBR at kbps) and decode it with opusdec at 48 kHz;
    returns the path of the decoded WAV inside tmpdir."""
    out = os.path.join(tmpdir, os.path.basename(wav_path))
    packed = out + ".opus"
    subprocess.run(["opusenc", "--quiet", "--bitrate", str(float(kbps)), "--hard-cbr", wav_path, packed], check=True)
    subprocess.run(["opusdec", "--quiet", "--rate", str(SR), packed, out], check=True)
    os.remove(packed)
    return out
