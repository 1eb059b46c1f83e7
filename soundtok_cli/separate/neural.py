"""Separation by description at run time: ground the queries, then mask long signals chunk by chunk.

Any sample rate without resampling: the network was trained on 48 kHz frames of 1024 samples
(21.3 ms, 46.9 Hz bins) every 512 samples; another rate gets the same frame duration and hop
(n_fft = 1024 * rate / 48000), so its bins are spaced alike and the network sees the bins it
knows (missing bins above a lower rate's Nyquist frequency are silence to it, as a band-limited
48 kHz recording would be; bins above 24 kHz get the mask of the highest bin it sees).

Any channel count: the mask is computed once from the mean of the channels' magnitude spectra
(channels in opposite phase do not cancel) and applied to every channel, so a stereo image stays
where it was.

Long files run through `stream.Chunked` in chunks of 12 s with 1 s of context on each side,
cross-faded nowhere: each output sample comes from the chunk that has it in its middle. The
bidirectional layers see only the context, so chunked output differs from whole-file output by
far less than the separation error (tests/test_separate_model.py measures it).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from soundtok_cli.errors import SoundtokError, UsageError
from soundtok_cli.separate.concepts import (CROWD_QUERIES, GROUNDED, LOOSE, MUSIC_PHRASES, SPEECH_QUERIES,
                                            nearest, readable)
from soundtok_cli.separate.model import HOP, N_FFT, SAMPLE_RATE

CONTEXT_SECONDS = 1.0
CHUNK_SECONDS = 12.0


@dataclass(frozen=True)
class Query:
    text: str
    vector: np.ndarray
    score: float  # cosine similarity to the nearest concept
    nearest: list[tuple[str, float]]
    speech: bool = False  # asks for a voice: kept with the speech mask (separate/speech.py)

    @property
    def loose(self) -> bool:
        """Accepted, but only loosely like anything the model was trained on."""
        return self.score < LOOSE

    def matched(self) -> str:
        return ", ".join(f"'{name}'" for name, _ in self.nearest)


class QuerySeparator:
    """The separation network with its concepts; `stage` and `extract` do the work."""

    def __init__(self, net, concept_vectors: np.ndarray, concept_names: list[str], identity: dict, device: str = "cpu",
                 speech_net=None, voice_net=None):
        ready = lambda n: int8_layers(n.eval()) if device == "cpu" else n.eval().to(device)
        self.net = ready(net)
        # the same network fine-tuned on close-microphone voices, for queries that ask for a voice
        # (the model card: it keeps unseen voices better and other sounds worse than `net`)
        self.voice_net = ready(voice_net) if voice_net is not None else None
        # separate/subband.py, always on the CPU, int8 like the networks there: its GRU ran 0.53 -> 0.36 s
        # per 15 s chunk, the speech figures on `train.subband score`'s three sets the same to 0.01 dB
        self.speech_net = int8_layers(speech_net.eval()) if speech_net is not None else None
        self.concept_vectors = concept_vectors
        self.concept_names = concept_names
        self.identity = identity
        self.device = device
        voices = [i for i, name in enumerate(concept_names) if name in SPEECH_QUERIES + CROWD_QUERIES + MUSIC_PHRASES]
        self._voice_phrases = concept_vectors[voices], [concept_names[i] in SPEECH_QUERIES for i in voices]

    def ground(self, texts: list[str], option: str = "--keep") -> list[Query]:
        """Embed the queries; a UsageError for an empty one, or one far from every concept the
        model was trained on (naming the nearest concepts it knows)."""
        from soundtok_cli.embed.text import encode_queries

        cleaned = [" ".join(t.split()) for t in texts]
        for text in cleaned:
            if not text:
                raise UsageError("an empty description; say what to separate, e.g. 'speech' or 'rain'", option)
        vectors = encode_queries(cleaned)
        queries = []
        for text, vector in zip(cleaned, vectors):
            close = nearest(vector, self.concept_vectors, self.concept_names)
            query = Query(text, np.asarray(vector, np.float32), close[0][1], close, self._asks_for_speech(vector))
            if query.score < GROUNDED:
                hint = ", ".join(f"'{name}'" for name, _ in nearest(vector, *self._readable_concepts))
                raise UsageError(f"cannot ground {text!r}: the separation model knows nothing like it "
                                 f"(nearest concepts: {hint}); describe the sound itself", option)
            queries.append(query)
        return queries

    @functools.cached_property
    def _readable_concepts(self) -> tuple[np.ndarray, list[str]]:
        """The vectors and names a refusal may show (concepts.readable); worked out on the first
        refusal, not at start-up, where every run would pay for it."""
        shown = readable(self.concept_names, _text_vocabulary())
        return self.concept_vectors[shown], [name for name, keep in zip(self.concept_names, shown) if keep]

    def _asks_for_speech(self, vector: np.ndarray) -> bool:
        """Closer to a speech phrase than to any crowd or music phrase, and at least loosely like
        it: "a man talking" (0.90 to "a man speaking") and "a woman speaking French" (0.70) are
        speech; "people talking" (0.86 to "a crowd of people talking"), "music" and "rain" are not."""
        vectors, is_speech = self._voice_phrases
        if not len(vectors):
            return False
        scores = vectors @ vector
        best = int(np.argmax(scores))
        return bool(is_speech[best] and scores[best] >= LOOSE)

    def masks(self, magnitude: np.ndarray, queries: list[Query]) -> np.ndarray:
        """(frames, bins) magnitude at the model's bin spacing -> (queries, frames, bins) masks: a
        query for a voice from the voice network (where the file has one), any other from the
        general one."""
        out = np.empty((len(queries),) + magnitude.shape, np.float32)
        for net in (self.net, self.voice_net):
            rows = [i for i, q in enumerate(queries) if self._network_for(q) is net]
            if rows:
                out[rows] = self._net_masks(net, magnitude, [queries[i] for i in rows])
        return out

    def _network_for(self, query: Query):
        return self.voice_net if query.speech and self.voice_net is not None else self.net

    def _net_masks(self, net, magnitude: np.ndarray, queries: list[Query]) -> np.ndarray:
        import torch

        bins = net.config.bins
        frames, have = magnitude.shape
        model_in = np.zeros((frames, bins), np.float32)
        model_in[:, : min(have, bins)] = magnitude[:, :bins]
        with torch.inference_mode():
            m = torch.from_numpy(model_in).to(self.device).unsqueeze(0).expand(len(queries), -1, -1)
            q = torch.from_numpy(np.stack([x.vector for x in queries])).to(self.device)
            out = net(m, q).float().cpu().numpy()
        if have > bins:  # above 24 kHz: the highest bin's mask
            out = np.concatenate([out, np.repeat(out[:, :, -1:], have - bins, axis=2)], axis=2)
        return out[:, :, :have]

    def stage(self, queries: list[Query], sample_rate: int, mode: str, refine: bool = True) -> "MaskStage":
        """refine=False: each query gets its network's mask alone, without the speech path or
        the snapping onto spectral patterns (benchmarks and tests)."""
        return MaskStage(self, queries, sample_rate, mode, refine)

    def extract(self, x: np.ndarray, sample_rate: int, query: str) -> np.ndarray:
        """The sound `query` describes, from x ((n,) or (n, channels)): benchmarks and tests. In
        the stage's own chunks, as `soundtok separate` runs it."""
        from soundtok_cli.separate.stream import run_all

        stage = self.stage(self.ground([query]), sample_rate, "keep")
        return run_all(stage, x, chunk=stage.chunk)


def _text_vocabulary() -> set[str]:
    """The whole words of the text tower's WordPiece vocabulary (empty when it is not installed:
    then no name reads as words and a refusal may show any concept)."""
    from soundtok_cli.embed.text import default_model_dir

    try:
        lines = (default_model_dir() / "vocab.txt").read_text(encoding="utf-8").split()
    except (OSError, SoundtokError):
        return set()
    return {w for w in lines if w.isalpha()}


def int8_layers(net):
    """An int8 copy (dynamic quantization) of the network's GRU and linear layers for the CPU: 60 s
    of 48 kHz audio on one thread of the development machine went from 13.4x to 21.9x real time;
    the output differs from the float32 network's by -27 dB (relative energy), far below the
    separation error."""
    import warnings

    import torch

    with warnings.catch_warnings():  # torch points eager quantization users to torchao; it works as is
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(net, {torch.nn.GRU, torch.nn.Linear}, dtype=torch.qint8)


class SpectralStage:
    """What the stages that mask a spectrum share (this module's, separate/dereverb.py's): frames
    of the separator's duration at any rate, chunks of CHUNK_SECONDS with CONTEXT_SECONDS of
    context on each side, whole hops long."""

    def __init__(self, sample_rate: int):
        self.sample_rate = sample_rate
        self.n_fft, self.hop = stft_geometry(sample_rate)
        self.before = self.after = int(CONTEXT_SECONDS * sample_rate) // self.hop * self.hop
        self.chunk = int(CHUNK_SECONDS * sample_rate) // self.hop * self.hop


class MaskStage(SpectralStage):
    """A `stream.Processor`: keep what the queries describe (mode "keep": one query, or several,
    giving their union), remove it ("remove"), or split into stems ("stems": one output per query,
    side by side as (n, queries * channels); masks summing past 1 are scaled down so the stems
    never hold more than the input)."""

    def __init__(self, separator: QuerySeparator, queries: list[Query], sample_rate: int, mode: str,
                 refine: bool = True):
        if mode not in ("keep", "remove", "stems"):
            raise ValueError(mode)
        super().__init__(sample_rate)
        self.separator, self.queries, self.mode, self.refine = separator, queries, mode, refine

    def process(self, x: np.ndarray, offset: int, end: int | None) -> np.ndarray:
        from soundtok_cli.separate.snap import STEMS_SHARPNESS, snap, snap_each
        from soundtok_cli.separate.speech import speech_mask

        n = len(x) - self.before - self.after
        spectrum = Spectrum(x, self.n_fft, self.hop)
        magnitude = spectrum.magnitude

        def masks_of(heard: np.ndarray) -> np.ndarray:
            masks = self.separator.masks(heard.astype(np.float32), self.queries)
            if not self.refine:
                return masks
            sounds = [i for i, query in enumerate(self.queries) if not query.speech]
            for i, query in enumerate(self.queries):
                if query.speech:
                    masks[i] = speech_mask(masks[i], heard, self.hop / self.sample_rate, self.separator.speech_net)
            if self.mode == "stems" and len(sounds) > 1:   # the stems share the patterns out
                masks[sounds] = snap(masks[sounds], heard, sharpness=STEMS_SHARPNESS)
            elif sounds:                                   # each description on its own
                masks[sounds] = snap_each(masks[sounds], heard)
            return masks

        masks = masks_inside(magnitude, offset, end, self.hop, masks_of,
                             np.zeros((len(self.queries),) + magnitude.shape))
        if self.mode == "stems":
            masks = masks / np.maximum(masks.sum(0, keepdims=True), 1.0)
        else:  # the union of what the queries describe
            masks = 1.0 - np.prod(1.0 - masks, axis=0, keepdims=True)
        outs = [spectrum.masked(mask)[self.before : self.before + n] for mask in masks]
        if self.mode == "remove":
            return x[self.before : self.before + n] - outs[0]
        return np.concatenate(outs, axis=1)


def stft_geometry(sample_rate: int) -> tuple[int, int]:
    """(n_fft, hop) at `sample_rate` with the 48 kHz frame's duration: the same 47 Hz bins."""
    if sample_rate == SAMPLE_RATE:
        return N_FFT, HOP
    n_fft = max(16, int(round(N_FFT * sample_rate / SAMPLE_RATE)))
    return n_fft, max(4, n_fft * HOP // N_FFT)


def masks_inside(magnitude: np.ndarray, offset: int, end: int | None, hop: int, masks_of, silent: np.ndarray) -> np.ndarray:
    """`masks_of` ((frames, bins) -> (..., frames, bins)) run on the frames centred inside the
    signal only; the frames over the zeros past a file's ends take the nearest one's mask: a
    second of zeros, never seen in training, cost held-out speech 0.6 dB (+1.31 against +1.92),
    and zeros would pass for a noise floor of nothing. `silent` when there is nothing to hear."""
    inside = signal_frames(len(magnitude), offset, end, hop)
    if not magnitude.any() or inside.start == inside.stop:
        return silent
    masks = masks_of(magnitude[inside])
    frames = [(0, 0)] * (masks.ndim - 2) + [(inside.start, len(magnitude) - inside.stop), (0, 0)]
    return np.pad(masks, frames, mode="edge")


def signal_frames(frames: int, offset: int, end: int | None, hop: int) -> slice:
    """The frames (centred at offset + j * hop) that lie inside the signal [0, end)."""
    first = max(0, -(offset // hop))
    last = frames if end is None else min(frames, -(-(end - offset) // hop))
    return slice(first, max(first, last))


class Spectrum:
    """A chunk's STFT (every channel) at a stage's frame geometry: the mean magnitude over the
    channels that the networks read, and the chunk with a mask applied to every channel."""

    def __init__(self, x: np.ndarray, n_fft: int, hop: int):
        import torch

        self.n_fft, self.hop, self.length = n_fft, hop, len(x)
        self.window = torch.hann_window(n_fft)
        signal = torch.from_numpy(np.ascontiguousarray(x.T, dtype=np.float32))  # (channels, samples)
        self.spec = torch.stft(signal, n_fft, hop, window=self.window, center=True, return_complex=True)

    @property
    def magnitude(self) -> np.ndarray:
        """(frames, bins), scaled to 48 kHz frames: a shorter window sums to less."""
        return self.spec.abs().mean(0).T.numpy() * (N_FFT / self.n_fft)

    def masked(self, mask: np.ndarray) -> np.ndarray:
        """(frames, bins) mask -> (samples, channels) float64."""
        import torch

        m = torch.from_numpy(mask.T.astype(np.float32)).unsqueeze(0)
        y = torch.istft(self.spec * m, self.n_fft, self.hop, window=self.window, center=True, length=self.length)
        return y.numpy().T.astype(np.float64)
