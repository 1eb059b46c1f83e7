"""The built-in neural codec at inference time: weights, identity, and segment-level encode/decode."""

from __future__ import annotations

import numpy as np
import torch

from soundtok_cli.codec.config import CodecConfig
from soundtok_cli.codec.model import CodecModel
from soundtok_cli.codec.streaming import BLOCK_FRAMES, FrameDecoder, StreamingEncoder, decode_frames, to_tensor


class NeuralCodec:
    def __init__(self, model: CodecModel, name: str, version: str, weights_sha256: str, device: str = "cpu"):
        self.model = model.eval().to(device)
        self.config: CodecConfig = model.config
        self.name, self.version, self.weights_sha256, self.device = name, version, weights_sha256, device

    def describe(self, levels: int) -> dict:
        """The `codec` attributes recorded in every store this codec writes."""
        c = self.config
        return {"name": self.name, "version": self.version, "weights_sha256": self.weights_sha256,
                "sample_rate": c.sample_rate, "frame_rate": c.frame_rate, "levels": levels,
                "codebook_size": c.codebook_size}

    def levels_for_bitrate(self, kbps: float) -> int:
        per_level = self.config.bitrate_kbps(1)
        return max(1, min(self.config.levels, round(kbps / per_level)))

    def encoder(self, source_rate: int, levels: int) -> StreamingEncoder:
        return StreamingEncoder(self, source_rate, levels)

    def encode_segment(self, segment: np.ndarray, context: int, levels: int) -> np.ndarray:
        """Samples for frames [a-context-1, b+context+1) -> codes (b-a, levels) uint16."""
        return self._encode_padded(to_tensor(segment[None], self.device), context, BLOCK_FRAMES, levels)[0]

    def encode_clips(self, clips: np.ndarray, levels: int) -> np.ndarray:
        """(N, S) clips of equal length at the codec's rate -> (N, ceil(S / hop), levels) uint16
        codes in one forward pass: the batched path for many short sounds on a GPU. The codes are
        those the streaming encoder gives each clip (the same frames, the same zero padding)."""
        hop, context = self.config.hop, self.config.encoder_context()
        frames = -(-clips.shape[1] // hop)
        margin = (context + 1) * hop
        # padded on the device: on an H200 a padded copy on the host was over half the batch's time
        # (64 clips of 10 s: 10,365x real time, 25,563x padded on the device)
        samples = to_tensor(np.asarray(clips, np.float32), self.device)
        padded = torch.nn.functional.pad(samples, (margin, frames * hop - clips.shape[1] + margin))
        return self._encode_padded(padded, context, frames, levels)

    @torch.inference_mode()
    def _encode_padded(self, samples: torch.Tensor, context: int, frames: int, levels: int) -> np.ndarray:
        """(B, S) samples on the device for `frames` frames with `context` frames (and one for the
        STFT window) of input each side -> (B, frames, levels) uint16 codes."""
        latent = self.model.encoder(samples)
        codes = self.model.quantizer.encode(latent[:, :, context : context + frames], levels)
        return codes.to(torch.int32).cpu().numpy().astype(np.uint16)

    @torch.inference_mode()
    def decode_segment(self, codes: np.ndarray, pad_before: int, pad_after: int, context: int) -> np.ndarray:
        """Codes for one block plus `context` frames each side -> the block's 48 kHz samples."""
        latent = self.model.quantizer.decode(to_tensor(codes.astype(np.int64), self.device)[None])
        latent = torch.nn.functional.pad(latent, (pad_before, pad_after))
        audio = self.model.synthesize(latent)[0]
        offset = (context - 1) * self.config.hop
        return audio[offset : offset + BLOCK_FRAMES * self.config.hop].cpu().numpy()

    def decode(self, codes: np.ndarray, start: int = 0, end: int | None = None):
        return decode_frames(self, codes, start, end)

    def frame_decoder(self, start: int = 0, end: int | None = None) -> FrameDecoder:
        """A decoder for frames [start, end) of one item whose codes arrive in pieces."""
        return FrameDecoder(self, start, end)
