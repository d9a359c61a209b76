"""Ingested products as STAC items: after an ingestion, each input file is kept beside its cube (under
`products/{cube}/{item}/`) and described by an item with its own grid (proj:code, proj:shape, proj:transform),
so that a client finds the product a cube step came from and opens the file itself with GDAL or rasterio.

A product's file is written first, atomically, and its item row after it: an item never names a missing file.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd
import sqlalchemy as sa
from affine import Affine
from shapely.geometry import box, mapping

from cubeport.cubes import cf
from cubeport.cubes.readers import Fragment, kind_of
from cubeport.db import Database
from cubeport.db.models import CubeRecord, StacItemRecord
from cubeport.errors import NotFoundError
from cubeport.stac.documents import rfc3339
from cubeport.storage import Storage

PROJECTION = "https://stac-extensions.github.io/projection/v2.0.0/schema.json"
FILE = "https://stac-extensions.github.io/file/v2.1.0/schema.json"
MEDIA_TYPES = {"geotiff": "image/tiff; application=geotiff", "netcdf": "application/netcdf"}


def item_id(source: str) -> str:
    """A product's item id: its file name without the suffix, safe in a URL path."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", Path(source).stem)[:200]


def _naive_utc(time: pd.Timestamp) -> datetime:
    """UTC without a zone: SQLite keeps no zone, and PostgreSQL sessions run in UTC (`db/__init__.py`)."""
    return (time.tz_convert("UTC") if time.tzinfo else time).tz_localize(None).to_pydatetime()


def _crs84(west: float, south: float, east: float, north: float) -> tuple[float, float, float, float]:
    """Longitudes from -180 to 180, as STAC wants them (global grids often run from 0 to 360)."""
    if east > 180:
        west, east = (west - 360, east - 360) if west >= 180 else (-180.0, 180.0)
    return west, south, east, north


def _north_up(transform: Affine, rows: int) -> Affine:
    """The transform as GDAL reads the file: it turns bottom-up grids (NetCDF, as stored) north up."""
    if transform.e <= 0:
        return transform
    return Affine(
        transform.a, transform.b, transform.c, transform.d, -transform.e, transform.f + transform.e * rows
    )


def product_item(fragment: Fragment, cube_id: str, size: int) -> dict[str, Any]:
    """The STAC item of one input (without links); its asset href is the key of the kept file."""
    ds = fragment.dataset
    crs, grid = cf.crs_of(ds), cf.Grid.of(ds)
    epsg = crs.to_epsg()
    times = sorted(fragment.times)
    west, south, east, north = _crs84(*cf.lonlat_bbox(ds))
    name = PurePosixPath(fragment.source).name
    properties: dict[str, Any] = {
        "datetime": rfc3339(times[0]) if len(times) == 1 else None,
        **(
            {"start_datetime": rfc3339(times[0]), "end_datetime": rfc3339(times[-1])}
            if len(times) > 1
            else {}
        ),
        "proj:code": f"EPSG:{epsg}" if epsg else None,
        **({} if epsg else {"proj:wkt2": crs.to_wkt()}),
        "proj:shape": [grid.ny, grid.nx],
        "proj:transform": list(_north_up(grid.transform, grid.ny))[:6],
        "cubeport:variables": sorted(str(v) for v in ds.data_vars if "time" in ds[v].dims),
        "created": rfc3339(datetime.now(UTC)),
    }
    kind = kind_of(fragment.source)
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": [PROJECTION, FILE],
        "id": item_id(fragment.source),
        "collection": cube_id,
        "geometry": mapping(box(west, south, east, north)),
        "bbox": [west, south, east, north],
        "properties": properties,
        "assets": {
            "data": {
                "href": name,
                "type": MEDIA_TYPES.get(kind, "application/octet-stream"),
                "title": name,
                "roles": ["data"],
                "file:size": size,
            }
        },
    }


class ProductArchive:
    """The kept products of every cube and their items."""

    def __init__(self, storage: Storage, db: Database) -> None:
        self.storage, self.db = storage, db

    def keep(self, cube_id: str, fragments: Sequence[Fragment], *, replace: bool = False) -> list[str]:
        """Keep the product files of an ingestion and record their items; `replace` first forgets the cube's
        earlier products. Zarr inputs are cubes already, not products: they are skipped."""
        if replace:
            self.forget(cube_id)
        kept = []
        for fragment in fragments:
            if kind_of(fragment.source) == "zarr":
                continue
            item = product_item(fragment, cube_id, Path(fragment.source).stat().st_size)
            self.storage.put_file_atomic(
                fragment.source, *self._folder(cube_id, item["id"]), item["assets"]["data"]["href"]
            )
            self.save(item)
            kept.append(item["id"])
        return kept

    def save(self, item: dict[str, Any]) -> None:
        """Record (or replace) an item whose files are kept."""
        props = item["properties"]
        when = props["datetime"] or props.get("start_datetime")
        west, south, east, north = item["bbox"]
        with self.db.session() as session:
            session.merge(
                StacItemRecord(
                    collection=item["collection"],
                    id=item["id"],
                    datetime=_naive_utc(pd.Timestamp(when)),
                    west=west,
                    south=south,
                    east=east,
                    north=north,
                    item=item,
                )
            )

    def forget(self, cube_id: str) -> None:
        """Drop a cube's items, then its kept files."""
        with self.db.session() as session:
            session.execute(sa.delete(StacItemRecord).where(StacItemRecord.collection == cube_id))
        self.storage.delete_tree("products", cube_id)

    def query(
        self,
        collections: Sequence[str],
        *,
        ids: Sequence[str] | None = None,
        bbox: tuple[float, float, float, float] | None = None,
        end: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """Items of the given collections that may match: the database narrows by id, bbox and time; the
        caller applies what needs the item itself (geometry, CQL2)."""
        if not collections:
            return []
        record = StacItemRecord
        query = sa.select(record.item).where(record.collection.in_(list(collections)))
        if ids:
            query = query.where(record.id.in_(list(ids)))
        if bbox:
            west, south, east, north = bbox
            query = query.where(
                record.east >= west, record.west <= east, record.north >= south, record.south <= north
            )
        if end:  # a product starts before the end of the interval; the caller checks where it ends
            query = query.where(record.datetime <= _naive_utc(pd.Timestamp(end)))
        with self.db.session() as session:
            return [
                row
                for (row,) in session.execute(query.order_by(record.collection, record.datetime, record.id))
            ]

    def item(self, cube_id: str, item: str) -> dict[str, Any]:
        """The item; a collection (cube) that does not exist is not found as a cube, as the HTTP guard words one
        the caller may not see, so that an item route does not tell the two apart."""
        with self.db.session() as session:
            record = session.get(StacItemRecord, (cube_id, item))
            if record is None:
                if session.get(CubeRecord, cube_id) is None:
                    raise NotFoundError(f"cube {cube_id!r} not found")
                raise NotFoundError(f"item {item!r} not found in collection {cube_id!r}")
            return record.item

    def asset(self, cube_id: str, item: str, filename: str) -> tuple[str, ...]:
        """The storage parts of an item's file; NotFoundError for anything else."""
        names = {a["href"] for a in self.item(cube_id, item)["assets"].values()}
        if filename not in names:
            raise NotFoundError(f"item {item!r} has no file {filename!r}; files: {', '.join(sorted(names))}")
        return (*self._folder(cube_id, item), filename)

    @staticmethod
    def _folder(cube_id: str, item: str) -> tuple[str, str, str]:
        return ("products", cube_id, item)
