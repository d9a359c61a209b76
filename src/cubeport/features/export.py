"""Features out of the store as files: GeoJSON (RFC 7946, CRS84), GeoPackage and GeoParquet (both in the
collection's CRS). Features are read and written in chunks, so an export of millions of features never
sits in memory: GeoJSON is produced as it is read; GeoPackage and GeoParquet end with an index or a
footer, so they are written chunk by chunk to a temporary file (through pyogrio and pyarrow), then streamed."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import shapely

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
    are checked here, at the call; the bytes come as the caller iterates."""
    if format == "geojson":
        return _geojson_file(store.geojson(spec.database, spec.name, selection, sortby=sortby), chunk)
    return _file(spec, store.query(spec.database, spec.name, selection, sortby=sortby), format, chunk)


def _geojson_file(texts: Iterator[str], chunk: int) -> Iterator[bytes]:
    yield b'{"type":"FeatureCollection","features":['
    first = True
    for part in iter(lambda: list(islice(texts, chunk)), []):
        yield (("" if first else ",") + ",".join(part)).encode()
        first = False
    yield b"]}"


def _file(
    spec: CollectionSpec, features: Iterator[dict[str, Any]], format: str, chunk: int
) -> Iterator[bytes]:  # noqa: A002
    chunks = iter(lambda: list(islice(features, chunk)), [])
    with tempfile.TemporaryDirectory(prefix="cubeport-export-") as folder:
        path = Path(folder) / f"{spec.name}{FORMATS[format][1]}"
        _write(spec, chunks, path, format)
        with path.open("rb") as file:
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
