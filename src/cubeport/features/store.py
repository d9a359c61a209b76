"""Feature collections in the platform's database, one table each (`f_{database}__{collection}`) with the
geometry and one typed column per property. Two backends behind one interface (`feature_store(db)`):

- SQLite, the embedded default: geometry as WKB, bounding boxes in an R*Tree index, the exact intersection
  test in shapely;
- PostGIS: a native geometry column with its SRID and a GiST index; the bbox test runs in the database.

Inserts stream: features are checked and written in chunks inside one transaction, so millions of rows
never sit in memory and a bad feature leaves nothing written.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from datetime import datetime, timezone
from itertools import islice
from typing import Any

import shapely
import sqlalchemy as sa
from pyproj import Transformer
from shapely.geometry import box, shape
from shapely.geometry.base import BaseGeometry

from cubeport.db import Database
from cubeport.errors import ConflictError, InputError, NotFoundError
from cubeport.features.schema import CollectionSpec, check_crs, check_name

CHUNK = 5_000
_SQL_TYPES: dict[str, Any] = {"string": sa.Text, "integer": sa.BigInteger, "number": sa.Float,
                              "boolean": sa.Boolean, "datetime": sa.DateTime(timezone=True), "json": sa.JSON}
_REGISTRY = sa.Table(  # as migration 0003 makes it
    "feature_collections", sa.MetaData(),
    sa.Column("database", sa.String(48), primary_key=True), sa.Column("name", sa.String(48), primary_key=True),
    sa.Column("properties", sa.JSON), sa.Column("crs", sa.Integer), sa.Column("geometry_type", sa.String(24)),
    sa.Column("title", sa.String(256)), sa.Column("description", sa.Text), sa.Column("licence", sa.String(256)),
    sa.Column("keywords", sa.JSON), sa.Column("provenance", sa.Text), sa.Column("metadata_url", sa.String(1024)),
    sa.Column("owner", sa.String(128)), sa.Column("created", sa.DateTime(timezone=True)))


def table_name(database: str, name: str) -> str:
    return f"f_{database}__{name}"


def feature_store(db: Database) -> "FeatureStore":
    """The store for the database's kind: SQLite or PostgreSQL with PostGIS."""
    return PostgisFeatureStore(db) if db.engine.dialect.name == "postgresql" else SqliteFeatureStore(db)


class FeatureStore:
    """Create, fill, query and drop feature collections. Subclasses keep the geometry and its index."""

    exact_in_database = False  # whether `_within` already tests true intersection, not just bounding boxes

    def __init__(self, db: Database) -> None:
        self.db = db
        self.engine = db.engine

    # -- collections ---------------------------------------------------------------------------------------
    def create(self, spec: CollectionSpec) -> CollectionSpec:
        """A new, empty collection; ConflictError if it exists."""
        spec = spec.checked()
        data = self._table(spec)
        with self.engine.begin() as connection:
            if self._row(connection, spec.database, spec.name) is not None:
                raise ConflictError(f"collection {spec.id!r} exists")
            connection.execute(_REGISTRY.insert().values(**{k: v for k, v in asdict(spec).items()},
                                                        created=datetime.now(timezone.utc)))
            self._create_table(connection, spec, data)
        return spec

    def get(self, database: str, name: str) -> CollectionSpec:
        with self.engine.connect() as connection:
            row = self._row(connection, check_name(database, "database"), check_name(name, "collection"))
        if row is None:
            raise NotFoundError(f"collection {database}.{name} not found; collections of {database}: "
                                f"{', '.join(c.name for c in self.list(database)) or 'none'}")
        return _spec(row)

    def list(self, database: str | None = None) -> list[CollectionSpec]:
        query = sa.select(_REGISTRY).order_by(_REGISTRY.c.database, _REGISTRY.c.name)
        if database is not None:
            query = query.where(_REGISTRY.c.database == database)
        with self.engine.connect() as connection:
            return [_spec(row) for row in connection.execute(query).mappings()]

    def drop(self, database: str, name: str) -> None:
        spec = self.get(database, name)
        with self.engine.begin() as connection:
            self._drop_table(connection, spec, self._table(spec))
            connection.execute(_REGISTRY.delete().where(
                (_REGISTRY.c.database == spec.database) & (_REGISTRY.c.name == spec.name)))

    # -- features --------------------------------------------------------------------------------------------
    def insert(self, database: str, name: str, features: Iterable[dict[str, Any]], chunk: int = CHUNK) -> int:
        """Add GeoJSON-like features ({"geometry": ..., "properties": {...}}; geometry as GeoJSON or shapely, in
        the collection's CRS); all or nothing. Returns how many were added."""
        spec = self.get(database, name)
        data = self._table(spec)
        added = 0
        stream = iter(features)
        with self.engine.begin() as connection:
            next_id = connection.execute(sa.select(sa.func.coalesce(sa.func.max(data.c.id), 0))).scalar_one() + 1
            while batch := list(islice(stream, chunk)):
                rows = [_row_of(spec, feature, added + i) for i, feature in enumerate(batch)]
                for i, row in enumerate(rows):
                    row["id"] = next_id + added + i
                self._insert_rows(connection, spec, data, rows)
                added += len(rows)
        return added

    def query(self, database: str, name: str, *, bbox: tuple[float, float, float, float] | None = None,
              bbox_crs: int | str | None = None, limit: int | None = None, offset: int = 0,
              properties: list[str] | None = None) -> Iterator[dict[str, Any]]:
        """Features (id, shapely geometry, properties) in id order, those intersecting `bbox` (given in
        `bbox_crs`, default the collection's) if given; `offset` and `limit` page through the result."""
        spec = self.get(database, name)
        data = self._table(spec)
        chosen = list(spec.properties) if properties is None else properties
        unknown = [p for p in chosen if p not in spec.properties]
        if unknown:
            raise InputError(f"unknown properties {', '.join(unknown)}; properties: {', '.join(spec.properties)}")
        query = sa.select(data.c.id, self._wkb(data), *(data.c[p] for p in chosen)).order_by(data.c.id)
        area = None
        if bbox is not None:
            area = _bbox_in(spec, bbox, bbox_crs)
            query = self._within(query, spec, data, area, exact=True)
        if self.exact_in_database or area is None:  # paging in SQL
            query = query.offset(offset).limit(limit)
            offset, limit, area = 0, None, None
        skipped = returned = 0
        with self.engine.connect() as connection:
            for row in connection.execution_options(stream_results=True, yield_per=CHUNK).execute(query):
                geometry = shapely.from_wkb(row.wkb)
                if area is not None and not area.intersects(geometry):
                    continue
                if skipped < offset:
                    skipped += 1
                    continue
                if limit is not None and returned >= limit:
                    return
                returned += 1
                yield {"id": row.id, "geometry": geometry, "properties": {p: row._mapping[p] for p in chosen}}

    def feature(self, database: str, name: str, feature_id: int) -> dict[str, Any]:
        """One feature by id; NotFoundError if there is none."""
        spec = self.get(database, name)
        data = self._table(spec)
        query = sa.select(data.c.id, self._wkb(data), *(data.c[p] for p in spec.properties)).where(
            data.c.id == feature_id)
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        if row is None:
            raise NotFoundError(f"feature {feature_id} not in collection {spec.id}")
        return {"id": row.id, "geometry": shapely.from_wkb(row.wkb),
                "properties": {p: row._mapping[p] for p in spec.properties}}

    def count(self, database: str, name: str, *, bbox: tuple[float, float, float, float] | None = None,
              bbox_crs: int | str | None = None, exact: bool = True) -> int:
        """How many features (intersect the bbox); `exact=False` counts index candidates, which is quicker."""
        spec = self.get(database, name)
        data = self._table(spec)
        if bbox is None:
            with self.engine.connect() as connection:
                return int(connection.execute(sa.select(sa.func.count()).select_from(data)).scalar_one())
        if exact and not self.exact_in_database:
            return sum(1 for _ in self.query(database, name, bbox=bbox, bbox_crs=bbox_crs, properties=[]))
        area = _bbox_in(spec, bbox, bbox_crs)
        query = self._within(sa.select(sa.func.count()).select_from(data), spec, data, area, exact=exact)
        with self.engine.connect() as connection:
            return int(connection.execute(query).scalar_one())

    # -- helpers -----------------------------------------------------------------------------------------------
    @staticmethod
    def _row(connection: sa.Connection, database: str, name: str) -> Any:
        return connection.execute(sa.select(_REGISTRY).where(
            (_REGISTRY.c.database == database) & (_REGISTRY.c.name == name))).mappings().first()

    def _table(self, spec: CollectionSpec) -> sa.Table:
        return sa.Table(
            table_name(spec.database, spec.name), sa.MetaData(),
            sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
            sa.Column("geometry", self._geometry_type(spec), nullable=False),
            *(sa.Column(p, _SQL_TYPES[kind]) for p, kind in spec.properties.items()))

    # -- what a backend provides ---------------------------------------------------------------------------
    def _geometry_type(self, spec: CollectionSpec) -> Any:
        raise NotImplementedError

    def _create_table(self, connection: sa.Connection, spec: CollectionSpec, data: sa.Table) -> None:
        raise NotImplementedError

    def _drop_table(self, connection: sa.Connection, spec: CollectionSpec, data: sa.Table) -> None:
        raise NotImplementedError

    def _insert_rows(self, connection: sa.Connection, spec: CollectionSpec, data: sa.Table,
                     rows: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def _wkb(self, data: sa.Table) -> Any:
        """The geometry column as WKB, labelled `wkb`."""
        raise NotImplementedError

    def _within(self, query: sa.Select, spec: CollectionSpec, data: sa.Table, area: BaseGeometry,
                exact: bool) -> sa.Select:
        """`query` narrowed to features whose bbox (or, where the backend can, geometry) meets `area`."""
        raise NotImplementedError


class SqliteFeatureStore(FeatureStore):
    """WKB blobs; bounding boxes in an R*Tree virtual table `{table}_rtree`."""

    def _geometry_type(self, spec: CollectionSpec) -> Any:
        return sa.LargeBinary

    @staticmethod
    def _rtree(data: sa.Table) -> sa.TableClause:
        return sa.table(f"{data.name}_rtree", *(sa.column(c) for c in ("id", "minx", "maxx", "miny", "maxy")))

    def _create_table(self, connection: sa.Connection, spec: CollectionSpec, data: sa.Table) -> None:
        data.create(connection)  # the names are checked identifiers (schema.check_name)
        connection.exec_driver_sql(f'CREATE VIRTUAL TABLE "{data.name}_rtree" USING rtree(id, minx, maxx, miny, maxy)')

    def _drop_table(self, connection: sa.Connection, spec: CollectionSpec, data: sa.Table) -> None:
        connection.exec_driver_sql(f'DROP TABLE "{data.name}_rtree"')
        data.drop(connection)

    def _insert_rows(self, connection: sa.Connection, spec: CollectionSpec, data: sa.Table,
                     rows: list[dict[str, Any]]) -> None:
        boxes = [{"id": r["id"], **dict(zip(("minx", "miny", "maxx", "maxy"), r["geometry"].bounds))} for r in rows]
        connection.execute(self._rtree(data).insert(), boxes)
        connection.execute(data.insert(), [{**r, "geometry": shapely.to_wkb(r["geometry"])} for r in rows])

    def _wkb(self, data: sa.Table) -> Any:
        return data.c.geometry.label("wkb")

    def _within(self, query: sa.Select, spec: CollectionSpec, data: sa.Table, area: BaseGeometry,
                exact: bool) -> sa.Select:
        rtree = self._rtree(data)
        west, south, east, north = area.bounds
        return query.join(rtree, rtree.c.id == data.c.id).where(
            rtree.c.minx <= east, rtree.c.maxx >= west, rtree.c.miny <= north, rtree.c.maxy >= south)


class PostgisFeatureStore(FeatureStore):
    """A native geometry column with the collection's SRID and a GiST index; ST_Intersects in the database."""

    exact_in_database = True

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        with self.engine.begin() as connection:
            connection.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS postgis")

    def _geometry_type(self, spec: CollectionSpec) -> Any:
        from geoalchemy2 import Geometry

        # any type in the column (a Polygon collection also takes MultiPolygons; `_row_of` checks the family)
        return Geometry("GEOMETRY", srid=spec.crs, spatial_index=False)

    def _create_table(self, connection: sa.Connection, spec: CollectionSpec, data: sa.Table) -> None:
        data.create(connection)
        connection.exec_driver_sql(f'CREATE INDEX "{data.name}_gix" ON "{data.name}" USING GIST (geometry)')

    def _drop_table(self, connection: sa.Connection, spec: CollectionSpec, data: sa.Table) -> None:
        data.drop(connection)

    def _insert_rows(self, connection: sa.Connection, spec: CollectionSpec, data: sa.Table,
                     rows: list[dict[str, Any]]) -> None:
        from geoalchemy2.shape import from_shape

        connection.execute(data.insert(), [{**r, "geometry": from_shape(r["geometry"], srid=spec.crs)}
                                           for r in rows])

    def _wkb(self, data: sa.Table) -> Any:
        return sa.func.ST_AsBinary(data.c.geometry).label("wkb")

    def _within(self, query: sa.Select, spec: CollectionSpec, data: sa.Table, area: BaseGeometry,
                exact: bool) -> sa.Select:
        envelope = sa.func.ST_MakeEnvelope(*area.bounds, spec.crs)
        test = sa.func.ST_Intersects(data.c.geometry, envelope) if exact else data.c.geometry.op("&&")(envelope)
        return query.where(test)


def _spec(row: Any) -> CollectionSpec:
    return CollectionSpec(**{k: row[k] for k in CollectionSpec.__dataclass_fields__})


def _row_of(spec: CollectionSpec, feature: dict[str, Any], index: int) -> dict[str, Any]:
    """A table row of a feature, or InputError saying which feature is wrong and how."""
    raw = feature.get("geometry") if isinstance(feature, dict) else None
    try:
        geometry = raw if isinstance(raw, BaseGeometry) else shape(raw)
    except (TypeError, ValueError, KeyError, AttributeError, IndexError, shapely.errors.ShapelyError) as exc:
        raise InputError(f"feature {index}: no valid GeoJSON geometry ({exc})") from None
    if geometry.is_empty or not geometry.is_valid:
        reason = "it is empty" if geometry.is_empty else shapely.is_valid_reason(geometry)
        raise InputError(f"feature {index}: invalid geometry: {reason}")
    if spec.geometry_type != "Geometry" and geometry.geom_type not in (spec.geometry_type,
                                                                        "Multi" + spec.geometry_type):
        raise InputError(f"feature {index}: a {geometry.geom_type}, but collection {spec.id} holds "
                         f"{spec.geometry_type} geometries")
    values = feature.get("properties") or {}
    unknown = [k for k in values if k not in spec.properties]
    if unknown:
        raise InputError(f"feature {index}: unknown properties {', '.join(map(str, unknown))}; "
                         f"properties: {', '.join(spec.properties) or 'none'}")
    row: dict[str, Any] = {"geometry": geometry}
    for name, kind in spec.properties.items():
        row[name] = _value(values.get(name), kind, index, name)
    return row


def _value(value: Any, kind: str, index: int, name: str) -> Any:
    """A property value of its column's type, or InputError."""
    if value is None:
        return None
    try:
        if kind == "integer" and not isinstance(value, bool):
            number = float(value)
            if number.is_integer():
                return int(number)
        elif kind == "number" and not isinstance(value, bool):
            number = float(value)
            if math.isfinite(number):
                return number
        elif kind == "string":
            return str(value)
        elif kind == "boolean" and isinstance(value, bool):
            return value
        elif kind == "datetime":
            moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
        elif kind == "json":
            return value
    except (TypeError, ValueError):
        pass
    raise InputError(f"feature {index}: property {name!r} must be {kind}, not {value!r}")


def _bbox_in(spec: CollectionSpec, bbox: tuple[float, float, float, float], bbox_crs: int | str | None) -> BaseGeometry:
    """The bbox as a polygon in the collection's CRS (densified when it is reprojected)."""
    west, south, east, north = (float(v) for v in bbox)
    if not (west <= east and south <= north):
        raise InputError(f"bbox {bbox}: give west, south, east, north with west <= east and south <= north")
    area = box(west, south, east, north)
    code = check_crs(bbox_crs) if bbox_crs is not None else spec.crs
    if code != spec.crs:
        transform = Transformer.from_crs(code, spec.crs, always_xy=True).transform
        area = shapely.transform(area.segmentize(max(east - west, north - south) / 32), transform, interleaved=False)
        area = box(*area.bounds)
    return area
