"""Source commands: the remote STAC APIs searched beside the local catalogue (add, list, remove)."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.table import Table

from cubeport.cli.base import AsJson, DataRoot, app, context_for, out
from cubeport.errors import InputError

sources_app = typer.Typer(
    help="Remote STAC APIs searched beside the local items (`sources` in /stac/search).", no_args_is_help=True
)
app.add_typer(sources_app, name="sources")


@sources_app.command("add")
def sources_add(
    name: Annotated[str, typer.Argument(help="Lower-case letters, digits and '-'")],
    url: Annotated[str, typer.Argument(help="The root of the remote STAC API")],
    title: Annotated[str, typer.Option(help="Shown in listings")] = "",
    timeout: Annotated[
        float, typer.Option(help="Seconds; past them the source is left out with a warning")
    ] = 10.0,
    header: Annotated[
        list[str] | None,
        typer.Option(
            help="'Name: value' sent with every request; '-' reads one per line from stdin (for credentials)"
        ),
    ] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Replace a source of this name")] = False,
    data_root: DataRoot = None,
) -> None:
    """Register a remote STAC API as a source."""
    from cubeport.stac.federation import Source

    lines = [line for h in header or [] for line in (sys.stdin.read().splitlines() if h == "-" else [h])]
    headers = {}
    for line in filter(str.strip, lines):
        key, colon, value = line.partition(":")
        if not colon or not key.strip():
            raise InputError(f"header {line.split(':')[0]!r}: give 'Name: value'")
        headers[key.strip()] = value.strip()
    source = context_for(data_root).stac_sources.add(
        Source(name, url, title, headers, timeout), replace=replace
    )
    out.print(
        f"source {source.name}: {source.url}"
        + (f" (headers {', '.join(sorted(headers))})" if headers else "")
    )


@sources_app.command("list")
def sources_list(data_root: DataRoot = None, as_json: AsJson = False) -> None:
    """List the sources (header names only: their values are credentials)."""
    sources = [s.public() for s in context_for(data_root).stac_sources.list()]
    if as_json:
        out.print_json(json.dumps(sources))
        return
    table = Table("name", "url", "title", "timeout", "headers")
    for s in sources:
        table.add_row(s["name"], s["url"], s["title"], f"{s['timeout_seconds']:g} s", ", ".join(s["headers"]))
    out.print(table if sources else "no sources")


@sources_app.command("remove")
def sources_remove(name: Annotated[str, typer.Argument()], data_root: DataRoot = None) -> None:
    """Remove a source."""
    context_for(data_root).stac_sources.remove(name)
    out.print(f"removed source {name}")
