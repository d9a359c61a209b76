"""What every command shares: the typer app, consoles, common options and the Context."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cubeport.config import load_settings

if TYPE_CHECKING:
    from cubeport.context import Context

app = typer.Typer(
    name="cubeport",
    help="Cubeport: Earth-observation data cubes, maps and time series.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
out = Console()
err = Console(stderr=True)

DataRoot = Annotated[
    str | None,
    typer.Option(
        "--data-root",
        envvar="CUBEPORT_DATA_ROOT",
        show_envvar=True,
        help="Local folder or s3://bucket/prefix holding the data [default: ./cubeport-data]",
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def context_for(data_root: str | None, **overrides: Any) -> Context:
    from cubeport.context import Context  # here, so that `--help` does not wait for xarray and zarr to load

    return Context(load_settings(data_root=data_root, **overrides))


def split(text: str | None) -> list[str] | None:
    """A comma-separated option as a list (None stays None)."""
    return [t.strip() for t in text.split(",") if t.strip()] if text is not None else None


@app.callback()
def _main(
    config: Annotated[
        str | None,
        typer.Option(
            "--config", envvar="CUBEPORT_CONFIG", help="YAML settings file (see docs/configuration.md)"
        ),
    ] = None,
) -> None:
    if config:
        os.environ["CUBEPORT_CONFIG"] = config


def progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
        disable=not err.is_terminal and not os.environ.get("CUBEPORT_PROGRESS"),
    )
