"""soundtok decode: a tokens store back to audio files (or WAV on stdout)."""

from __future__ import annotations

import os
from typing import Annotated, Optional

import typer

from soundtok_cli.errors import EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, InputError, SoundtokError, UsageError

EPILOG = """Examples:

  soundtok decode library.zarr.zip -o 'decoded/{stem}.wav'

  soundtok encode rain.wav | soundtok decode -o rain-copy.flac

  soundtok decode rain.zarr --levels 2 --start 10 --end 20 -o - | sox -t wav - -d

  soundtok generate "rain on a tin roof" -d 10m | soundtok decode --normalize -o rain.flac

OUT is one file (all channels of one source), - (WAV on stdout), or a template with {stem},
{name}, {dir}, {index} or {ext} for stores that hold many sources. By default the original sample
rate, channel count and duration come back. --levels N decodes only the N coarsest levels.
Decoded audio can peak above full scale (the codec rebuilds the sound, not every sample); what
would clip is written at full scale with a warning naming the --gain that avoids it.
--normalize scales each file to a peak of -1 dBFS instead (generated sound comes at whatever
level the model made it): each file is decoded to a temporary file first, so it is written when
its source is whole, also on stdout.
A long item that a stream holds in parts (soundtok generate writes it so) is decoded as the parts
arrive, in bounded memory: with -o -, WAV flows to stdout before the stream ends.
A spatial store (soundtok spatialize) renders its sources at their positions with --render
binaural|stereo|foa|hoa2|hoa3|5.1|7.1.4, mixed into OUT (a template: one file per source):

  soundtok spatialize rain.wav --at "behind left" | soundtok decode --render binaural -o rain-3d.wav

Exit status: 0 all decoded, 1 some sources failed, 2 nothing could be done."""



def decode(
    store: Annotated[Optional[str], typer.Argument(help="Tokens store (x.zarr, x.zarr.zip, a stream file), or - for stdin.", show_default=False)] = None,
    output: Annotated[str, typer.Option("-o", "--output", help="Output file, - for WAV on stdout, or a template like 'out/{stem}.wav'.")] = ...,
    levels: Annotated[Optional[int], typer.Option("--levels", "-l", help="Decode only the N coarsest levels (lower bitrate).")] = None,
    start: Annotated[float, typer.Option("--start", help="Start time in seconds.")] = 0.0,
    end: Annotated[Optional[float], typer.Option("--end", help="End time in seconds (default: the end).")] = None,
    sample_rate: Annotated[Optional[int], typer.Option("--sample-rate", "-r", help="Output sample rate (default: the source's).")] = None,
    gain: Annotated[float, typer.Option("--gain", help="Level change in dB (e.g. -6 for audio that would clip).")] = 0.0,
    normalize: Annotated[bool, typer.Option("--normalize", help="Scale each file to a peak of -1 dBFS (two passes: a file comes out when its source is whole).")] = False,
    fmt: Annotated[Optional[str], typer.Option("--format", "-f", help="wav, flac or ogg (default: from OUT's extension).")] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")] = "auto",
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Only errors on stderr.")] = False,
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="One line per file written.")] = False,
    render: Annotated[Optional[str], typer.Option("--render", help="Spatial store: render binaural, stereo, foa, hoa2, hoa3, 5.1 or 7.1.4.")] = None,
    hrtf: Annotated[Optional[str], typer.Option("--hrtf", help="With --render binaural: SOFA file of HRIRs (default: built-in MIT KEMAR).")] = None,
    room: Annotated[Optional[str], typer.Option("--room", help="With --render: small, hall or outdoor.")] = None,
) -> None:
    """Decode tokens back into audio."""
    from soundtok_cli.codec.files import decode_source, plan_decode
    from soundtok_cli.codec.sources import group_sources, output_path
    from soundtok_cli.console import Reporter
    from soundtok_cli.io.audio import AudioWriter, output_format
    from soundtok_cli.io.inputs import refuse_binary_to_terminal
    from soundtok_cli.io.normalize import NORMALIZE_PEAK_DBFS, write_normalized
    from soundtok_cli.io.stream import read_batches
    from soundtok_cli.models.registry import codec_for_store
    from soundtok_cli.progress import AudioProgress, format_hours, format_speed
    from soundtok_cli.threads import configure_torch_threads

    reporter = Reporter("decode", quiet=quiet, verbose=verbose)
    if render is not None:  # a spatial store, rendered by soundtok_cli.spatial
        from soundtok_cli.spatial.pipeline import decode_render

        if levels is not None or start or end is not None or gain or normalize:
            raise UsageError("--levels, --start, --end, --gain and --normalize do not apply with --render")
        raise typer.Exit(decode_render(store or "-", output, render, hrtf=hrtf, room=room, rate=sample_rate,
                                       fmt=fmt, device=device, reporter=reporter))
    if hrtf is not None or room is not None:
        raise UsageError("--hrtf and --room apply with --render")
    if start < 0 or (end is not None and end <= start):
        raise UsageError("need 0 <= --start < --end")
    if sample_rate is not None and not 8000 <= sample_rate <= 192000:
        raise UsageError("must be between 8000 and 192000 Hz", "--sample-rate")
    if levels is not None and levels < 1:
        raise UsageError("must be at least 1", "--levels")
    if not -120.0 <= gain <= 60.0:
        raise UsageError("must be between -120 and +60 dB", "--gain")
    if normalize and gain:
        raise UsageError("--normalize sets the level itself; give --gain or --normalize", "--gain")
    scale = 10 ** (gain / 20)
    audio_format = output_format(output, fmt)
    if output == "-":
        refuse_binary_to_terminal("audio")
    templated = "{" in output
    configure_torch_threads()

    codec = None
    written: set[str] = set()
    progress = AudioProgress(reporter, None, "decoding")
    decoded = 0
    # Items that a stream holds in parts are decoded as the parts arrive (see decode_source).
    groups = group_sources(_token_batches(read_batches(store or "-", parts=True), store or "-"))
    try:
        group = next(groups, None)
        if group is None:
            raise InputError("holds no items", store or "-")
        index = 0
        while group is not None:
            # Look ahead: a single OUT file takes one source only. A source still arriving in parts
            # is read first; what follows it is checked before its file is published.
            following = _PENDING if group.rest is not None else next(groups, None)
            if not templated and (index > 0 or following is not None and following is not _PENDING):
                raise _one_file(output)
            if codec is None:
                codec = codec_for_store(group.attrs, device, store or "-")
            try:
                path = output_path(output, group.source, index, audio_format) if templated else output
                if path in written:
                    raise InputError(f"output {path} would be written twice (give the template {{index}} or {{dir}})", group.source)
                stored_levels = group.channels[0].shape[1]
                use = stored_levels if levels is None else levels
                if use > stored_levels:
                    raise UsageError(f"the store has {stored_levels} levels; cannot decode {use}", "--levels")
                rate = sample_rate or group.sample_rate
                plan = plan_decode(group.duration, codec.config.frame_rate, rate, start, end)
                if path != "-" and os.path.dirname(path):
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                with AudioWriter(path, rate, len(group.channels), audio_format, frames=plan.frames_out) as writer:
                    blocks = decode_source(codec, group, plan, use)
                    if normalize:
                        gain_db = write_normalized(blocks, writer, len(group.channels))
                        reporter.detail(f"{path}: normalised by {gain_db:+.1f} dB to a peak of {NORMALIZE_PEAK_DBFS:g} dBFS")
                    else:
                        for block in blocks:
                            writer.write(block * scale if gain else block)
                    if following is _PENDING:
                        following = next(groups, None)
                        if not templated and following is not None:
                            raise _one_file(output)
                if clipping := writer.clipping():
                    reporter.warn(f"{path}: {clipping}; lower the level with --gain {gain - writer.reduction_to_fit_db():g}")
                written.add(path)
                decoded += 1
                progress.advance(plan.frames_out / rate)
                reporter.detail(f"{group.source} -> {path}")
            except InputError as error:
                reporter.error(error)
            if following is _PENDING:  # the source failed before what follows it was read
                following = next(groups, None)
            group, index = following, index + 1
    except SoundtokError as error:
        progress.close()
        if isinstance(error, UsageError) or decoded == 0:
            raise
        reporter.error(error)
    progress.close()
    reporter.note(f"decoded {decoded} source{'' if decoded == 1 else 's'} ({format_hours(progress.audio_seconds)}) at {format_speed(progress.speed, 1.0)}"
                  + (f"; {reporter.failures} failed" if reporter.failures else ""))
    raise typer.Exit(EXIT_USAGE if decoded == 0 else EXIT_SOME_FAILED if reporter.failures else EXIT_OK)


_PENDING = object()  # the source after one still arriving in parts: not read yet


def _one_file(output: str) -> UsageError:
    return UsageError(f"{output} is one file but the store holds several sources; use a template such as 'out/{{stem}}.wav'", "-o")


def _token_batches(batches, subject: str):
    """The batches of a tokens store; a spatial store is told how it decodes."""
    for batch in batches:
        if batch.kind == "spatial":
            raise InputError("is a spatial store; give --render binaural, stereo, foa, hoa2, hoa3, 5.1 "
                             "or 7.1.4 to render it", subject)
        if batch.kind != "tokens":
            raise InputError(f"is {'an' if batch.kind[0] in 'aeiou' else 'a'} {batch.kind} store, "
                             "expected tokens", subject)
        yield batch


def register(app: typer.Typer) -> None:
    app.command("decode", epilog=EPILOG)(decode)
