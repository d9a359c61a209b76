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
from pyproj import Transformer

from cubeport.features.schema import CollectionSpec
from cubeport.features.store import CHUNK, FeatureStore, Selection

FORMATS = {"geojson": ("application/geo+json", ".geojson"),
           "gpkg": ("application/geopackage+sqlite3", ".gpkg"),
           "parquet": ("application/vnd.apache.parquet", ".parquet")}
_DTYPES = {"string": "object", "integer": "Int64", "number": "float64", "boolean": "boolean",
           "datetime": "datetime64[ns, UTC]", "json": "object"}


def geojson_features(crs: int, features: list[dict[str, Any]]) -> list[str]:
    """Features as GeoJSON texts in CRS84, the geometries encoded in one call."""
    to_lonlat = None if crs == 4326 else Transformer.from_crs(crs, 4326, always_xy=True).transform
    geometries = [f["geometry"] if to_lonlat is None else shapely.transform(f["geometry"], to_lonlat,
                                                                             interleaved=False) for f in features]
    texts = shapely.to_geojson(geometries) if geometries else []
    return [f'{{"type":"Feature","id":{f["id"]},"geometry":{g},"properties":{json.dumps(f["properties"], default=_iso)}}}'
            for f, g in zip(features, texts)]


def export(store: FeatureStore, spec: CollectionSpec, selection: Selection, format: str,  # noqa: A002
           sortby: list[str] | None = None, chunk: int = CHUNK) -> Iterator[bytes]:
    """The selected features as the bytes of a file of `format` (a key of FORMATS)."""
    features = store.query(spec.database, spec.name, selection, sortby=sortby)
    chunks = iter(lambda: list(islice(features, chunk)), [])
    if format == "geojson":
        yield b'{"type":"FeatureCollection","features":['
        first = True
        for part in chunks:
            yield (("" if first else ",") + ",".join(geojson_features(spec.crs, part))).encode()
            first = False
        yield b"]}"
        return
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
    frames = (_frame(spec, part) for part in chunks)
    try:
        for i, frame in enumerate(frames):
            if format == "gpkg":
                pyogrio.write_dataframe(frame, path, layer=spec.name, driver="GPKG", append=i > 0)
            else:
                import pyarrow as pa

                table = pa.table(frame.to_arrow(index=False, geometry_encoding="WKB"))
                writer = writer or pq.ParquetWriter(path, table.schema)
                writer.write_table(table)
        if writer is None and format == "gpkg" and not path.exists():
            pyogrio.write_dataframe(_frame(spec, []), path, layer=spec.name, driver="GPKG")
        elif writer is None and format == "parquet":
            import pyarrow as pa

            pq.write_table(pa.table(_frame(spec, []).to_arrow(index=False, geometry_encoding="WKB")), path)
    finally:
        if writer is not None:
            writer.close()


def _frame(spec: CollectionSpec, features: list[dict[str, Any]]) -> Any:
    """A GeoDataFrame of features with the columns' types fixed by the collection (not guessed per chunk)."""
    import geopandas
    import pandas as pd

    columns = {p: pd.Series([_cell(f["properties"].get(p), kind) for f in features], dtype=_DTYPES[kind])
               for p, kind in spec.properties.items()}
    return geopandas.GeoDataFrame(columns, geometry=geopandas.GeoSeries([f["geometry"] for f in features]),
                                  crs=f"EPSG:{spec.crs}")


def _cell(value: Any, kind: str) -> Any:
    return json.dumps(value) if kind == "json" and value is not None else value


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)
