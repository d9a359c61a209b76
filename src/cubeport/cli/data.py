"""Data commands: serve, demo, ingest, cubes, db."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table

from cubeport.cli.base import AsJson, DataRoot, app, context_for, err, out, progress_bar, split
from cubeport.errors import InputError, NotFoundError

cubes_app = typer.Typer(help="List, inspect, edit and delete cubes.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
places_app = typer.Typer(
    help="Place groups: stations, water bodies, regions of interest (GeoJSON).", no_args_is_help=True
)
app.add_typer(cubes_app, name="cubes")
app.add_typer(places_app, name="places")
features_app = typer.Typer(
    help="Feature collections: vector data in the platform's database.", no_args_is_help=True
)
app.add_typer(features_app, name="features")
app.add_typer(db_app, name="db")


@app.command()
def serve(
    data_root: DataRoot = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on [default: 127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on [default: 8080]")] = None,
) -> None:
    """Serve the platform's API (and viewer) over HTTP."""
    import uvicorn

    from cubeport.api.app import create_app

    context = context_for(data_root, host=host, port=port)
    _ = context.db  # migrate before the first request
    settings = context.settings
    err.print(f"Cubeport serving {settings.data_root} on http://{settings.host}:{settings.port}/")
    uvicorn.run(create_app(context), host=settings.host, port=settings.port, log_level=settings.log_level)


@app.command()
def demo(
    data_root: DataRoot = None,
    large: Annotated[
        bool, typer.Option("--large", help="Also build the large benchmark cube (0.01 deg, 365 days)")
    ] = False,
    days: Annotated[int, typer.Option(min=2, max=366, help="Days in the demo cubes")] = 122,
) -> None:
    """Build the Baltic Sea demo set (synthetic chlorophyll and SST cubes, stations, water bodies)."""
    from cubeport.demo import build_demo

    context = context_for(data_root)
    with progress_bar() as progress:
        task = progress.add_task("demo", total=None)

        def report(label: str, done: int, total: int) -> None:
            progress.update(task, description=label, completed=done, total=total)

        written = build_demo(context, large=large, days=days, progress=report)
    for line in written:
        out.print(line)
    password = context.auth.ensure_admin()
    if password:
        out.print(
            f"created the first admin: user [bold]admin[/], password [bold]{password}[/] (shown once; "
            "change it with `cubeport users set admin --password-stdin`)"
        )


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
    from cubeport.cubes.ingest import plan_ingest, run_ingest

    context = context_for(data_root)
    context.storage.check()
    plan = plan_ingest(
        context.cubes,
        sources,
        cube,
        append=append,
        replace=replace,
        time_pattern=time_pattern,
        time=time,
        variables=split(variables) or None,
    )
    out.print(plan.summary())
    if dry_run:
        out.print("dry run: nothing written")
        return
    if not plan.new_times:
        out.print(f"cube {cube} already has every time step; nothing written")
        return
    with progress_bar() as progress:
        task = progress.add_task(f"ingest {cube}", total=len(plan.new_times))
        info = run_ingest(context.cubes, plan, progress=lambda n: progress.advance(task, n))
    context.catalogue.register(info, context.cubes)
    if title:
        context.catalogue.update(cube, title=title)
    products = context.products.keep(cube, plan.fragments, replace=plan.mode == "replace")
    out.print(
        f"published {cube}: {info.dims.get('time', 0)} time steps, {len(info.variables)} variables, "
        f"{info.levels} levels{', time-series twin' if info.timeseries else ''}"
        f"{f', {len(products)} products in STAC' if products else ''}"
    )


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


@features_app.command("import")
def features_import(
    source: Annotated[
        str,
        typer.Argument(
            metavar="FILE", help="GeoPackage, Shapefile, GeoJSON, GeoParquet, or CSV with --x/--y"
        ),
    ],
    database: Annotated[str, typer.Option("--database", "-d", help="Database (namespace) of the collection")],
    collection: Annotated[
        str | None,
        typer.Option("--collection", "-c", help="Collection name [default: from the file name]"),
    ] = None,
    layer: Annotated[str | None, typer.Option(help="Layer of a multi-layer file")] = None,
    x: Annotated[str | None, typer.Option("--x", help="CSV column of x (longitude)")] = None,
    y: Annotated[str | None, typer.Option("--y", help="CSV column of y (latitude)")] = None,
    crs: Annotated[
        str | None,
        typer.Option(help="CRS of the data when the file does not say [default: the file's, else EPSG:4326]"),
    ] = None,
    title: Annotated[str, typer.Option(help="Title shown to users")] = "",
    data_root: DataRoot = None,
) -> None:
    """Import a vector file into a new collection (streamed in chunks; all or nothing)."""
    from pathlib import Path

    from cubeport.features.importer import import_file

    path = Path(source)
    if not path.exists():
        raise InputError(f"{source}: no such file")
    store = context_for(data_root).features
    with progress_bar() as progress:
        task = progress.add_task(f"import {path.name}", total=None)
        spec, count = import_file(
            store,
            path,
            database,
            collection,
            layer=layer,
            x=x,
            y=y,
            crs=crs,
            title=title,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    out.print(
        f"collection {spec.id}: {count} features, EPSG:{spec.crs}, properties "
        f"{', '.join(f'{k} ({v})' for k, v in spec.properties.items()) or 'none'}"
    )


@features_app.command("observations")
def features_observations(
    source: Annotated[
        str, typer.Argument(metavar="CSV", help="columns station,time,parameter,value[,unit,quality]")
    ],
    collection: Annotated[
        str, typer.Option("--collection", "-c", help="The station collection, database.name")
    ],
    station_property: Annotated[
        str | None,
        typer.Option(help="Property naming the stations in the CSV's station column [default: feature ids]"),
    ] = None,
    data_root: DataRoot = None,
) -> None:
    """Import in-situ monitoring data (CSV) at the stations of a station collection (all or nothing)."""
    from pathlib import Path

    from cubeport.features.observations import Observations

    database, _, name = collection.partition(".")
    if not Path(source).exists():
        raise InputError(f"{source}: no such file")
    count = Observations(context_for(data_root).features).import_csv(
        database, name, Path(source), station_property
    )
    out.print(f"{count} observations at the stations of {collection}")


@features_app.command("export")
def features_export(
    collection: Annotated[str, typer.Argument(metavar="COLLECTION", help="database.name")],
    target: Annotated[str, typer.Argument(metavar="FILE", help=".geojson, .gpkg or .parquet (GeoParquet)")],
    query: Annotated[
        str | None,
        typer.Option(
            "--filter", "-f", help="Only features meeting this CQL2 text, e.g. \"status = 'active'\""
        ),
    ] = None,
    data_root: DataRoot = None,
) -> None:
    """Export a collection, or the features a filter selects, to a file (written whole or not at all)."""
    import os
    from pathlib import Path

    from cubeport.features.export import FORMATS, export
    from cubeport.features.filters import parse_filter
    from cubeport.features.store import Selection

    path = Path(target)
    format = next((name for name, (_, suffix) in FORMATS.items() if path.suffix.lower() == suffix), None)
    if format is None:
        raise InputError(f"{target}: name the file .geojson, .gpkg or .parquet")
    if not path.parent.is_dir():
        raise InputError(f"{path.parent}: no such folder")
    database, _, name = collection.partition(".")
    store = context_for(data_root).features
    spec = store.get(database, name)
    selection = Selection(filter=parse_filter(query) if query else None)
    partial = path.with_name(f".{path.name}.part")
    try:
        with partial.open("wb") as file, progress_bar() as progress:
            task = progress.add_task(f"export {spec.id} (bytes)", total=None)
            for block in export(store, spec, selection, format):
                file.write(block)
                progress.advance(task, len(block))
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    out.print(f"{store.count(spec.database, spec.name, selection)} features of {spec.id} written to {path}")


@features_app.command("list")
def features_list(
    database: Annotated[str | None, typer.Option("--database", "-d", help="Only this database")] = None,
    data_root: DataRoot = None,
) -> None:
    """List the feature collections with their feature counts."""
    store = context_for(data_root).features
    specs = store.list(database)
    for spec in specs:
        out.print(
            f"{spec.id}\t{store.count(spec.database, spec.name)} features\tEPSG:{spec.crs}\t{spec.title}"
        )
    if not specs:
        out.print("no feature collections")


@db_app.command("upgrade")
def db_upgrade(data_root: DataRoot = None) -> None:
    """Create or migrate the database schema to the newest version."""
    context = context_for(data_root)
    out.print(f"database {context.db.safe_url} at revision {context.db.revision()}")
