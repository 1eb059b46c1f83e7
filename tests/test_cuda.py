"""The models on a CUDA GPU do what `--device cuda` promises: the same tokens and sound as the CPU.

Skipped without CUDA (CI has none); on a GPU machine: `pytest tests/test_cuda.py`. The codec and
the embedder run the same float32 arithmetic on both devices (cuDNN may pick other convolution
algorithms, so a code that sits on a boundary can flip); the generator and the separator run int8
layers on the CPU (faster there) and float32 on the GPU, so those are compared with what int8
allows, and the generator's promise (same seed, same tokens) is checked on the GPU itself. Only the
last test (the `separate` command) needs the text tower; the others are conditioned on the
separator's own concept vectors.
"""

import numpy as np
import pytest
import torch

from soundtok_cli.data import synth
from soundtok_cli.models.registry import load_codec, load_embedder, load_generator, load_separator
from soundtok_cli.separate.neural import Query
from soundtok_cli.separate.stream import run_all
from audio_checks import si_sdr

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

RATE = 48000


def rain_and_birds(seconds: float = 4.0, seed: int = 20261204) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 0.5 * (synth.rain(rng, RATE, seconds)[0] + synth.birdsong(rng, RATE, seconds)[0]).astype(np.float32)


@pytest.fixture(scope="module")
def codecs():
    return load_codec(device="cpu"), load_codec(device="cuda")


def streamed(codec, x: np.ndarray, levels: int) -> np.ndarray:
    encoder = codec.encoder(RATE, levels)
    return np.concatenate([encoder.push(x[i : i + 2 * RATE]) for i in range(0, len(x), 2 * RATE)]
                          + [encoder.finish()])


def test_gpu_tokens_are_the_cpu_tokens(codecs):
    cpu, gpu = codecs
    x = rain_and_birds()
    a, b = streamed(cpu, x, 8), streamed(gpu, x, 8)
    assert a.shape == b.shape
    same = (a == b).mean(axis=0)
    print("codes equal per level (CPU vs GPU):", np.round(same, 4))
    assert same[0] >= 0.98 and same.mean() >= 0.9


def test_batched_gpu_encode_is_the_streaming_encode(codecs):
    _, gpu = codecs
    clips = np.stack([rain_and_birds(2.0, seed) for seed in range(8)])
    batched = gpu.encode_clips(clips, 8)
    one_by_one = np.stack([streamed(gpu, clip, 8) for clip in clips])
    same = (batched == one_by_one).mean()
    print(f"batched vs streamed codes equal on the GPU: {same:.4f}")
    assert batched.shape == one_by_one.shape and same >= 0.98


def test_gpu_decode_sounds_like_the_cpu_decode(codecs):
    cpu, gpu = codecs
    codes = streamed(cpu, rain_and_birds(), 8)
    a = np.concatenate(list(cpu.decode(codes)))
    b = np.concatenate(list(gpu.decode(codes)))
    agreement = si_sdr(a, b)
    print(f"decode agreement (SI-SDR of GPU against CPU): {agreement:.1f} dB")
    assert len(a) == len(b) and agreement > 40


def test_gpu_embeddings_are_the_cpu_embeddings(codecs):
    cpu_codec, _ = codecs
    codes = streamed(cpu_codec, rain_and_birds(6.0), 8)
    outs = [load_embedder(device=device).embed_item(codes, 6.0, 2.0, 1.0) for device in ("cpu", "cuda")]
    (times_a, windows_a, item_a), (times_b, windows_b, item_b) = outs
    np.testing.assert_allclose(times_a, times_b)
    cosines = (windows_a * windows_b).sum(1) / np.linalg.norm(windows_a, axis=1) / np.linalg.norm(windows_b, axis=1)
    print(f"embedding cosine CPU vs GPU: windows min {cosines.min():.6f}, item {float(item_a @ item_b):.6f}")
    assert cosines.min() > 0.999 and float(item_a @ item_b) > 0.999


@pytest.fixture(scope="module")
def separators():
    return load_separator(device="cpu"), load_separator(device="cuda")


def concept_query(separator, name: str) -> Query:
    i = separator.concept_names.index(name)
    return Query(name, separator.concept_vectors[i].astype(np.float32), 1.0, [(name, 1.0)])


def test_gpu_generation_repeats_with_the_seed_and_writes_valid_codes(separators):
    generator = load_generator(device="cuda")
    condition = concept_query(separators[0], "rain").vector[None]
    take = lambda seed: np.concatenate(list(generator.stream(condition, 150, seed=seed)), axis=1)
    first, again, other = take(7), take(7), take(8)
    size = int(generator.codec["codebook_size"])
    assert first.shape == (1, 150, generator.levels)
    np.testing.assert_array_equal(first, again)
    assert (first < size).all() and not np.array_equal(first, other)


def test_gpu_separation_sounds_like_the_cpu_separation(separators):
    x = rain_and_birds(6.0)
    kept = []
    for separator in separators:
        stage = separator.stage([concept_query(separator, "rain")], RATE, "keep")
        kept.append(run_all(stage, x, chunk=stage.chunk))
    agreement = si_sdr(kept[0], kept[1])
    print(f"separation agreement (SI-SDR of GPU against CPU int8): {agreement:.1f} dB")
    assert kept[0].shape == kept[1].shape and agreement > 20


def test_separate_command_on_the_gpu_keeps_what_the_cpu_keeps(tmp_path):
    import subprocess
    import sys

    import soundfile as sf

    source = tmp_path / "mix.wav"
    sf.write(source, rain_and_birds(4.0), RATE, subtype="FLOAT")
    kept = {}
    for device in ("cpu", "cuda"):
        out = tmp_path / f"{device}.wav"
        result = subprocess.run([sys.executable, "-m", "soundtok_cli.app", "separate", str(source), "--keep", "rain",
                                 "--device", device, "-o", str(out)], capture_output=True, timeout=300)
        assert result.returncode == 0, result.stderr.decode()
        kept[device] = sf.read(out, dtype="float32")[0]
    agreement = si_sdr(kept["cpu"], kept["cuda"])
    print(f"soundtok separate --keep rain, GPU against CPU: {agreement:.1f} dB")
    assert kept["cpu"].shape == kept["cuda"].shape and agreement > 20
