"""The command-line argument of the commands that read token stores and streams (info, cat).

Kept light (typer only): command modules import it when the CLI starts.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

# Read with soundtok_cli.io.stream.iter_sources, which gives "-" and no arguments this meaning.
StoresArgument = Annotated[
    Optional[list[str]],
    typer.Argument(help="Stores (.zarr, .zarr.zip), stream files or URLs; - or none: stdin "
                   "(a stream, or one store path per line).", show_default=False),
]
