"""Sampling token streams from the language model: endless, seeded, guided, never looping.

`TokenGenerator.stream` yields (frames, levels) uint16 code chunks as they are made, for one or
several conditions at once (rows of a batch). Memory is the model's fixed-size state plus the
no-repeat table, whatever the duration. The same seed, conditions, settings and model give the
same tokens (on the same kind of machine: floating-point sums differ between CPU and GPU).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch

from soundtok_cli.generate import DEFAULT_GUIDANCE, DEFAULT_TEMPERATURE, DEFAULT_TOP_K
from soundtok_cli.generate.frame import FrameStep
from soundtok_cli.generate.model import TokenLM
from soundtok_cli.generate.norepeat import NoRepeat

NO_REPEAT_SECONDS = 1.0
CHUNK_FRAMES = 375        # 5 s: what a streaming reader waits for at most


class TokenGenerator:
    def __init__(self, model: TokenLM, identity: Mapping[str, Any], silence: list[int], device: str = "cpu"):
        self.model = model.eval().to(device)
        self.identity = dict(identity)   # name, version, weights_sha256, codec {...}
        self.silence = frozenset(silence)
        self.device = device
        self.frame = FrameStep(self.model, int8=device == "cpu")

    @property
    def levels(self) -> int:
        return self.model.config.levels

    @property
    def frame_rate(self) -> float:
        return float(self.identity["codec"]["frame_rate"])

    @property
    def codec(self) -> dict:
        return dict(self.identity["codec"])

    @torch.inference_mode()
    def stream(self, conditions: np.ndarray, frames: int, *, seed: int = 0, temperature: float = DEFAULT_TEMPERATURE,
               top_k: int = DEFAULT_TOP_K, guidance: float = DEFAULT_GUIDANCE, prime: np.ndarray | None = None,
               chunk_frames: int = CHUNK_FRAMES, no_repeat: bool = True,
               stats: dict | None = None) -> Iterator[np.ndarray]:
        """Yield (rows, n, levels) uint16 chunks, `frames` frames in all.

        conditions: (rows, 384) unit vectors in the joint space. prime: (T, >= levels) codes the
        generation carries on from (the same for every row); it is read, not repeated, and its
        coarse stretches count as already made for the no-repeat rule. guidance > 1 pushes the
        distribution away from the unconditioned one (classifier-free guidance). no_repeat=False
        turns the no-repeat rule off (for measuring what the model does alone)."""
        model = self.model
        rows = len(conditions)
        cond = torch.as_tensor(np.asarray(conditions, np.float32), device=self.device)
        guided = guidance != 1.0
        if guided:
            cond = torch.cat([cond, model.null[None].expand(rows, -1)])
        generator = torch.Generator(device=self.device).manual_seed(int(seed))
        window = max(2, round(NO_REPEAT_SECONDS * self.frame_rate))
        guards = [NoRepeat(window, self.silence) for _ in range(rows)] if no_repeat else []

        inputs = model.start.expand(len(cond), 1, -1)
        if prime is not None and len(prime):
            primed = torch.as_tensor(prime[:, : self.levels].astype(np.int64), device=self.device)
            inputs = torch.cat([inputs, model.frame_inputs(primed[None]).expand(len(cond), -1, -1)], dim=1)
            for guard in guards:
                for token in prime[:, 0]:
                    guard.push(int(token))
        cond_in = model.cond_in(cond)
        out, state = model.rnn(inputs + cond_in[:, None], model.initial_state(cond))
        hidden = model.norm(out[:, -1])

        made = 0
        pending: list[np.ndarray] = []
        while made < frames:
            tokens, on_host = self._sample_frame(hidden, rows, guided, guidance, temperature, top_k, guards, generator)
            pending.append(on_host.numpy().astype(np.uint16))
            made += 1
            if len(pending) == chunk_frames or made == frames:
                yield np.stack(pending, axis=1)
                pending = []
            if made < frames:
                step = (model.frame_inputs(tokens)[None] + cond_in.view(-1, rows, cond_in.shape[-1])).flatten(0, 1)
                hidden, state = self.frame.advance(step, state)
        if stats is not None:
            stats["no_repeat_interventions"] = sum(g.interventions for g in guards)

    def _sample_frame(self, hidden, rows, guided, guidance, temperature, top_k, guards,
                      generator) -> tuple[torch.Tensor, torch.Tensor]:
        """One frame's (rows, levels) tokens on the device and a copy on the host, level by level:
        one draw of uniforms per frame and inverse-CDF sampling over the top k (torch.multinomial
        alone cost 83 us a call here). One copy to the host per frame: on a GPU each is a wait."""
        uniforms = torch.rand(rows, self.levels, generator=generator, device=hidden.device)
        first = self.frame.first_layers(hidden)
        grouped = first.view(-1, rows, first.shape[-1])   # (2 under guidance: conditioned, null; rows; ...)
        chosen: list[torch.Tensor] = []
        for level in range(self.levels):
            logits = self.frame.logits(first, level)
            if guided:
                logits = torch.lerp(logits[rows:], logits[:rows], guidance)
            if level == 0:
                for row, guard in enumerate(guards):
                    banned = guard.forbidden()
                    if banned and len(banned) < logits.shape[-1]:   # all banned: a pathological table
                        guard.interventions += 1
                        logits[row, list(banned)] = float("-inf")
            if 0 < top_k < logits.shape[-1]:
                values, indices = torch.topk(logits, top_k, dim=-1, sorted=False)   # any fixed order samples alike
            else:
                values, indices = torch.sort(logits, dim=-1, descending=True)
            cdf = torch.softmax(values / max(temperature, 1e-3), dim=-1).cumsum(-1)
            pick = torch.searchsorted(cdf, uniforms[:, level : level + 1] * cdf[:, -1:]).clamp_max(cdf.shape[-1] - 1)
            tokens = indices.gather(1, pick)[:, 0]
            chosen.append(tokens)
            if level + 1 < self.levels:
                self.frame.add_token(grouped, level, tokens)
        tokens = torch.stack(chosen, dim=1)
        on_host = tokens.cpu()
        for guard, token in zip(guards, on_host[:, 0].tolist()):
            guard.push(token)
        return tokens, on_host
