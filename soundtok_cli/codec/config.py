"""Shape of the built-in codec: fixed by the weights file, recorded in every store it makes."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class CodecConfig:
    sample_rate: int = 48000
    hop: int = 640  # 75 frames per second at 48 kHz
    n_fft: int = 1920  # analysis/synthesis window: 3 hops (40 ms)
    dim: int = 256
    encoder_blocks: int = 4
    decoder_blocks: int = 8
    kernel: int = 7
    levels: int = 32
    codebook_size: int = 1024
    code_dim: int = 8

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop

    @property
    def bins(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def bits_per_level(self) -> float:
        return math.log2(self.codebook_size)

    def bitrate_kbps(self, levels: int) -> float:
        return self.frame_rate * levels * self.bits_per_level / 1000

    def encoder_context(self) -> int:
        """Frames of input on each side that can change a frame's code (receptive field)."""
        return self.encoder_blocks * (self.kernel // 2)

    def decoder_context(self) -> int:
        return 1 + self.decoder_blocks * (self.kernel // 2)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "CodecConfig":
        return cls(**json.loads(text))
