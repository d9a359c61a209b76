"""`cubeport places` (place groups as GeoJSON) and `cubeport basemap` (the viewer's offline land)."""

from __future__ import annotations

from typing import Annotated

import typer

from cubeport.cli.base import DataRoot, app, context_for, out
from cubeport.errors import InputError

places_app = typer.Typer(
    help="Place groups: stations, water bodies, regions of interest (GeoJSON).", no_args_is_help=True
)
app.add_typer(places_app, name="places")


@places_app.command("add")
def places_add(
    source: Annotated[str, typer.Argument(metavar="FILE", help="A GeoJSON FeatureCollection")],
    group_id: Annotated[str | None, typer.Option("--id", help="Group id [default: the file name]")] = None,
    title: Annotated[str | None, typer.Option(help="Title shown in viewers")] = None,
    data_root: DataRoot = None,
) -> None:
    """Add (or replace) a place group from a GeoJSON file."""
    from pathlib import Path

    path = Path(source)
    if not path.is_file():
        raise InputError(f"{source}: no such file")
    group = context_for(data_root).places.add(group_id or path.stem, path.read_bytes(), title)
    out.print(f"place group {group['id']}: {len(group['features'])} features")


@places_app.command("list")
def places_list(data_root: DataRoot = None) -> None:
    """List the place groups."""
    places = context_for(data_root).places
    for group_id in places.ids() or ["no place groups"]:
        out.print(group_id)


@app.command()
def basemap(
    sources: Annotated[
        list[str],
        typer.Argument(
            metavar="FILE...",
            help="Vector files in lon/lat (Shapefile, "
            "GeoPackage, GeoJSON), e.g. Natural Earth and GSHHG land",
        ),
    ],
    name: Annotated[str, typer.Option(help="Base map layer name")] = "land",
    tolerance: Annotated[float, typer.Option(min=0.0001, max=1.0, help="Simplification, in degrees")] = 0.005,
    data_root: DataRoot = None,
) -> None:
    """Make the offline base map the viewer draws under the data (land polygons, simplified)."""
    from pathlib import Path

    from cubeport.basemap import simplified_land

    paths = [Path(s) for s in sources]
    for path in paths:
        if not path.exists():
            raise InputError(f"{path}: no such file")
    collection = simplified_land(paths, tolerance)
    size = context_for(data_root).basemaps.put(name, collection)
    out.print(f"base map {name}: {len(collection['features'])} polygons, {size / 1e6:.1f} MB")
