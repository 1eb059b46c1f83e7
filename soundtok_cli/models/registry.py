"""Built-in models: names, versions, weights files inside the package, checksums.

Weights are safetensors (never pickle), loaded from the installed package, never from a network.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass
from importlib import resources

from soundtok_cli.devices import check_device
from soundtok_cli.errors import UsageError


@dataclass(frozen=True)
class ModelEntry:
    name: str
    version: str
    kind: str
    weights: str  # file name inside soundtok_cli/models/
    card: str
    summary: str
    prototypes: str | None = None  # an embedder's caption-sound table (embed/prototypes.py)

    def path(self) -> str:
        return str(resources.files("soundtok_cli.models") / self.weights)

    def prototypes_path(self) -> str | None:
        return str(resources.files("soundtok_cli.models") / self.prototypes) if self.prototypes else None


BUILT_IN = [
    ModelEntry("soundtok-codec", "1", "codec", "soundtok-codec-v1.safetensors", "soundtok-codec-v1.md",
               "48 kHz residual-VQ codec, 75 frames/s, 1-32 levels of 1024 codes (0.75-24 kbps)"),
    ModelEntry("soundtok-embed", "1", "embedder", "soundtok-embed-v1.safetensors", "soundtok-embed-v1.md",
               "audio tower into the all-MiniLM-L6-v2 text space: describe a sound to find it",
               prototypes="soundtok-embed-v1-prototypes.safetensors"),
    ModelEntry("soundtok-generate", "2", "generator", "soundtok-generate-v2.safetensors", "soundtok-generate-v2.md",
               "token language model: endless sound from a description, an example or a recording"),
    ModelEntry("soundtok-separate", "3", "separator", "soundtok-separate-v3.safetensors", "soundtok-separate-v3.md",
               "query-conditioned separation: keep or remove the sound a description names"),
    ModelEntry("soundtok-dereverb", "1", "dereverber", "soundtok-dereverb-v1.safetensors", "soundtok-dereverb-v1.md",
               "sub-band mask for separate --remove reverb: keeps the direct sound, takes out the room"),
]
DEFAULT_CODEC = "soundtok-codec"
DEFAULT_EMBEDDER = "soundtok-embed"
DEFAULT_GENERATOR = "soundtok-generate"
DEFAULT_SEPARATOR = "soundtok-separate"
DEFAULT_DEREVERBER = "soundtok-dereverb"
# parts that travel in the separator's file under a tensor prefix (train/weights_file.add_part)
SUBBAND_PART, VOICE_PART = "subband.", "voice."


def find(name: str) -> ModelEntry:
    for entry in BUILT_IN:
        if name in (entry.name, f"{entry.name}@{entry.version}"):
            return entry
    known = ", ".join(e.name for e in BUILT_IN)
    raise UsageError(f"unknown model '{name}' (built-in: {known})", "--codec")


def file_sha256(path: str) -> str:
    """The sha256 of a file's bytes, read 1 MiB at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@functools.lru_cache(maxsize=None)
def sha256(path: str) -> str:
    """`file_sha256`, once per process: the built-in weights do not change under a running soundtok."""
    return file_sha256(path)


def pick_device(device: str) -> str:
    check_device(device)
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("CUDA was asked for but no CUDA device is available", "--device")
    return device


def load_codec(name: str = DEFAULT_CODEC, device: str = "auto"):
    """The named built-in codec, ready for inference on `device`."""
    entry = find(name)
    return load_codec_file(entry.path(), entry.name, entry.version, device)


def load_codec_file(path: str, name: str, version: str, device: str = "auto"):
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file

    from soundtok_cli.codec.codec import NeuralCodec
    from soundtok_cli.codec.config import CodecConfig
    from soundtok_cli.codec.model import CodecModel

    device = pick_device(device)

    with safe_open(path, framework="pt") as f:
        metadata = f.metadata()
    model = CodecModel(CodecConfig.from_json(metadata["config"]))
    state = {k: v.to(torch.float32) for k, v in load_file(path).items()}
    model.load_state_dict(state)
    return NeuralCodec(model, name, version, sha256(path), device)


@dataclass
class _Weights:
    """A built-in model's float32 state, the metadata stored beside it, and its identity."""

    state: dict
    metadata: dict
    identity: dict


def _read_weights(name: str, kind: str, option: str, path: str | None = None) -> _Weights:
    """The weights of the named built-in model of `kind` (a UsageError naming `option` if the
    name is another kind of model), or a candidate file of that model in its place (`path`, for
    benchmarks). Models that read or write tokens record their codec."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file

    entry = find(name)
    if entry.kind != kind:
        raise UsageError(f"'{name}' is a {entry.kind}, not {'an' if kind[0] in 'aeiou' else 'a'} {kind}", option)
    version = entry.version if path is None else f"{entry.version} candidate {os.path.basename(path)}"
    path = path or entry.path()
    with safe_open(path, framework="pt") as f:
        metadata = f.metadata()
    state = {k: v.to(torch.float32) for k, v in load_file(path).items()}
    identity = {"name": entry.name, "version": version, "weights_sha256": sha256(path)}
    if "codec" in metadata:
        identity["codec"] = json.loads(metadata["codec"])
    return _Weights(state, metadata, identity)


def load_embedder(name: str = DEFAULT_EMBEDDER, device: str = "auto"):
    """The named built-in audio embedder (tower weights and the codec identity it reads)."""
    from soundtok_cli.embed.audio import AudioEmbedder
    from soundtok_cli.embed.model import AudioTower, TowerConfig

    weights = _read_weights(name, "embedder", "--embedder")
    device = pick_device(device)
    tower = AudioTower(TowerConfig(**json.loads(weights.metadata["config"])))
    tower.load_state_dict(weights.state)
    return AudioEmbedder(tower, weights.identity, device)


def load_generator(name: str = DEFAULT_GENERATOR, device: str = "auto"):
    """The named built-in token language model, with the codec identity it writes."""
    from soundtok_cli.generate.model import LMConfig, TokenLM
    from soundtok_cli.generate.sampler import TokenGenerator

    weights = _read_weights(name, "generator", "--model")
    device = pick_device(device)
    model = TokenLM(LMConfig(**json.loads(weights.metadata["config"])))
    model.load_state_dict(weights.state)
    return TokenGenerator(model, weights.identity, json.loads(weights.metadata["silence"]), device)


def load_separator(name: str = DEFAULT_SEPARATOR, device: str = "cpu", path: str | None = None):
    """The named built-in separation network (or a candidate file of it: `path`) with the
    concepts its queries are grounded against. It reads and writes audio, not tokens, so it
    records no codec."""
    from soundtok_cli.separate.model import SeparatorConfig, SeparatorNet
    from soundtok_cli.separate.neural import QuerySeparator

    from soundtok_cli.separate.subband import SubbandConfig, SubbandMask

    weights = _read_weights(name, "separator", "--model", path)
    device = pick_device(device)
    concepts = weights.state.pop("concepts").numpy()
    speech_net = None
    if "subband" in weights.metadata:  # the sub-band speech mask (version 3 on)
        speech_net = SubbandMask(SubbandConfig.from_json(weights.metadata["subband"]))
        speech_net.load_state_dict(_pop_part(weights.state, SUBBAND_PART))
    config = SeparatorConfig.from_json(weights.metadata["config"])
    voice_net = None
    if "voice_step" in weights.metadata:  # the network fine-tuned for voices (version 3, 2026-12-05 on)
        voice_net = SeparatorNet(config)
        voice_net.load_state_dict(_pop_part(weights.state, VOICE_PART))
    net = SeparatorNet(config)
    net.load_state_dict(weights.state)
    return QuerySeparator(net, concepts, json.loads(weights.metadata["concepts"]), weights.identity, device,
                          speech_net, voice_net)


def load_dereverber(name: str = DEFAULT_DEREVERBER, path: str | None = None):
    """The dereverberation mask's network (separate/dereverb.py), on the CPU: it is small (16 k
    parameters) and runs per band, where a GPU would wait on the transfers."""
    from soundtok_cli.separate.dereverb import DereverbConfig, network

    weights = _read_weights(name, "dereverber", "--model", path)
    net = network(DereverbConfig.from_json(weights.metadata["config"]))
    net.load_state_dict(weights.state)
    return net.eval()


def _pop_part(state: dict, prefix: str) -> dict:
    """The tensors under `prefix` (a part travelling in another model's file), taken out of `state`."""
    return {k.removeprefix(prefix): state.pop(k) for k in [k for k in state if k.startswith(prefix)]}


def describe_all() -> list[dict]:
    out = []
    for entry in BUILT_IN:
        described = {"name": entry.name, "version": entry.version, "kind": entry.kind, "weights": entry.weights,
                     "sha256": sha256(entry.path()), "summary": entry.summary}
        if entry.prototypes:
            described["prototypes"] = {"file": entry.prototypes, "sha256": sha256(entry.prototypes_path())}
        out.append(described)
    return out


def dumps(entries: list[dict]) -> str:
    return "\n".join(json.dumps(e) for e in entries)


def codec_for_store(attrs: dict, device: str = "auto", subject: str | None = None):
    """The built-in codec that made a tokens store; refuses a store made with other weights,
    naming both versions."""
    from soundtok_cli.errors import InputError
    from soundtok_cli.io.store import model_label

    wanted = attrs["codec"]
    try:
        entry = find(wanted["name"])
    except UsageError:
        raise InputError(f"made with {model_label(attrs)}, which this soundtok does not have", subject) from None
    ours = dict(wanted, version=entry.version, weights_sha256=sha256(entry.path()))
    if ours != wanted:  # checked before loading: the checksum is cheap, the weights are not
        theirs = model_label({"kind": "tokens", "codec": ours})
        raise InputError(f"made with {model_label(attrs)}, but this soundtok has {theirs}", subject)
    return load_codec(entry.name, device)
