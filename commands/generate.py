"""soundtok generate: endless, non-repeating sound from a description, an example or a recording."""

from __future__ import annotations

import secrets
from typing import Annotated, Optional

import typer

from soundtok_cli.errors import EXIT_OK, EXIT_SOME_FAILED, UsageError
from soundtok_cli.generate import DEFAULT_GUIDANCE, DEFAULT_TEMPERATURE, DEFAULT_TOP_K

EPILOG = """Examples:

  soundtok generate "rain on a tin roof" --duration 10m | soundtok decode -o rain.flac

  soundtok generate "distant thunder" --duration 30s --seed 7 -o thunder.wav

  soundtok generate --continue rain-30s.wav --duration 1h | soundtok decode -o rain-1h.flac

  soundtok generate "rain on a tin roof" --index ~/sfx-index --duration 1h -o rain.zarr

  soundtok generate --scene forest.toml | soundtok decode --render binaural -o forest.wav

  soundtok generate "a heavy door slams" --one-shot --takes 5 -o 'door-{take}.wav'

Tokens are written as they are made (a stream on stdout by default), so a decode downstream
starts before generation ends; OUT may also be a store (x.zarr, x.zarr.zip) or audio (.wav,
.flac, .ogg; scaled to a peak of -1 dBFS unless --no-normalize). The same prompt, seed and
settings with the same model give the same tokens; the seed is printed when none is given.
No 1 s stretch of coarse tokens ever occurs twice (silence aside): the sound goes on without
looping. --continue carries on from a sound (the output holds the sound, then its continuation,
as one item, so it decodes without a seam); --like makes new material in the manner of an
example; --index draws on the best match for the prompt in your indexed library. --takes N
makes N variations of one request together (much faster per take than one after another), each
its own item named ...-take1, ...-take2 (an audio OUT needs {take} in its name); they are
written when all are made. --one-shot makes a single sound for a sampler or an editor: each
take is generated 1 s longer, starts just before its loudest moment near the start and fades
out over its last 50 ms (audio OUT; 3 s unless --duration). A scene (--scene) is a bed and
events; see examples/scenes/. Exit status: 0 written, 1 written but some scene elements were
left out (they do not fit the scene; see --allow-mismatch), 2 nothing could be done (bad input
or usage)."""


def generate(
    prompt: Annotated[Optional[str], typer.Argument(help="What to make, in words (\"rain on a tin roof\").", show_default=False)] = None,
    duration: Annotated[Optional[str], typer.Option("--duration", "-d", help="How long: 30s, 10m, 1h30m, 2:30 (new material, after any --continue sound). Default 30s, or the scene's.", show_default=False)] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Random seed (default: a new one, printed).", show_default=False)] = None,
    temperature: Annotated[float, typer.Option("--temperature", "-t", help="Sampling temperature: lower is tamer, higher is wilder.")] = DEFAULT_TEMPERATURE,
    guidance: Annotated[float, typer.Option("--guidance", help="How strongly to follow the prompt (1 = plain sampling).")] = DEFAULT_GUIDANCE,
    top_k: Annotated[int, typer.Option("--top-k", help="Sample among the k likeliest tokens (0 = all).")] = DEFAULT_TOP_K,
    continue_from: Annotated[Optional[str], typer.Option("--continue", help="Carry on from this sound: an audio file or a tokens store.", show_default=False)] = None,
    like: Annotated[Optional[str], typer.Option("--like", help="Make new material in the manner of this audio file or store.", show_default=False)] = None,
    index_path: Annotated[Optional[str], typer.Option("--index", "-i", help="Draw on the best match for the prompt in this index (see soundtok index).", show_default=False)] = None,
    scene: Annotated[Optional[str], typer.Option("--scene", help="A scene file (TOML or JSON): a bed and events, rendered as a spatial store.", show_default=False)] = None,
    takes: Annotated[int, typer.Option("--takes", help="Make this many variations, each its own item (audio OUT: {take} in the name).")] = 1,
    one_shot: Annotated[bool, typer.Option("--one-shot", help="A single sound (a door slam, a shot): start each take at its event and fade it out at the end. Audio OUT; duration default 3s, at most 60s.")] = False,
    allow_mismatch: Annotated[bool, typer.Option("--allow-mismatch", help="Keep scene elements that do not fit the scene's description.")] = False,
    output: Annotated[Optional[str], typer.Option("-o", "--output", help="- (a token stream on stdout, the default), x.zarr, x.zarr.zip, or audio (.wav, .flac, .ogg).")] = None,
    normalize: Annotated[bool, typer.Option("--normalize/--no-normalize", help="Audio OUT: scale to a peak of -1 dBFS (generated levels vary from clip to clip).")] = True,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")] = "auto",
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Only errors on stderr.")] = False,
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="Also say which model and settings made the sound.")] = False,
) -> None:
    """Generate sound from a description, an example or a recording."""
    from soundtok_cli.console import Reporter
    from soundtok_cli.generate.durations import parse_duration
    from soundtok_cli.generate.output import write_generation
    from soundtok_cli.io.inputs import refuse_binary_to_terminal

    reporter = Reporter("generate", quiet=quiet, verbose=verbose)
    if temperature <= 0:
        raise UsageError("must be positive", "--temperature")
    if guidance < 0:
        raise UsageError("must be at least 0", "--guidance")
    if top_k < 0:
        raise UsageError("must be 0 (all) or more", "--top-k")
    if scene is not None and (prompt or continue_from or like or index_path):
        raise UsageError("a scene file gives its own prompts; give --scene alone (with --seed, --duration, -o)")
    if index_path is not None and prompt is None:
        raise UsageError("--index draws on the library by the prompt: give a PROMPT too", "--index")
    if scene is None and prompt is None and continue_from is None and like is None:
        raise UsageError("give a PROMPT, --continue SOUND, --like SOUND or --scene FILE")
    if prompt is not None and not prompt.strip():
        raise UsageError("empty prompt; describe the sound (\"rain on a tin roof\")", "PROMPT")
    seconds = parse_duration(duration, "--duration") if duration is not None else None
    check_takes(takes, scene, output)
    check_one_shot(one_shot, seconds, scene, continue_from, output)
    if output in (None, "-"):
        refuse_binary_to_terminal("token stream")
    if seed is None and scene is not None:  # the scene's own seed; also checks the file before the model loads
        from soundtok_cli.generate.scene import read_generation_scene

        seed = read_generation_scene(scene).seed
    announce_seed = seed is None
    if seed is None:
        seed = secrets.randbelow(2**31)
    write_generation(prompt=prompt, seconds=seconds, seed=seed, temperature=temperature, guidance=guidance,
                     top_k=top_k, continue_from=continue_from, like=like, index_path=index_path, scene=scene,
                     allow_mismatch=allow_mismatch, output=output, device=device, reporter=reporter,
                     announce_seed=announce_seed, normalize=normalize, takes=takes, one_shot=one_shot)
    raise typer.Exit(EXIT_SOME_FAILED if reporter.failures else EXIT_OK)


MAX_TAKES = 64


def check_takes(takes: int, scene: str | None, output: str | None) -> None:
    if not 1 <= takes <= MAX_TAKES:
        raise UsageError(f"must be between 1 and {MAX_TAKES}", "--takes")
    if takes > 1 and scene is not None:
        raise UsageError("takes are variations of one sound; a scene varies itself (give --seed for another)", "--takes")
    from soundtok_cli.generate.output import AUDIO_SUFFIXES

    if takes > 1 and output is not None and output.lower().endswith(AUDIO_SUFFIXES) and "{take}" not in output:
        raise UsageError(f"{takes} takes need {{take}} in the audio file name, e.g. door-{{take}}.wav", "-o")


def check_one_shot(one_shot: bool, seconds: float | None, scene: str | None, continue_from: str | None,
                   output: str | None) -> None:
    if not one_shot:
        return
    from soundtok_cli.generate.oneshot import MAX_SECONDS
    from soundtok_cli.generate.output import AUDIO_SUFFIXES

    if scene is not None or continue_from is not None:
        raise UsageError("a one-shot is a single new sound; it does not go with --scene or --continue", "--one-shot")
    if output is None or not output.lower().endswith(AUDIO_SUFFIXES):
        raise UsageError("a one-shot is cut from decoded audio: write audio, e.g. -o door.wav", "--one-shot")
    if seconds is not None and not 0 < seconds <= MAX_SECONDS:
        raise UsageError(f"a one-shot lasts more than 0 and at most {MAX_SECONDS:g} s", "--duration")


def register(app: typer.Typer) -> None:
    app.command("generate", epilog=EPILOG)(generate)
