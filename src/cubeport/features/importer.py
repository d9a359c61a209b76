"""Import vector files into a new collection: anything GDAL reads through pyogrio (GeoPackage, Shapefile,
GeoJSON, GeoParquet, CSV with coordinate columns). Field names become checked property names, field types
property types, the file's CRS the collection's. Features stream in chunks; if any is bad the collection
is never made: it is created and filled in one transaction, so a failed or killed import leaves nothing."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from cubeport.errors import ConflictError, CubeportError, InputError
from cubeport.features.schema import RESERVED, CollectionSpec, PropertyType, check_crs, check_name
from cubeport.features.store import CHUNK, FeatureStore

Progress = Callable[[int, int], None]  # (features done, features in all)
PARQUET = (".parquet", ".geoparquet")
_TYPES: dict[str, PropertyType] = {
    "i": "integer",
    "u": "integer",
    "f": "number",
    "b": "boolean",
    "M": "datetime",
}


def property_name(field: str) -> str:
    """A field name as a property name: lower case, other characters as single underscores."""
    name = re.sub(r"_+", "_", re.sub(r"[^a-z0-9]", "_", field.strip().lower())).strip("_") or "field"
    name = name if name[0].isalpha() else f"f_{name}"
    return f"{name[:47]}_" if name in RESERVED else name[:48]


def import_file(
    store: FeatureStore,
    path: Path,
    database: str,
    name: str | None = None,
    *,
    layer: str | None = None,
    x: str | None = None,
    y: str | None = None,
    crs: str | None = None,
    title: str = "",
    chunk: int = CHUNK,
    progress: Progress | None = None,
    on_create: Callable[[Any], None] | None = None,
) -> tuple[CollectionSpec, int]:
    """A new collection `database.name` (default: the file's name) with the file's features; returns it and
    the number of features. `on_create` is `FeatureStore.create`'s (e.g. the collection's access rule)."""
    import pyogrio

    options: dict[str, Any] = {"layer": layer}
    if x or y:  # a CSV with coordinates
        if not (x and y):
            raise InputError("give both the x (longitude) and y (latitude) columns")
        options.update(X_POSSIBLE_NAMES=x, Y_POSSIBLE_NAMES=y, KEEP_GEOM_COLUMNS="NO", AUTODETECT_TYPE="YES")
    try:
        info = _parquet_info(path) if Path(path).suffix in PARQUET else pyogrio.read_info(path, **options)
    except Exception as exc:  # noqa: BLE001 - GDAL's errors vary; all mean "cannot read this file"
        raise InputError(f"{path}: not a vector file GDAL reads ({str(exc).splitlines()[0]})") from None
    if info["geometry_type"] is None:
        raise InputError(f"{path}: no geometries; for a CSV give the coordinate columns with --x and --y")
    fields = [str(f) for f in info["fields"]]
    properties: dict[str, PropertyType] = {
        property_name(f): _TYPES.get(np.dtype(t).kind, "string")
        for f, t in zip(fields, info["dtypes"], strict=False)
    }
    if len(properties) != len(fields):
        raise InputError(f"{path}: field names {fields} collide once made property names")
    family = str(info["geometry_type"]).removeprefix("Multi").removesuffix(" Z")
    geometry_type = family if family in ("Point", "LineString", "Polygon") else "Geometry"
    database = check_name(database, "database")
    name = check_name(name or property_name(Path(path).stem), "collection")
    total = int(info["features"]) if info["features"] >= 0 else 0

    done = 0  # features read so far

    def features() -> Iterator[dict[str, Any]]:
        nonlocal done
        batches = (
            _parquet_batches(path, chunk)
            if Path(path).suffix in PARQUET
            else iter(
                lambda: pyogrio.raw.read(path, skip_features=done, max_features=chunk, **options)[2:], None
            )
        )
        for wkb, values in batches:
            if not len(wkb):
                return
            geometries = shapely.from_wkb(wkb)
            for i, geometry in enumerate(geometries):
                yield {
                    "geometry": geometry,
                    "properties": {p: _plain(v[i]) for p, v in zip(properties, values, strict=False)},
                }
            done += len(wkb)
            if progress:
                progress(done, max(total, done))

    try:
        spec = CollectionSpec(
            database,
            name,
            properties,
            crs=check_crs(crs or info["crs"] or 4326),
            geometry_type=geometry_type,
            title=title or Path(path).stem,
            provenance=f"imported from {Path(path).name}",
        )
        return store.create(spec, features(), chunk, on_create=on_create), done
    except ConflictError:
        raise
    except (CubeportError, ValueError) as exc:
        raise InputError(f"{path}: {exc}; nothing was imported") from None


def _parquet_info(path: Path) -> dict[str, Any]:
    """What pyogrio's read_info says of a file, for GeoParquet (the GDAL in pyogrio's wheels has no Parquet
    driver), from the file's schema and its `geo` metadata."""
    import json

    import pyarrow.parquet as pq
    from pyproj import CRS

    file = pq.ParquetFile(path)
    schema = file.schema_arrow
    geo = json.loads((schema.metadata or {}).get(b"geo", b"null"))
    if not geo:
        raise InputError(f"{path}: a Parquet file without GeoParquet metadata")
    column = geo["primary_column"]
    crs = geo["columns"][column].get("crs", "OGC:CRS84")
    types = geo["columns"][column].get("geometry_types") or []
    fields = [n for n in schema.names if n != column]
    return {
        "fields": fields,
        "dtypes": [_numpy_dtype(schema.field(n).type) for n in fields],
        # a CRS without an EPSG code stays as it is, so that check_crs refuses it rather than the
        # coordinates being taken for degrees
        "crs": None
        if crs is None
        else CRS.from_user_input(crs).to_epsg() or CRS.from_user_input(crs).to_wkt(),
        "geometry_type": types[0] if len(types) == 1 else "Unknown",
        "features": file.metadata.num_rows,
        "geometry_column": column,
    }


def _parquet_batches(path: Path, chunk: int) -> Iterator[tuple[Any, list[Any]]]:
    import pyarrow.parquet as pq

    info = _parquet_info(path)
    for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk):
        yield (
            batch.column(info["geometry_column"]).to_numpy(zero_copy_only=False),
            [batch.column(n).to_numpy(zero_copy_only=False) for n in info["fields"]],
        )


def _numpy_dtype(arrow_type: Any) -> Any:
    try:
        return np.dtype(arrow_type.to_pandas_dtype())
    except (NotImplementedError, TypeError):
        return np.dtype(object)


def _plain(value: Any) -> Any:
    """A numpy scalar as a plain Python value; NaN and NaT as None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value
