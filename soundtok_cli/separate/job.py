"""One `soundtok separate` run once its options are checked: every input through the same steps,
each result to its audio files or into the token sinks, a report per input.

Audio inputs go through `restore.restore_file`; token stores are decoded with their codec and go
through the same steps (`tokens.py`), then come out as audio files or are re-encoded into token
sinks. A bad input is reported and skipped; sinks are closed only if something was written and
aborted otherwise, so nothing half-written is left.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import Callable

from soundtok_cli.errors import InputError, UsageError
from soundtok_cli.separate import Settings


@dataclass
class Plan:
    things: list[str]  # restoration steps, in order
    settings: Settings  # --strength, --noise-from, --reduction
    separation: Callable[[int], object] | None  # sample rate -> the separation stage
    described: dict | None  # what the separation was asked for (reports)
    output: str  # a path, "-" or a template ({part} for stems); a store name when tokens_out
    residual: str | None
    parts: list[str]  # --stems descriptions
    tokens_out: bool
    out_format: str | None = None
    res_format: str | None = None
    json_reports: bool = False
    device: str = "auto"  # the codec's, for token stores


def load_separation(keeps: list[str], removals: list[str], parts: list[str], reporter, device: str = "auto"):
    """(stage factory, description for reports) for the descriptions given, or (None, None).
    Unknown descriptions are refused (UsageError naming the nearest concepts); loose ones noted.
    On a CUDA device the network runs in float32 (on an H200 its output agreed with the CPU's int8
    layers at 59 dB SI-SDR, tests/test_cuda.py)."""
    if not (keeps or removals or parts):
        return None, None
    from soundtok_cli.models.registry import load_separator, pick_device
    from soundtok_cli.threads import configure_torch_threads

    # one thread on 2 cores: 60 s of stereo ran at 23.5x real time on one thread, 11.4x on two
    configure_torch_threads(workers=2)
    separator = load_separator(device=pick_device(device))
    mode, texts, option = (("keep", keeps, "--keep") if keeps else ("remove", removals, "--remove") if removals
                           else ("stems", parts, "--stems"))
    queries = separator.ground(texts, option)
    for query in queries:
        if query.loose:
            reporter.note(f"{query.text!r} is only loosely like what the model knows; it is taken as {query.matched()}")
        if query.speech:
            reporter.detail(f"{query.text!r} is a voice: the voice network's mask combined with the noise "
                            "suppressor's and the sub-band voice mask's")
    described = {"mode": mode, "descriptions": [q.text for q in queries],
                 "nearest_concepts": [[name for name, _ in q.nearest] for q in queries],
                 "voice": [q.speech for q in queries]}
    return (lambda sample_rate: separator.stage(queries, sample_rate, mode)), described


@dataclass
class SeparateJob:
    plan: Plan
    reporter: object
    done: int = 0
    seconds: float = 0.0
    written: set = field(default_factory=set)

    def run(self, sources: list) -> None:
        """Every input (tokens.Input: a name and whether it is a token store) in order."""
        from soundtok_cli.separate.tokens import Codecs

        plan = self.plan
        self.sinks, self.res_sink, self.sink_names = [], None, []
        if plan.tokens_out:
            self._open_sinks()
        else:
            for path, option in ((plan.output, "-o"), (plan.residual, "--residual")):
                if path is not None and len(sources) > 1 and "{" not in path.replace("{part}", ""):
                    raise UsageError(f"{path} is one file but there are {len(sources)} inputs; use a template such as "
                                     "'out/{stem}.wav'", option)
        self.single = not plan.tokens_out and any(p is not None and "{" not in p.replace("{part}", "")
                                                  for p in (plan.output, plan.residual))
        self.codecs = Codecs(plan.device, threads=plan.separation is None)  # the separation model has set torch's threads
        all_sinks = self.sinks + ([self.res_sink] if self.res_sink is not None else [])
        try:
            index = 0
            for entry in sources:
                if entry.store:
                    index = self._store(entry.name, index)
                else:
                    index = self._audio(entry.name, index)
        except BaseException:
            for sink in all_sinks:
                sink.abort()
            raise
        for sink in all_sinks:
            if self.done:
                sink.close()
            else:
                sink.abort()

    def _open_sinks(self) -> None:
        from soundtok_cli.io.sink import open_sink

        plan = self.plan
        self.sink_names = [plan.output.replace("{part}", file_word(p)) for p in plan.parts] if plan.parts else [plan.output]
        names = self.sink_names + ([plan.residual] if plan.residual is not None else [])
        clash = next((n for n in names if names.count(n) > 1), None)
        if clash is not None:
            raise UsageError(f"two outputs would both be {clash}", "--residual" if clash == plan.residual else "-o")
        self.sinks = [open_sink(name) for name in self.sink_names]
        self.res_sink = open_sink(plan.residual) if plan.residual is not None else None

    def _audio(self, source: str, index: int) -> int:
        from soundtok_cli.separate.restore import restore_file  # (scipy) once there is audio to restore

        plan = self.plan
        try:
            out_paths, res_path = self._audio_paths(source, index, source)
            report = restore_file(source, plan.things, out_paths if plan.parts else out_paths[0], res_path,
                                  plan.out_format, plan.res_format, plan.settings, separation=plan.separation)
        except InputError as error:
            self.reporter.error(error)
            return index + 1
        self._finished(report, source, out_paths, res_path)
        return index + 1

    def _store(self, name: str, index: int) -> int:
        """Every source of one token store: decoded with the codec the store records, separated as
        an audio file is, written as audio (OUT per source) or re-encoded into the sinks. A bad
        source is reported and skipped; a store that cannot be read (another kind, corrupt, made
        with other weights) is reported once. Returns the next template {index}."""
        from soundtok_cli.separate.tokens import separate_source, separate_to_tokens, store_sources

        plan = self.plan
        count = 0
        try:
            for src in _at_most_one(store_sources(name), self.single, plan.output, name):
                count, index = count + 1, index + 1
                codec = self.codecs.for_store(src.attrs, name)  # the same for every source: a failure ends the store
                try:
                    if plan.tokens_out:
                        report, outs, rest = separate_to_tokens(codec, src, plan.things, len(plan.parts) or 1,
                                                                plan.residual is not None, plan.settings, plan.separation)
                        for sink, batch in zip(self.sinks, outs):
                            sink.write(batch, subject=src.label)
                        if self.res_sink is not None:
                            self.res_sink.write(rest, subject=src.label)
                        out_paths, res_path = self.sink_names, plan.residual
                        report.output, report.residual = (self.sink_names if plan.parts else plan.output), plan.residual
                    else:
                        out_paths, res_path = self._audio_paths(src.source, index - 1, src.label)
                        report = separate_source(codec, src, plan.things, out_paths if plan.parts else out_paths[0],
                                                 res_path, plan.out_format, plan.res_format, plan.settings,
                                                 plan.separation)
                except InputError as error:
                    self.reporter.error(error)
                    continue
                self._finished(report, src.label, out_paths, res_path, store=name)
            if count == 0:
                raise InputError("holds no sources", name)
        except InputError as error:
            self.reporter.error(error)
        return index

    def _audio_paths(self, source: str, index: int, subject: str) -> tuple[list[str], str | None]:
        """OUT (one path per stem) and the residual for one source, refusing clashes."""
        plan = self.plan
        out_paths = [fill(plan.output, source, index, plan.out_format, part) for part in (plan.parts or [None])]
        res_path = fill(plan.residual, source, index, plan.res_format) if plan.residual else None
        for path in out_paths + [res_path]:
            if path is not None and path != "-" and path in self.written:
                raise InputError(f"output {path} would be written twice (give the template {{index}} or {{dir}})", subject)
        if res_path in out_paths or len(set(out_paths)) < len(out_paths):
            raise InputError(f"two outputs would both be {res_path if res_path in out_paths else out_paths[0]}", subject)
        return out_paths, res_path

    def _finished(self, report, subject: str, out_paths: list[str], res_path: str | None, store: str | None = None) -> None:
        report.separated = self.plan.described
        self.written.update(p for p in out_paths + [res_path] if p and p != "-")
        self.done += 1
        self.seconds += report.duration
        if self.plan.json_reports:
            record = report.as_json() if store is None else {**report.as_json(), "store": store}
            sys.stdout.write(json.dumps(record) + "\n")
            sys.stdout.flush()
        self.reporter.note(f"{subject}: {describe(report)}")
        self.reporter.detail(f"{subject} -> {', '.join(out_paths)}" + (f", residual {res_path}" if res_path else ""))


def _at_most_one(sources, single: bool, output: str, name: str):
    """The sources of a store; when OUT is one file, a second is refused before the first is
    written (a usage error, like decode's)."""
    sources = iter(sources)
    first = next(sources, None)
    if first is None:
        return
    if single and next(sources, None) is not None:
        raise UsageError(f"{output} is one file but {name} holds several sources; use a template such as "
                         "'out/{stem}.wav'", "-o")
    yield first
    yield from sources


def fill(template: str, source: str, index: int, fmt: str, part: str | None = None) -> str:
    """OUT or the residual for one input (and one stem): a template filled in, or a plain path."""
    from soundtok_cli.codec.sources import output_path

    if part is not None:
        template = template.replace("{part}", file_word(part))
    return output_path(template, source, index, fmt) if "{" in template else template


def file_word(description: str) -> str:
    """A description as a file-name part: 'crowd chatter' -> 'crowd-chatter'."""
    word = "-".join("".join(c if c.isalnum() else " " for c in description.lower()).split())
    return word or "part"


def describe(report) -> str:
    """One line on what was done to one input."""
    if report.silent:
        return "silent; passed through unchanged"
    parts = []
    if report.separated:
        said = ", ".join(repr(d) for d in report.separated["descriptions"])
        parts.append({"keep": f"kept {said}", "remove": f"removed {said}", "stems": f"split into {said}"}[report.separated["mode"]])
    if report.hum_found is not None:
        hum = report.hum
        parts.append(f"hum at {hum['frequency']:.2f} Hz removed ({len(hum['harmonics'])} harmonics)" if hum
                     else "no hum found (left untouched)")
    if report.clicks is not None:
        parts.append(f"{report.clicks} click{'' if report.clicks == 1 else 's'} repaired")
    if "hiss" in report.removed:
        learnt = f" from {report.noise_print}" if report.noise_print else ""
        parts.append(f"hiss reduced (noise floor {report.hiss_floor_dbfs:.0f} dBFS{learnt})"
                     if report.hiss_floor_dbfs is not None else "no hiss floor found (left untouched)")
    if report.reverb_removed_db is not None:
        parts.append(f"reverberation removed (the level down {-report.reverb_removed_db:.1f} dB)")
    line = "; ".join(parts)
    return f"{line}; what it removes turned down {report.reduction_db:g} dB, not taken out" if report.reduction_db else line
