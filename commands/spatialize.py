"""soundtok spatialize: place sounds in 3D; write a spatial store, or render audio directly."""

from __future__ import annotations

import time
from typing import Annotated, Optional

import typer

from soundtok_cli.errors import EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, InputError, UsageError

EPILOG = """Examples:

  soundtok spatialize whisper.wav --at "behind your left ear" --render binaural -o whisper-3d.wav

  soundtok spatialize jet.wav --path "from right to left overhead over 5s" --render 5.1 -o jet.wav

  soundtok spatialize bee.wav --trajectory bee.csv --render hoa3 -o bee.ambix.wav

  soundtok spatialize --scene scene.toml --render binaural --room small -o scene.wav

  soundtok spatialize rain.wav --at "az=135 el=0 dist=0.5" | soundtok decode --render binaural -o rain.wav

Placement (one of): --at "az=135 el=20 dist=0.5" (degrees and metres; azimuth counter-clockwise
from the front, elevation up, as in AmbiX and SOFA) or words: front/ahead (az 0), behind/back/rear
(180), left (90), right (-90), above/up (el 45), overhead (el 90), below/down/under (el -45),
near/close (0.5 m), far/distant (10 m), very (very near 0.25 m, very far 30 m), ear (0.2 m at the
left or right ear), distances like 2m or "3 metres"; directions add up ("behind your left ear" =
az 135, 0.2 m). --path "from PLACE to PLACE [via PLACE] [overhead] [over 5s]" or "around
[clockwise] [over 4s]"; without a duration the path takes the sound's length. --trajectory CSV:
rows t,az,el,dist. --scene FILE: a TOML (or .json) scene of [[source]] tables with file, at, path
or trajectory, and optional start (s) and gain_db; room = "small" at the top. --gain DB changes
every source's level (near sources are louder: what would clip is written at full scale, with a
warning).

Without --render the output is a spatial store (tokens plus a position per frame; a stream on
stdout, x.zarr or x.zarr.zip) for `soundtok decode --render`. With --render, all sources are mixed
into OUT (a scene); a template ('out/{stem}.wav') renders each source to its own file. Channel
orders: binaural L R; stereo L R (+-30 deg); foa/hoa2/hoa3 AmbiX (ACN, SN3D); 5.1 L R C LFE Ls Rs;
7.1.4 L R C LFE Lb Rb Ls Rs Ltf Rtf Ltb Rtb (the WAV/ffmpeg order). Multichannel inputs are mixed
to mono and placed as one point source. Exit status: 0 all inputs placed, 1 some failed (the rest
were written), 2 nothing could be done or a usage error."""


def spatialize(
    inputs: Annotated[Optional[list[str]], typer.Argument(help="Audio files, directories, globs, @list.txt, token stores, or - for stdin (audio or a token stream).", show_default=False)] = None,
    at: Annotated[Optional[str], typer.Option("--at", help="Where: 'az=135 el=0 dist=0.5' or words ('behind your left ear').")] = None,
    path: Annotated[Optional[str], typer.Option("--path", help="A movement: 'from right to left overhead over 5s', 'around over 4s'.")] = None,
    trajectory: Annotated[Optional[str], typer.Option("--trajectory", help="CSV file of t,az,el,dist rows (seconds, degrees, metres).")] = None,
    scene: Annotated[Optional[str], typer.Option("--scene", help="Scene file (TOML or JSON): several sources, each with its placement.")] = None,
    render: Annotated[Optional[str], typer.Option("--render", help="Render audio: binaural, stereo, foa, hoa2, hoa3, 5.1 or 7.1.4.")] = None,
    output: Annotated[Optional[str], typer.Option("-o", "--output", help="Store (x.zarr, x.zarr.zip, -) or, with --render, an audio file, - or a template.")] = None,
    hrtf: Annotated[Optional[str], typer.Option("--hrtf", help="SOFA file of HRIRs for binaural (default: built-in MIT KEMAR).")] = None,
    room: Annotated[Optional[str], typer.Option("--room", help="Add a room: small, hall or outdoor.")] = None,
    via: Annotated[Optional[str], typer.Option("--via", help="Render binaural/stereo/5.1/7.1.4 through ambisonics: foa, hoa2 or hoa3.")] = None,
    doppler: Annotated[bool, typer.Option("--doppler/--no-doppler", help="Pitch shift of moving sources.")] = True,
    gain: Annotated[float, typer.Option("--gain", help="Level change in dB for every source (added to a scene's gain_db).")] = 0.0,
    sample_rate: Annotated[Optional[int], typer.Option("--sample-rate", "-r", help="Output sample rate (default: the highest of the inputs).")] = None,
    fmt: Annotated[Optional[str], typer.Option("--format", "-f", help="wav, flac or ogg (default: from OUT's extension).")] = None,
    bitrate: Annotated[Optional[float], typer.Option("--bitrate", "-b", help="Store output: codec bitrate in kbps for audio inputs.")] = None,
    levels: Annotated[Optional[int], typer.Option("--levels", "-l", help="Store output: codebook levels for audio inputs (default 8).")] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda (for the codec).")] = "auto",
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Only errors on stderr.")] = False,
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="One line per source.")] = False,
) -> None:
    """Place sounds in 3D: binaural, ambisonics, loudspeakers, moving sources."""
    from soundtok_cli.console import Reporter
    from soundtok_cli.io.inputs import refuse_binary_to_terminal
    from soundtok_cli.io.audio import output_format
    from soundtok_cli.progress import format_speed
    from soundtok_cli.spatial import pipeline as sp

    reporter = Reporter("spatialize", quiet=quiet, verbose=verbose)
    if sample_rate is not None and not 8000 <= sample_rate <= 192000:
        raise UsageError("must be between 8000 and 192000 Hz", "--sample-rate")
    if bitrate is not None and levels is not None:
        raise UsageError("give --bitrate or --levels, not both")
    if not -120.0 <= gain <= 40.0:
        raise UsageError("must be between -120 and +40 dB", "--gain")
    if scene is not None:
        if inputs:
            raise UsageError("give input files or --scene, not both (the scene names its files)")
        if at is not None or path is not None or trajectory is not None:
            raise UsageError("--scene places its own sources; drop --at, --path and --trajectory")
        the_scene = sp.read_scene(scene)
        entries, room = the_scene.entries, room or the_scene.room
        for entry in entries:
            entry.gain_db += gain
    else:
        place = sp.placement(at, path, trajectory)
        entries = []
        for name in sp.expand_inputs(inputs):
            if isinstance(name, InputError):
                reporter.error(name)
            else:
                entries.append(sp.SceneEntry(name, place, gain_db=gain))
    codecs = sp.CodecCache("soundtok-codec", device)
    started = time.monotonic()
    done = 0

    if render is not None:
        sp.check_render_options(render, via, room, hrtf)
        if output is None:
            output = "-"
        job = sp.RenderJob(render, output, output_format(output, fmt), sample_rate, hrtf, room, doppler, via)
        if output == "-":
            refuse_binary_to_terminal("audio")
        done, seconds = sp.render_all(job, sp.with_audio(sp.placed_inputs(entries, codecs, audio=True)), reporter.error)
        for clipping, reduction in job.clipped:
            reporter.warn(f"{clipping}; lower the level with --gain {gain - reduction:g}")
        summary = (f"rendered {done} source{'' if done == 1 else 's'} {render} ({seconds:.1f} s) to "
                   f"{', '.join(job.written) or 'nothing'}")
    else:
        from soundtok_cli.io.sink import open_sink
        from soundtok_cli.spatial.kind import spatial_batch

        if room is not None or via is not None or hrtf is not None or not doppler:
            raise UsageError("--room, --via, --hrtf and --no-doppler apply when rendering; give --render, "
                             "or pass --room/--hrtf to `soundtok decode --render`")
        if levels is not None and not 1 <= levels <= 32:
            raise UsageError("must be between 1 and 32", "--levels")
        if output in (None, "-"):
            refuse_binary_to_terminal("spatial store")
        sink = open_sink(output, "spatial store")
        if bitrate is not None and bitrate <= 0:
            raise UsageError("must be positive", "--bitrate")
        n_levels = codecs.get().levels_for_bitrate(bitrate) if bitrate is not None else levels
        seconds = 0.0
        with sink:
            for placed in sp.placed_inputs(entries, codecs, audio=False, levels=n_levels):
                if isinstance(placed, InputError):
                    reporter.error(placed)
                    continue
                try:
                    sink.write(spatial_batch(placed.attrs["codec"], "spatialize", rows=sp.spatial_rows(placed), room=room),
                               placed.source)
                except InputError as error:
                    reporter.error(error)
                    continue
                done += 1
                seconds += placed.duration
                reporter.detail(f"{placed.source}: {placed.duration:.2f} s")
            if done == 0:
                sink.abort()
        summary = f"placed {done} source{'' if done == 1 else 's'} ({seconds:.1f} s) in a spatial store"
    elapsed = max(time.monotonic() - started, 1e-9)
    if done == 0 and reporter.failures:  # the error lines said it all
        raise typer.Exit(EXIT_USAGE)
    reporter.note(summary + f" at {format_speed(seconds, elapsed)}" + (f"; {reporter.failures} failed" if reporter.failures else ""))
    raise typer.Exit(EXIT_USAGE if done == 0 else EXIT_SOME_FAILED if reporter.failures else EXIT_OK)


def register(app: typer.Typer) -> None:
    app.command("spatialize", epilog=EPILOG)(spatialize)
