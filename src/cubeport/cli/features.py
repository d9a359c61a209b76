"""`cubeport features`: import, export and list feature collections, and in-situ observations."""

from __future__ import annotations

from typing import Annotated

import typer

from cubeport.cli.base import DataRoot, app, context_for, out, progress_bar
from cubeport.errors import InputError

features_app = typer.Typer(
    help="Feature collections: vector data in the platform's database.", no_args_is_help=True
)
app.add_typer(features_app, name="features")


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
    from cubeport.features.store import Selection
    from cubeport.ogc.params import parse_filter

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
