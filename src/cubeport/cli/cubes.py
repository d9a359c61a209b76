"""`cubeport cubes`: list, inspect, style, edit and delete the cubes in the store."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from cubeport.cli.base import AsJson, DataRoot, app, context_for, out, split
from cubeport.errors import NotFoundError

cubes_app = typer.Typer(help="List, inspect, edit and delete cubes.", no_args_is_help=True)
app.add_typer(cubes_app, name="cubes")


@cubes_app.command("list")
def cubes_list(data_root: DataRoot = None, as_json: AsJson = False) -> None:
    """List the cubes in the store."""
    context = context_for(data_root)
    infos = [context.cubes.describe(c) for c in context.cubes.list()]
    if as_json:
        out.print_json(json.dumps([i.to_dict() for i in infos]))
        return
    table = Table("id", "time steps", "first", "last", "variables", "crs")
    for info in infos:
        table.add_row(
            info.id,
            str(info.dims.get("time", 0)),
            info.time_start[:19],
            info.time_end[:19],
            ", ".join(v.name for v in info.variables),
            info.crs[:40],
        )
    out.print(table if infos else "no cubes")


@cubes_app.command("info")
def cubes_info(
    cube_id: Annotated[str, typer.Argument(metavar="ID")], data_root: DataRoot = None, as_json: AsJson = False
) -> None:
    """Show a cube's dims, variables, time range, CRS and levels."""
    context = context_for(data_root)
    info = context.cubes.describe(cube_id)
    data = info.to_dict()
    try:
        entry = context.catalogue.get(cube_id)
        data["title"], data["description"] = entry.title, entry.description
        data["styles"] = {v.name: v.style.__dict__ for v in entry.variables}
        data["access"] = context.policy.access("cube", cube_id).to_dict()["access"]
    except NotFoundError:
        pass
    if as_json:
        out.print_json(json.dumps(data))
        return
    table = Table(show_header=False)
    for key in ("id", "title", "crs", "time_start", "time_end", "levels", "timeseries", "version"):
        if key in data:
            table.add_row(key, str(data[key]))
    table.add_row("dims", ", ".join(f"{k}={v}" for k, v in info.dims.items()))
    table.add_row("bbox (lon/lat)", ", ".join(f"{v:.4f}" for v in info.bbox))
    for v in info.variables:
        table.add_row(f"variable {v.name}", f"{v.dtype} {v.units or ''} {v.long_name or ''}".strip())
    out.print(table)


@cubes_app.command("delete")
def cubes_delete(cube_id: Annotated[str, typer.Argument(metavar="ID")], data_root: DataRoot = None) -> None:
    """Delete a cube, its catalogue entry and its kept products."""
    context = context_for(data_root)
    context.cubes.delete(cube_id)
    context.catalogue.remove(cube_id)
    context.products.forget(cube_id)
    context.policy.forget("cube", cube_id)
    out.print(f"deleted {cube_id}")


@cubes_app.command("style")
def cubes_style(
    cube_id: Annotated[str, typer.Argument(metavar="ID")],
    variable: Annotated[str, typer.Argument(metavar="VARIABLE")],
    data_root: DataRoot = None,
    cmap: Annotated[str | None, typer.Option(help="Colour map name, e.g. viridis")] = None,
    vmin: Annotated[float | None, typer.Option(help="Value at the low end of the colour map")] = None,
    vmax: Annotated[float | None, typer.Option(help="Value at the high end of the colour map")] = None,
    norm: Annotated[str | None, typer.Option(help="lin, log or cat")] = None,
) -> None:
    """Change a variable's style without touching its data."""
    entry = context_for(data_root).catalogue.set_style(
        cube_id, variable, colormap=cmap, vmin=vmin, vmax=vmax, norm=norm
    )
    style = entry.variable(variable).style
    out.print(f"{cube_id}/{variable}: {style.colormap} {style.vmin}..{style.vmax} ({style.norm})")


@cubes_app.command("edit")
def cubes_edit(
    cube_id: Annotated[str, typer.Argument(metavar="ID")],
    data_root: DataRoot = None,
    title: Annotated[str | None, typer.Option()] = None,
    description: Annotated[str | None, typer.Option()] = None,
    tags: Annotated[str | None, typer.Option(help="Comma-separated tags")] = None,
    themes: Annotated[str | None, typer.Option(help="Comma-separated themes")] = None,
) -> None:
    """Edit a cube's title, description, tags and themes."""
    entry = context_for(data_root).catalogue.update(
        cube_id, title=title, description=description, tags=split(tags), themes=split(themes)
    )
    out.print(f"{entry.id}: {entry.title}")
