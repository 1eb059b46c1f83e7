"""soundtok separate: keep or remove a sound by describing it, split stems, and remove hum, clicks or hiss."""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated, Optional

import typer

from soundtok_cli.errors import EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, InputError, UsageError

EPILOG = """Examples:

  soundtok separate interview.wav --keep speech -o voice.wav --residual room.wav

  soundtok separate field.flac --remove "crowd chatter" -o quieter.flac

  soundtok separate mix.wav --stems "speech,music,ambience" -o 'stems/{stem}-{part}.wav'

  soundtok separate old-take.wav --remove hum -o clean.wav

  soundtok separate tapes/ --remove hum,clicks,hiss -o 'clean/{stem}.flac' --residual 'removed/{stem}.wav'

  sox record.mp3 -t wav - | soundtok separate - --remove clicks --remove hiss --strength 0.5 | sox -t wav - -d

  soundtok encode take.wav | soundtok separate --remove hum | soundtok decode -o clean.wav

  soundtok separate library.zarr.zip --keep speech -o 'voices/{stem}.wav'

  soundtok separate library.zarr.zip --remove hum -o clean.zarr.zip --residual hum.zarr.zip

By description (the separation model): --keep DESCRIPTION keeps what it describes (several
descriptions keep all of them), --remove DESCRIPTION removes it, --stems A,B,C writes one file
per description (OUT needs {part}; --residual then gets whatever no stem took). Descriptions
are embedded by the joint space's text tower; one the model cannot ground ("quarterly report")
is refused, naming the nearest concepts it knows. What is kept and what is removed always add
up to the input.

By signal processing: hum (mains hum at 50 or 60 Hz, +-1 Hz, and its harmonics, found
automatically; a file without hum is left untouched and reported), clicks (impulsive clicks and
crackle, repaired by interpolation) and hiss (stationary broadband noise; --strength 0 to 2,
default 1), applied in the order hum, clicks, hiss, before any separation by description.

OUT is a file (.wav, .flac or .ogg), - (WAV on stdout; the default when stdout is not a
terminal) or a template with {stem}, {name}, {dir}, {index}, {ext} (and {part} for --stems)
for several inputs. --residual writes what was removed (input minus output) the same way.
Sample rate, channels and length are kept; restoration treats each channel on its own, the
separation model applies one mask to all channels (the stereo image stays).

Token stores are accepted too (x.zarr, x.zarr.zip, a stream file, or a token stream on stdin):
each source is decoded with the codec the store records and separated as an audio file would
be. When every input is a token store and OUT is a stream (- or, with no -o, a pipe) or a store
(x.zarr, x.zarr.zip), tokens come out: the result re-encoded with the same codec at the same
number of levels, one item per channel under the source's name; --residual is then a store or -
too (kept and removed add up to the decoded input before each is re-encoded, which is lossy),
and --stems needs {part} in the store's name ('stem-{part}.zarr.zip'). With an audio OUT,
each source is written as audio ({stem} is the source's name in the store). Exit status: 0 all
inputs written, 1 some failed (the rest were written), 2 nothing could be done or a usage error."""



def separate(
    inputs: Annotated[Optional[list[str]], typer.Argument(help="Audio files, directories, globs, @list.txt, token stores (x.zarr, x.zarr.zip), or - for stdin (audio or a token stream).", show_default=False)] = None,
    keep: Annotated[Optional[list[str]], typer.Option("--keep", "-K", help="Keep the sound a description names, e.g. 'speech' (repeatable or comma-separated: keep all).")] = None,
    remove: Annotated[Optional[list[str]], typer.Option("--remove", "-R", help="hum, clicks, hiss, or a description such as 'crowd chatter' (repeatable or comma-separated).")] = None,
    stems: Annotated[Optional[str], typer.Option("--stems", help="Split into one file per description, e.g. 'speech,music,ambience' (OUT needs {part}).")] = None,
    output: Annotated[Optional[str], typer.Option("-o", "--output", help="Output file, - for stdout (WAV, or tokens from token stores), a template like 'out/{stem}.wav', or a store (x.zarr, x.zarr.zip) from token stores.")] = None,
    residual: Annotated[Optional[str], typer.Option("--residual", help="Also write what was removed (input minus output): a file, - or a template.")] = None,
    strength: Annotated[float, typer.Option("--strength", help="Hiss reduction strength, 0 (none) to 2 (default 1).")] = 1.0,
    audio_format: Annotated[Optional[str], typer.Option("--audio-format", help="wav, flac or ogg for OUT and the residual (default: from the extension).")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="Report format on stdout: text (notes on stderr) or json (JSON Lines).")] = "text",
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Only errors on stderr.")] = False,
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="Also say where each file was written.")] = False,
) -> None:
    """Keep or remove a sound by describing it, split stems, or remove hum, clicks or hiss."""
    from soundtok_cli.console import Reporter
    from soundtok_cli.io.inputs import refuse_binary_to_terminal, is_terminal_stdout
    from soundtok_cli.io.audio import output_format
    from soundtok_cli.progress import format_speed
    from soundtok_cli.separate import parse_removals, split_descriptions
    from soundtok_cli.separate.tokens import (Codecs, expand_inputs, is_store_name, separate_source,
                                              separate_to_tokens, store_sources)

    reporter = Reporter("separate", quiet=quiet, verbose=verbose)
    things, removals = parse_removals(remove) if remove else ([], [])
    keeps = split_descriptions(keep or [])
    parts = split_descriptions([stems]) if stems is not None else []
    if stems is not None and not parts:
        raise UsageError("an empty list; give descriptions such as 'speech,music,ambience'", "--stems")
    if keep is not None and not keeps:
        raise UsageError("an empty description; say what to keep, e.g. 'speech' or 'rain'", "--keep")
    if sum(bool(x) for x in (keeps, removals, parts)) > 1:
        raise UsageError("give one of --keep, --stems or --remove with a description (--remove hum, clicks or hiss "
                         "go with any of them)", "--stems" if parts else "--keep")
    if not (things or keeps or removals or parts):
        raise UsageError("say what to keep or remove: --keep speech, --remove 'crowd chatter', --stems "
                         "'speech,music', or --remove hum,clicks,hiss", "--keep")
    if fmt not in ("text", "json"):
        raise UsageError(f"unknown format '{fmt}' (text, json)", "--format")
    if not 0.0 <= strength <= 2.0:
        raise UsageError("must be between 0 and 2", "--strength")

    # Token stores (by name, or a zip header on stdin or in a file) are told from audio here;
    # tokens come out when every input is a token store and OUT is a stream or a store.
    expanded = list(expand_inputs(inputs))
    named = [entry for entry in expanded if not isinstance(entry, InputError)]
    stores = sum(entry.store for entry in named)
    if is_store_name(output) and stores < len(named):
        raise UsageError(f"{output} is a token store, written only when every input is one; for audio inputs give an "
                         "audio file (.wav, .flac, .ogg) or a template such as 'out/{stem}.wav'", "-o")
    tokens_out = is_store_name(output) or (bool(named) and stores == len(named) and output in (None, "-"))
    if tokens_out:
        if output is None:
            if is_terminal_stdout():
                raise UsageError("refusing to write a token stream to a terminal; give -o x.zarr.zip, -o FILE.wav, "
                                 "or a pipe", "-o")
            output = "-"
        if parts and "{part}" not in output:
            raise UsageError(f"{output} is one store but --stems makes {len(parts)}; give a store name with {{part}}, "
                             "such as 'stem-{part}.zarr.zip'", "-o")
        if residual is not None and residual != "-" and not is_store_name(residual):
            raise UsageError(f"{residual} is audio but the output is tokens; give the residual as a store "
                             "(x.zarr, x.zarr.zip) or - for a stream", "--residual")
        for path, option in ((output.replace("{part}", ""), "-o"), (residual, "--residual")):
            if path is not None and "{" in path:
                raise UsageError(f"{path}: a token store holds every source; its name takes no template"
                                 + (" but {part} (--stems)" if option == "-o" else ""), option)
        if audio_format is not None:
            raise UsageError("applies to audio OUT only; this run writes tokens (every input is a token store and "
                             "OUT is a stream or a store)", "--audio-format")
    else:
        if output is None:
            if parts:
                raise UsageError("--stems writes one file per stem: give a template with {part}, such as 'stems/{stem}-{part}.wav'", "-o")
            if is_terminal_stdout():
                raise UsageError("refusing to write audio to a terminal; give -o FILE, a template, or a pipe", "-o")
            output = "-"
        if parts and "{part}" not in output:
            raise UsageError(f"{output} is one file but --stems makes {len(parts)}; use a template with {{part}}, "
                             "such as 'stems/{stem}-{part}.wav'", "-o")
    if output == "-" and residual == "-":
        raise UsageError("the output and the residual cannot both go to stdout", "--residual")
    if fmt == "json" and "-" in (output, residual):
        raise UsageError("--format json writes the report to stdout, which then cannot carry audio or tokens; give -o FILE")
    out_format = res_format = None
    if not tokens_out:
        out_format = output_format(output.replace("{part}", "part"), audio_format, "--audio-format")
        res_format = (output_format(residual, audio_format, "--audio-format", "--residual")
                      if residual is not None else None)
    if "-" in (output, residual):
        refuse_binary_to_terminal("token stream" if tokens_out else "audio")

    separation, described = None, None
    if keeps or removals or parts:
        from soundtok_cli.models.registry import load_separator
        from soundtok_cli.threads import configure_torch_threads

        configure_torch_threads(workers=2)  # one thread: measured faster than two on 2 cores (bench.separation)
        separator = load_separator()
        mode, texts, option = (("keep", keeps, "--keep") if keeps else ("remove", removals, "--remove") if removals
                               else ("stems", parts, "--stems"))
        queries = separator.ground(texts, option)
        for query in queries:
            if query.loose:
                reporter.note(f"{query.text!r} is only loosely like what the model knows; it is taken as "
                              f"{query.matched()}")
        separation = lambda sample_rate: separator.stage(queries, sample_rate, mode)  # noqa: E731
        described = {"mode": mode, "descriptions": [q.text for q in queries],
                     "nearest_concepts": [[name for name, _ in q.nearest] for q in queries]}

    sources = []
    for entry in expanded:
        if isinstance(entry, InputError):
            reporter.error(entry)
        else:
            sources.append(entry)
    if not tokens_out:
        for path, option in ((output, "-o"), (residual, "--residual")):
            if path is not None and len(sources) > 1 and "{" not in path.replace("{part}", ""):
                raise UsageError(f"{path} is one file but there are {len(sources)} inputs; use a template such as 'out/{{stem}}.wav'", option)

    sinks, res_sink, sink_names = [], None, []
    if tokens_out:
        from soundtok_cli.io.sink import open_sink

        sink_names = [output.replace("{part}", _file_word(part)) for part in parts] if parts else [output]
        names = sink_names + ([residual] if residual is not None else [])
        clash = next((n for n in names if names.count(n) > 1), None)
        if clash is not None:
            raise UsageError(f"two outputs would both be {clash}", "--residual" if clash == residual else "-o")
        sinks = [open_sink(name) for name in sink_names]
        res_sink = open_sink(residual) if residual is not None else None
    single = not tokens_out and any(p is not None and "{" not in p.replace("{part}", "") for p in (output, residual))

    started = time.monotonic()
    done, seconds, written = 0, 0.0, set()

    def audio_paths(source: str, index: int, subject: str) -> tuple[list[str], str | None]:
        """OUT (one path per stem) and the residual for one source, refusing clashes."""
        out_paths = [_fill(output, source, index, out_format, part) for part in (parts or [None])]
        res_path = _fill(residual, source, index, res_format) if residual else None
        for path in out_paths + [res_path]:
            if path is not None and path != "-" and path in written:
                raise InputError(f"output {path} would be written twice (give the template {{index}} or {{dir}})", subject)
        if res_path in out_paths or len(set(out_paths)) < len(out_paths):
            raise InputError(f"two outputs would both be {res_path if res_path in out_paths else out_paths[0]}", subject)
        return out_paths, res_path

    def finished(report, subject: str, out_paths: list[str], res_path: str | None, store: str | None = None) -> None:
        nonlocal done, seconds
        report.separated = described
        written.update(p for p in out_paths + [res_path] if p and p != "-")
        done += 1
        seconds += report.duration
        if fmt == "json":
            record = report.as_json() if store is None else {**report.as_json(), "store": store}
            sys.stdout.write(json.dumps(record) + "\n")
            sys.stdout.flush()
        reporter.note(f"{subject}: {_describe(report)}")
        reporter.detail(f"{subject} -> {', '.join(out_paths)}" + (f", residual {res_path}" if res_path else ""))

    codecs = Codecs(threads=separation is None)  # the separation model has set torch's threads

    def separate_store(name: str, index: int) -> int:
        """Every source of one token store: decoded with the codec the store records, separated as
        an audio file is, written as audio (OUT per source) or re-encoded into the sinks. A bad
        source is reported and skipped; a store that cannot be read (another kind, corrupt, made
        with other weights) is reported once. Returns the next template {index}."""
        count = 0
        try:
            for src in _at_most_one(store_sources(name), single, output, name):
                count, index = count + 1, index + 1
                codec = codecs.for_store(src.attrs, name)  # the same for every source: a failure ends the store
                try:
                    if tokens_out:
                        report, outs, rest = separate_to_tokens(codec, src, things, len(parts) or 1,
                                                                residual is not None, strength, separation)
                        for sink, batch in zip(sinks, outs):
                            sink.write(batch, subject=src.label)
                        if res_sink is not None:
                            res_sink.write(rest, subject=src.label)
                        out_paths, res_path = sink_names, residual
                        report.output, report.residual = (sink_names if parts else output), residual
                    else:
                        out_paths, res_path = audio_paths(src.source, index - 1, src.label)
                        report = separate_source(codec, src, things, out_paths if parts else out_paths[0], res_path,
                                                 out_format, res_format, strength, separation)
                except InputError as error:
                    reporter.error(error)
                    continue
                finished(report, src.label, out_paths, res_path, store=name)
            if count == 0:
                raise InputError("holds no sources", name)
        except InputError as error:
            reporter.error(error)
        return index

    all_sinks = sinks + ([res_sink] if res_sink is not None else [])
    if not all(entry.store for entry in sources):
        from soundtok_cli.separate.restore import restore_file  # (scipy) once there is audio to restore
    try:
        index = 0
        for entry in sources:
            if entry.store:
                index = separate_store(entry.name, index)
                continue
            source, index = entry.name, index + 1
            try:
                out_paths, res_path = audio_paths(source, index - 1, source)
                report = restore_file(source, things, out_paths if parts else out_paths[0], res_path, out_format,
                                      res_format, strength, separation=separation)
            except InputError as error:
                reporter.error(error)
                continue
            finished(report, source, out_paths, res_path)
    except BaseException:
        for sink in all_sinks:
            sink.abort()
        raise
    for sink in all_sinks:
        if done:
            sink.close()
        else:
            sink.abort()
    elapsed = max(time.monotonic() - started, 1e-9)
    if done == 0 and reporter.failures:
        raise typer.Exit(EXIT_USAGE)
    verb = "restored" if separation is None else "separated"
    noun = "source" if sources and all(entry.store for entry in sources) else "file"
    reporter.note(f"{verb} {done} {noun}{'' if done == 1 else 's'} ({seconds:.1f} s) at {format_speed(seconds, elapsed)}"
                  + (f"; {reporter.failures} failed" if reporter.failures else ""))
    raise typer.Exit(EXIT_USAGE if done == 0 else EXIT_SOME_FAILED if reporter.failures else EXIT_OK)


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


def _fill(template: str, source: str, index: int, fmt: str, part: str | None = None) -> str:
    """OUT or the residual for one input (and one stem): a template filled in, or a plain path."""
    from soundtok_cli.codec.sources import output_path

    if part is not None:
        template = template.replace("{part}", _file_word(part))
    return output_path(template, source, index, fmt) if "{" in template else template


def _file_word(description: str) -> str:
    """A description as a file-name part: 'crowd chatter' -> 'crowd-chatter'."""
    word = "-".join("".join(c if c.isalnum() else " " for c in description.lower()).split())
    return word or "part"


def _describe(report) -> str:
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
        parts.append(f"hiss reduced (noise floor {report.hiss_floor_dbfs:.0f} dBFS)" if report.hiss_floor_dbfs is not None
                     else "no hiss floor found (left untouched)")
    return "; ".join(parts)


def register(app: typer.Typer) -> None:
    app.command("separate", epilog=EPILOG)(separate)
