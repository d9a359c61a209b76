"""Offline base maps: land polygons the server holds (`basemaps/{name}.geojson` below the data root) and the
viewer draws under the data, so that maps work on a closed network. Built from any vector files GDAL reads
(e.g. Natural Earth countries for the world and GSHHG full resolution for a region), simplified to about
`tolerance` degrees and stripped of polygons smaller than a few pixels at that scale."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from cubeport.errors import InputError, NotFoundError
from cubeport.storage import Storage

BASEMAPS_DIR = "basemaps"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


def simplified_land(sources: list[Path], tolerance: float = 0.005) -> dict[str, Any]:
    """One FeatureCollection of the polygons of every source (lon/lat), simplified."""
    import pyogrio

    parts = []
    for source in sources:
        try:
            meta, _, wkb, _ = pyogrio.raw.read(source)
        except Exception as exc:  # noqa: BLE001 - GDAL's errors vary; all mean "cannot read this file"
            raise InputError(f"{source}: not a vector file GDAL reads ({exc})") from None
        crs = str(meta.get("crs") or "EPSG:4326")
        if crs.upper() not in ("EPSG:4326", "OGC:CRS84"):
            raise InputError(f"{source}: in {crs}; base maps are read in lon/lat (EPSG:4326)")
        parts.append(shapely.from_wkb(wkb))
    geometries = shapely.simplify(np.concatenate(parts), tolerance, preserve_topology=True)
    geometries = geometries[shapely.area(geometries) > (2 * tolerance) ** 2]
    geometries = shapely.set_precision(geometries, min(tolerance / 10, 1e-4))
    geometries = geometries[~shapely.is_empty(geometries)]
    return {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {}, "geometry": json.loads(shapely.to_geojson(g))}
            for g in geometries
        ],
    }


class Basemaps:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def put(self, name: str, collection: dict[str, Any]) -> int:
        """Store (atomically) a base map layer; returns its size in bytes."""
        if not _NAME.match(name):
            raise InputError(f"base map name {name!r}: lower-case letters, digits, _ and -")
        content = json.dumps(collection, separators=(",", ":")).encode()
        self.storage.write_bytes_atomic(content, BASEMAPS_DIR, f"{name}.geojson")
        return len(content)

    def get(self, name: str) -> bytes:
        try:
            if not _NAME.match(name):
                raise FileNotFoundError(name)
            return self.storage.read_bytes(BASEMAPS_DIR, f"{name}.geojson")
        except FileNotFoundError:
            names = ", ".join(n.removesuffix(".geojson") for n in self.storage.list_files(BASEMAPS_DIR))
            hint = names or "none (`cubeport basemap FILE...` makes one)"
            raise NotFoundError(f"base map {name!r} not found; base maps: {hint}") from None
