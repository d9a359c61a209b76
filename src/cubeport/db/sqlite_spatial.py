"""The spatial SQL functions the feature store needs, for SQLite connections: ST_Intersects, ST_Within, ...
over WKB blobs, computed by shapely (GEOS). PostGIS has them natively; registering them on SQLite lets
both backends run the same compiled filters. The second argument, usually a filter's literal geometry,
is parsed once and prepared, so a table scan tests each row against a prepared geometry."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from functools import lru_cache

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

Predicate = Callable[[BaseGeometry, BaseGeometry], np.bool_]  # shapely's predicates on two geometries

# ST_X(row, other) as a test of (other, row): GEOS uses a prepared geometry when it comes first
PREDICATES: dict[str, Predicate] = {
    "ST_Intersects": shapely.intersects,
    "ST_Disjoint": shapely.disjoint,
    "ST_Contains": shapely.within,
    "ST_Within": shapely.contains,
    "ST_Touches": shapely.touches,
    "ST_Crosses": shapely.crosses,
    "ST_Overlaps": shapely.overlaps,
    "ST_Equals": shapely.equals,
}


@lru_cache(maxsize=32)
def _prepared(wkb: bytes) -> BaseGeometry:
    geometry = shapely.from_wkb(wkb)
    shapely.prepare(geometry)
    return geometry


def _function(predicate: Predicate) -> Callable[[bytes, bytes], int | None]:
    def call(row: bytes | None, other: bytes | None) -> int | None:
        if row is None or other is None:
            return None
        return int(predicate(_prepared(bytes(other)), shapely.from_wkb(row)))

    return call


def register(connection: sqlite3.Connection) -> None:
    for name, predicate in PREDICATES.items():
        connection.create_function(name, 2, _function(predicate), deterministic=True)
