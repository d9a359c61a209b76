"""Features out of the store as files: GeoJSON (RFC 7946, CRS84), GeoPackage and GeoParquet (both in the
collection's CRS). Features are read and written in chunks, so an export of millions of features never
sits in memory: GeoJSON is produced as it is read; GeoPackage and GeoParquet end with an index or a
footer, so they are written chunk by chunk to a temporary file (through pyogrio and pyarrow) before the
answer begins (so that a failure, or a spent time budget, is an error answer rather than a cut-off file),
then streamed."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO

import shapely

from cubeport import deadline
from cubeport.features.schema import CollectionSpec
from cubeport.features.store import CHUNK, FeatureStore, Selection

FORMATS = {
    "geojson": ("application/geo+json", ".geojson"),
    "gpkg": ("application/geopackage+sqlite3", ".gpkg"),
    "parquet": ("application/vnd.apache.parquet", ".parquet"),
}
_DTYPES = {
    "string": "object",
    "integer": "Int64",
    "number": "float64",
    "boolean": "boolean",
    "datetime": "datetime64[ns, UTC]",
    "json": "object",
}


def export(
    store: FeatureStore,
    spec: CollectionSpec,
    selection: Selection,
    format: str,  # noqa: A002
    sortby: list[str] | None = None,
    chunk: int = CHUNK,
) -> Iterator[bytes]:
    """The selected features as the bytes of a file of `format` (a key of FORMATS). The selection and sort
    are checked here, at the call, and what can fail before any byte is sent fails here too: a GeoPackage or
    GeoParquet file is written whole, GeoJSON's first chunk read; the rest comes as the caller iterates.

    Every chunk checks the request's time budget (`deadline`): a spent one is a LimitError, at the call, or
    for GeoJSON possibly while it streams (the response then ends early: the client sees it incomplete)."""
    if format == "geojson":
        texts = store.geojson(spec.database, spec.name, selection, sortby=sortby)
        parts = iter(lambda: list(islice(texts, chunk)), [])
        return _geojson_file(next(parts, []), parts)
    features = store.query(spec.database, spec.name, selection, sortby=sortby)
    return _file(spec, _chunks(features, chunk), format)


def _chunks(features: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    """Features in lists of `size`, the time budget checked before each is written (the store checks it
    as it reads)."""
    while part := list(islice(features, size)):
        deadline.check("exporting the features")
        yield part


def _geojson_file(first: list[str], rest: Iterator[list[str]]) -> Iterator[bytes]:
    yield b'{"type":"FeatureCollection","features":[' + ",".join(first).encode()
    for part in rest:
        yield ("," + ",".join(part)).encode()
    yield b"]}"


def _file(spec: CollectionSpec, chunks: Iterator[list[dict[str, Any]]], format: str) -> Iterator[bytes]:  # noqa: A002
    """Write the file in a temporary folder now; its bytes as the caller iterates. The folder is removed at
    once: the open file stays readable until it is closed (POSIX), so an answer never sent leaves nothing."""
    with tempfile.TemporaryDirectory(prefix="cubeport-export-") as folder:
        path = Path(folder) / f"{spec.name}{FORMATS[format][1]}"
        _write(spec, chunks, path, format)
        file = path.open("rb")
    return _read(file)


def _read(file: BinaryIO) -> Iterator[bytes]:
    with file:
        while block := file.read(1 << 20):
            yield block


def _write(spec: CollectionSpec, chunks: Iterator[list[dict[str, Any]]], path: Path, format: str) -> None:  # noqa: A002
    import pyarrow.parquet as pq
    import pyogrio

    writer = None
    try:
        for i, part in enumerate(chunks):
            if format == "gpkg":
                pyogrio.write_dataframe(
                    _frame(spec, part), path, layer=spec.name, driver="GPKG", append=i > 0
                )
            else:
                table = _table(spec, part)
                writer = writer or pq.ParquetWriter(path, table.schema)
                writer.write_table(table)
        if not path.exists() and writer is None:  # nothing selected: an empty file of the format
            if format == "gpkg":
                pyogrio.write_dataframe(_frame(spec, []), path, layer=spec.name, driver="GPKG")
            else:
                pq.write_table(_table(spec, []), path)
    finally:
        if writer is not None:
            writer.close()


def _table(spec: CollectionSpec, features: list[dict[str, Any]]) -> Any:
    """A GeoParquet table: the properties, WKB geometries, and the `geo` metadata of the GeoParquet 1.1
    specification (written here: pyarrow does not know it, and geopandas only writes whole frames)."""
    import pyarrow as pa
    from pyproj import CRS

    frame = _frame(spec, features)
    table = pa.Table.from_pandas(frame.drop(columns="geometry"), preserve_index=False).append_column(
        "geometry", pa.array(shapely.to_wkb(frame.geometry.values), pa.binary())
    )
    geo = {
        "version": "1.1.0",
        "primary_column": "geometry",
        "columns": {
            "geometry": {
                "encoding": "WKB",
                "geometry_types": [],
                "crs": CRS.from_epsg(spec.crs).to_json_dict(),
            }
        },
    }
    return table.replace_schema_metadata({**(table.schema.metadata or {}), b"geo": json.dumps(geo).encode()})


def _frame(spec: CollectionSpec, features: list[dict[str, Any]]) -> Any:
    """A GeoDataFrame of features with the columns' types fixed by the collection (not guessed per chunk)."""
    import geopandas
    import pandas as pd

    columns = {
        p: pd.Series([_cell(f["properties"].get(p), kind) for f in features], dtype=_DTYPES[kind])
        for p, kind in spec.properties.items()
    }
    return geopandas.GeoDataFrame(
        columns, geometry=geopandas.GeoSeries([f["geometry"] for f in features]), crs=f"EPSG:{spec.crs}"
    )


def _cell(value: Any, kind: str) -> Any:
    return json.dumps(value) if kind == "json" and value is not None else value
