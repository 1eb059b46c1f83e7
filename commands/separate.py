"""soundtok separate: keep or remove a sound by describing it, split stems, and remove hum, clicks, hiss or reverb."""

from __future__ import annotations

import time
from typing import Annotated, Optional

import typer

from soundtok_cli.errors import EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, InputError, UsageError

EPILOG = """Examples:

  soundtok separate interview.wav --keep speech -o voice.wav --residual room.wav

  soundtok separate field.flac --remove "crowd chatter" -o quieter.flac

  soundtok separate interview.wav --keep speech --reduction 12 -o voice-forward.wav

  soundtok separate mix.wav --stems "speech,music,ambience" -o 'stems/{stem}-{part}.wav'

  soundtok separate street.wav --stems "a siren,rain" -o 'out/{part}.wav'

  soundtok separate old-take.wav --remove hum -o clean.wav

  soundtok separate tapes/ --remove hum,clicks,hiss -o 'clean/{stem}.flac' --residual 'removed/{stem}.wav'

  sox record.mp3 -t wav - | soundtok separate - --remove clicks --remove hiss --strength 0.5 | sox -t wav - -d

  soundtok separate takes/*.wav --remove hiss --noise-from 0-1.5 -o 'clean/{stem}.wav'

  soundtok separate concert.flac --remove hiss --noise-from room-tone.wav -o clean.flac

  soundtok separate hall-interview.wav --remove reverb --reduction 10 -o drier.wav

  soundtok encode take.wav | soundtok separate --remove hum | soundtok decode -o clean.wav

  soundtok separate library.zarr.zip --keep speech -o 'voices/{stem}.wav'

  soundtok separate library.zarr.zip --remove hum -o clean.zarr.zip --residual hum.zarr.zip

By description (the separation model): --keep DESCRIPTION keeps what it describes (several
descriptions keep all of them), --remove DESCRIPTION removes it, --stems A,B,C writes one file
per description (OUT needs {part}; --residual then gets whatever no stem took). Descriptions
are embedded by the joint space's text tower; one the model cannot ground ("quarterly report")
is refused, naming the nearest concepts it knows. A description of a voice ("speech",
"dialogue", "a man talking") is kept with a voice network's mask (the model fine-tuned on
close-microphone voices) combined with a noise suppressor's gain and a small sub-band network's
mask (it reads only how far each band rises above the noise floor), which keep voices the model
never heard; in two passes, the second measuring against the noise the first removed, so a
background that swells and falls is not kept at its loud moments. Any other description is
kept with the general network's mask, half of it snapped onto the recording's own spectral patterns (so a
sound goes mostly one way, not kept in one frame and dropped in the next); --stems share the
patterns out between the sounds they name, so naming what else is there ("a siren,rain") gives a
cleaner stem than --keep alone. What is kept and what
is removed always add up to the input. --reduction DB turns what is removed down by DB instead of
taking it out (with --keep, everything but what is kept; with hum, clicks, hiss or reverb, what
they remove): a room turned down 12 dB under a voice often sounds more natural than no room at
all.

By signal processing: hum (mains hum at 50 or 60 Hz, +-1 Hz, and its harmonics, found
automatically; a file without hum is left untouched and reported), clicks (impulsive clicks and
crackle, repaired by interpolation) and hiss (stationary broadband noise; --strength 0 to 2,
default 1), applied in the order hum, clicks, hiss (then reverb), before any separation by
description. Hiss is measured in the quietest moments of the whole file, or, with --noise-from,
in a noise print: a stretch of each input holding the noise alone (START-END, the room tone
before a take; after hum and clicks are removed) or a file of it (resampled to each input's
rate; its channels are averaged unless it has as many as the input). Give a print when the file
never pauses (music or an ambience over the hiss all through) or when the noise should be
measured, not guessed.

Reverb (a room's late reverberation; also 'reverberation'): a small network trained here on
sound in simulated rooms reads how each band's level decays and keeps the direct sound and the
first 50 ms of reflections; the room's tail goes to the residual. It runs after hum, clicks and
hiss, on all channels with one mask (the stereo image stays), at any sample rate. It reduces
reverberation rather than erasing it, helps most in large rooms, and changes dry sound a little
(a voice with no room comes out 19 dB SI-SDR from itself); --reduction 6 to 12 keeps some of the
room for a natural sound.

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
    remove: Annotated[Optional[list[str]], typer.Option("--remove", "-R", help="hum, clicks, hiss, reverb, or a description such as 'crowd chatter' (repeatable or comma-separated).")] = None,
    stems: Annotated[Optional[str], typer.Option("--stems", help="Split into one file per description, e.g. 'speech,music,ambience' (OUT needs {part}).")] = None,
    output: Annotated[Optional[str], typer.Option("-o", "--output", help="Output file, - for stdout (WAV, or tokens from token stores), a template like 'out/{stem}.wav', or a store (x.zarr, x.zarr.zip) from token stores.")] = None,
    residual: Annotated[Optional[str], typer.Option("--residual", help="Also write what was removed (input minus output): a file, - or a template.")] = None,
    strength: Annotated[float, typer.Option("--strength", help="Hiss reduction strength, 0 (none) to 2 (default 1).")] = 1.0,
    noise_from: Annotated[Optional[str], typer.Option("--noise-from", help="Learn the hiss from a noise print: a time range of each input holding the noise alone, START-END in seconds or m:ss (e.g. 0-1.5), or an audio file of it.", show_default=False)] = None,
    reduction: Annotated[Optional[float], typer.Option("--reduction", help="Turn down what is removed by this many dB instead of taking it all out (e.g. 12); the residual holds only what was taken.", show_default=False)] = None,
    audio_format: Annotated[Optional[str], typer.Option("--audio-format", help="wav, flac or ogg for OUT and the residual (default: from the extension).")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="Report format on stdout: text (notes on stderr) or json (JSON Lines).")] = "text",
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Only errors on stderr.")] = False,
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="Also say where each file was written.")] = False,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda, for the separation model and the codec of token stores.")] = "auto",
) -> None:
    """Keep or remove a sound by describing it, split stems, or remove hum, clicks, hiss or reverb."""
    from soundtok_cli.console import Reporter
    from soundtok_cli.devices import check_device
    from soundtok_cli.io.inputs import refuse_binary_to_terminal, is_terminal_stdout
    from soundtok_cli.io.audio import output_format
    from soundtok_cli.progress import format_speed
    from soundtok_cli.separate import Settings, parse_removals, split_descriptions
    from soundtok_cli.separate.job import Plan, SeparateJob, load_separation
    from soundtok_cli.separate.tokens import expand_inputs, is_store_name

    reporter = Reporter("separate", quiet=quiet, verbose=verbose)
    things, removals = parse_removals(remove) if remove else ([], [])
    keeps = split_descriptions(keep or [])
    parts = split_descriptions([stems]) if stems is not None else []
    if stems is not None and not parts:
        raise UsageError("an empty list; give descriptions such as 'speech,music,ambience'", "--stems")
    if keep is not None and not keeps:
        raise UsageError("an empty description; say what to keep, e.g. 'speech' or 'rain'", "--keep")
    if sum(bool(x) for x in (keeps, removals, parts)) > 1:
        raise UsageError("give one of --keep, --stems or --remove with a description (--remove hum, clicks, hiss "
                         "or reverb go with any of them)", "--stems" if parts else "--keep")
    if not (things or keeps or removals or parts):
        raise UsageError("say what to keep or remove: --keep speech, --remove 'crowd chatter', --stems "
                         "'speech,music', or --remove hum,clicks,hiss,reverb", "--keep")
    if fmt not in ("text", "json"):
        raise UsageError(f"unknown format '{fmt}' (text, json)", "--format")
    check_device(device)
    if not 0.0 <= strength <= 2.0:
        raise UsageError("must be between 0 and 2", "--strength")
    if reduction is not None:
        if parts:
            raise UsageError("--stems splits the input into parts; turning down applies to --keep and --remove",
                             "--reduction")
        if not 0.0 < reduction < float("inf"):
            raise UsageError("must be a positive number of decibels (e.g. 12)", "--reduction")
    noise_print = None
    if noise_from is not None:
        if "hiss" not in things:
            raise UsageError("a noise print is for --remove hiss; add it (e.g. --remove hiss --noise-from 0-1.5)",
                             "--noise-from")
        from soundtok_cli.separate.noiseprint import parse_noise_from  # (scipy) only for a noise print

        noise_print = parse_noise_from(noise_from)
    settings = Settings(strength, noise_print, reduction)

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

    separation, described = load_separation(keeps, removals, parts, reporter, device)
    sources = []
    for entry in expanded:
        if isinstance(entry, InputError):
            reporter.error(entry)
        else:
            sources.append(entry)
    plan = Plan(things, settings, separation, described, output, residual, parts, tokens_out, out_format, res_format,
                json_reports=fmt == "json", device=device)
    job = SeparateJob(plan, reporter)
    started = time.monotonic()
    job.run(sources)
    done, seconds = job.done, job.seconds
    elapsed = max(time.monotonic() - started, 1e-9)
    if done == 0 and reporter.failures:
        raise typer.Exit(EXIT_USAGE)
    verb = "restored" if separation is None else "separated"
    noun = "source" if sources and all(entry.store for entry in sources) else "file"
    reporter.note(f"{verb} {done} {noun}{'' if done == 1 else 's'} ({seconds:.1f} s) at {format_speed(seconds, elapsed)}"
                  + (f"; {reporter.failures} failed" if reporter.failures else ""))
    raise typer.Exit(EXIT_USAGE if done == 0 else EXIT_SOME_FAILED if reporter.failures else EXIT_OK)


def register(app: typer.Typer) -> None:
    app.command("separate", epilog=EPILOG)(separate)
