"""soundtok models: the built-in models, their versions and checksums."""

from __future__ import annotations

from typing import Annotated

import typer

EPILOG = """Examples:

  soundtok models

  soundtok models --format json | jq -r .sha256

Weights ship inside the package as safetensors; every store records the name, version and
sha256 of the model that made it, and decode refuses a store made with other weights."""


def models(
    report_format: Annotated[str, typer.Option("--format", help="text or json (one JSON object per model).")] = "text",
) -> None:
    """List the built-in models."""
    from rich.console import Console
    from rich.table import Table

    from soundtok_cli.errors import UsageError
    from soundtok_cli.models.registry import describe_all, dumps

    if report_format not in ("text", "json"):
        raise UsageError(f"unknown format '{report_format}' (text or json)", "--format")
    entries = describe_all()
    if report_format == "json":
        typer.echo(dumps(entries))
        return
    table = Table(box=None, pad_edge=False)
    for column in ("name", "version", "kind", "sha256", "summary"):
        table.add_column(column)
    for e in entries:
        table.add_row(e["name"], e["version"], e["kind"], e["sha256"][:16], e["summary"])
    Console(soft_wrap=True).print(table)


def register(app: typer.Typer) -> None:
    app.command("models", epilog=EPILOG)(models)
