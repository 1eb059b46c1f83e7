"""examples/Makefile: per-file token stores built incrementally, correct under make -j."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOUNDTOK = " ".join(shlex.quote(part) for part in [sys.executable, "-m", "soundtok_cli.app"])
ENV = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def make(directory, *targets: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "-j2", "-C", str(directory), f"SOUNDTOK={SOUNDTOK}", *targets],
                          env=ENV, capture_output=True, text=True, timeout=600)


def test_examples_makefile_encodes_decodes_and_is_incremental(tmp_path):
    shutil.copy(os.path.join(ROOT, "examples", "Makefile"), tmp_path / "Makefile")
    (tmp_path / "sounds" / "birds").mkdir(parents=True)
    t = np.arange(int(0.6 * 48000)) / 48000
    sf.write(tmp_path / "sounds" / "tone.wav", (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 48000)
    stereo = np.stack([0.1 * np.sin(2 * np.pi * 660 * t[:22050]), np.zeros(22050)], axis=1)
    sf.write(tmp_path / "sounds" / "birds" / "chirp.flac", stereo.astype(np.float32), 44100)

    first = make(tmp_path, "decode")
    assert first.returncode == 0, first.stdout + first.stderr
    for name, source in [("tone", "tone.wav"), ("birds/chirp", "birds/chirp.flac")]:
        assert (tmp_path / "tokens" / f"{name}.zarr.zip").is_file()
        original, decoded = sf.info(tmp_path / "sounds" / source), sf.info(tmp_path / "decoded" / f"{name}.wav")
        assert (decoded.samplerate, decoded.channels, decoded.frames) == \
            (original.samplerate, original.channels, original.frames)
    assert not [n for _, _, files in os.walk(tmp_path) for n in files if n.startswith(".")]

    second = make(tmp_path, "decode")
    assert second.returncode == 0, second.stderr
    assert "Nothing to be done" in second.stdout or "up to date" in second.stdout, second.stdout
    assert "soundtok_cli" not in second.stdout  # no command ran
    assert subprocess.run(["make", "-q", "-C", str(tmp_path), "decode"], env=ENV).returncode == 0

    clean = make(tmp_path, "clean")
    assert clean.returncode == 0 and not (tmp_path / "tokens").exists() and not (tmp_path / "decoded").exists()
