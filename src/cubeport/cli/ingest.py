"""`cubeport ingest`: product files into a cube, published only when complete."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from cubeport.cli.base import DataRoot, app, context_for, out, progress_bar, split


@app.command()
def ingest(
    sources: Annotated[
        list[str], typer.Argument(help="Input files: Zarr, NetCDF or GeoTIFF/COG", show_default=False)
    ],
    cube: Annotated[str, typer.Option("--cube", help="Id of the cube to write", show_default=False)],
    data_root: DataRoot = None,
    append: Annotated[bool, typer.Option("--append", help="Add new time steps to an existing cube")] = False,
    replace: Annotated[
        bool, typer.Option("--replace", help="Rebuild an existing cube from these inputs")
    ] = False,
    update: Annotated[
        bool,
        typer.Option(
            "--update",
            help="Add new time steps and replace the ones the cube has (e.g. reprocessed products)",
        ),
    ] = False,
    time_pattern: Annotated[
        str | None,
        typer.Option(
            "--time-pattern", help="strftime pattern that finds the time in file names, e.g. '%Y%m%dT%H%M%S'"
        ),
    ] = None,
    time: Annotated[datetime | None, typer.Option(help="Time of a single input that has none")] = None,
    variables: Annotated[
        str | None, typer.Option(help="Comma-separated variables to keep [default: all]")
    ] = None,
    title: Annotated[str | None, typer.Option(help="Title in the catalogue")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what would be written and stop")] = False,
) -> None:
    """Turn product files into a cube (or add time steps to one); published only when complete."""
    context = context_for(data_root)
    context.storage.check()
    plan = context.ingestion.plan(
        sources,
        cube,
        append=append,
        replace=replace,
        update=update,
        time_pattern=time_pattern,
        time=time,
        variables=split(variables) or None,
    )
    out.print(plan.summary())
    if dry_run:
        out.print("dry run: nothing written")
        return
    if not plan.steps:
        out.print(f"cube {cube} already has every time step; nothing written (--update replaces them)")
        return
    with progress_bar() as progress:
        task = progress.add_task(f"ingest {cube}", total=plan.steps)
        done = context.ingestion.run(plan, title=title, progress=lambda n: progress.advance(task, n))
    out.print(done.summary())
