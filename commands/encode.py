"""soundtok encode: audio files to a tokens store (a stream on stdout, x.zarr or x.zarr.zip)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Optional

import typer

from soundtok_cli.errors import EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, InputError, UsageError

EPILOG = """Examples:

  soundtok encode sounds/ -o library.zarr.zip      # a folder, recursively

  soundtok encode --bitrate 3 a.wav b.flac | soundtok info

  sox in.mp3 -t wav - | soundtok encode - -o in.zarr

  soundtok encode @files.txt --jobs 2 -o lib.zarr

Each channel becomes one item, so stereo decodes back to stereo. Codes depend only on nearby
audio: encoding a file whole or in pieces gives the same codes. Exit status: 0 all inputs encoded,
1 some failed (the rest were written), 2 nothing could be done."""


def encode(
    inputs: Annotated[Optional[list[str]], typer.Argument(help="Audio files, directories, globs, @list.txt, or - for stdin.", show_default=False)] = None,
    output: Annotated[Optional[str], typer.Option("-o", "--output", help="x.zarr, x.zarr.zip, or - for a stream on stdout (the default when stdout is not a terminal).")] = None,
    bitrate: Annotated[Optional[float], typer.Option("--bitrate", "-b", help="Target bitrate in kbps (0.75 per level; 6 = 8 levels).")] = None,
    levels: Annotated[Optional[int], typer.Option("--levels", "-l", help="Number of codebook levels, 1 (coarsest) to 32.")] = None,
    codec_name: Annotated[str, typer.Option("--codec", help="Codec to use (see `soundtok models`).")] = "soundtok-codec",
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Files decoded and encoded in parallel.")] = 1,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")] = "auto",
    report_format: Annotated[str, typer.Option("--format", help="Per-file report on stderr: text or json (JSON Lines).")] = "text",
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Only errors on stderr.")] = False,
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="One line per file.")] = False,
) -> None:
    """Encode audio into learned tokens."""
    from soundtok_cli.codec.files import TokenBatcher, encode_audio
    from soundtok_cli.console import Reporter
    from soundtok_cli.io.audio import open_audio
    from soundtok_cli.io.inputs import expand_audio_inputs, refuse_binary_to_terminal
    from soundtok_cli.io.sink import open_sink
    from soundtok_cli.models.registry import load_codec
    from soundtok_cli.progress import AudioProgress, format_hours, format_speed
    from soundtok_cli.threads import configure_torch_threads

    reporter = Reporter("encode", quiet=quiet, verbose=verbose)
    if bitrate is not None and levels is not None:
        raise UsageError("give --bitrate or --levels, not both")
    if jobs < 1:
        raise UsageError("must be at least 1", "--jobs")
    if report_format not in ("text", "json"):
        raise UsageError(f"unknown format '{report_format}' (text or json)", "--format")
    if output in (None, "-"):
        refuse_binary_to_terminal("token stream")  # before the slow model load
    configure_torch_threads(jobs)
    codec = load_codec(codec_name, device)
    if bitrate is not None and bitrate <= 0:
        raise UsageError("must be positive", "--bitrate")
    n_levels = codec.levels_for_bitrate(bitrate) if bitrate is not None else (levels or 8)
    if not 1 <= n_levels <= codec.config.levels:
        raise UsageError(f"must be between 1 and {codec.config.levels}", "--levels")
    codec_attrs = codec.describe(n_levels)

    sources = list(expand_audio_inputs(inputs or ["-"]))
    progress = AudioProgress(reporter, len(sources), "encoding")

    def work(source):
        if isinstance(source, InputError):
            return source
        try:
            with open_audio(source) as reader:
                return encode_audio(codec, reader, n_levels)
        except InputError as error:
            return error

    def report(record: dict) -> None:
        if report_format == "json":
            reporter.console.file.write(json.dumps(record) + "\n")
        elif record["status"] == "ok":
            reporter.detail(f"{record['source']}: {record['channels']} ch, {record['duration_s']:.2f} s")

    sink = open_sink(output)  # only now: a file sink makes its temporary at once, `with` removes it
    batcher = TokenBatcher(sink, codec_attrs)
    ok = 0
    with sink, ThreadPoolExecutor(max_workers=jobs) as pool:
        for result in pool.map(work, sources) if jobs > 1 else map(work, sources):
            if isinstance(result, InputError):
                reporter.error(result)
                report({"source": result.subject, "status": "error", "error": result.message})
                progress.advance(0.0)
                continue
            ok += 1
            batcher.add(result)
            progress.advance(result.duration)
            report({"source": result.source, "status": "ok", "channels": len(result.channels),
                    "duration_s": round(result.duration, 6), "frames": len(result.channels[0])})
        if ok == 0:
            sink.abort()
        else:
            batcher.flush()
    progress.close()
    failed = reporter.failures
    summary = (f"encoded {ok} of {len(sources)} inputs ({format_hours(progress.audio_seconds)}) at "
               f"{format_speed(progress.speed, 1.0)}, {codec.config.bitrate_kbps(n_levels):g} kbps ({n_levels} levels)")
    if failed:
        summary += f"; {failed} failed"
    if report_format == "json":
        report({"status": "summary", "encoded": ok, "failed": failed, "audio_s": round(progress.audio_seconds, 3),
                "x_real_time": round(progress.speed, 2), "levels": n_levels, "bitrate_kbps": codec.config.bitrate_kbps(n_levels)})
    else:
        reporter.note(summary)
    raise typer.Exit(EXIT_USAGE if ok == 0 else EXIT_SOME_FAILED if failed else EXIT_OK)


def register(app: typer.Typer) -> None:
    app.command("encode", epilog=EPILOG)(encode)
