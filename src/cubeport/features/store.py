"""Feature collections in the platform's database, one table each (`f_{database}__{collection}`) with the
geometry and one typed column per property. `FeatureStore` holds what both backends share (the registry,
the SQL of paging, sorting, counting, updating and deleting); a backend (`features.backends`: SQLite,
PostGIS) keeps the geometry column and its index by implementing the abstract hooks at the class's end.

Inserts stream: features are checked and written in chunks inside one transaction, so millions of rows
never sit in memory and a bad feature, or a request's spent time budget (`deadline`, checked per chunk
written and per chunk read), leaves nothing written. Queries, counts, updates and deletes take a
`Selection` (bbox, CQL2 filter, time range) that becomes one SQL condition on either backend, so paging,
sorting and counting all happen in SQL.
"""

from __future__ import annotations

import builtins
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from itertools import islice
from typing import Any

import shapely
import sqlalchemy as sa
from pyproj import Transformer
from shapely.geometry import box, shape
from shapely.geometry.base import BaseGeometry

from cubeport import deadline
from cubeport.db import Database, as_utc
from cubeport.errors import ConflictError, InputError, NotFoundError
from cubeport.features.filters import Filter, FilterCompiler
from cubeport.features.geojson import geojson_features
from cubeport.features.schema import METADATA, CollectionSpec, check_crs, check_name

CHUNK = 5_000
MAX_ID = 2**63 - 1  # feature ids (and offsets) are 64-bit integers in both databases
_SQL_TYPES: dict[str, Any] = {
    "string": sa.Text,
    "integer": sa.BigInteger,
    "number": sa.Float,
    "boolean": sa.Boolean,
    "datetime": sa.DateTime(timezone=True),
    "json": sa.JSON,
}
_REGISTRY = sa.Table(  # as migration 0003 makes it
    "feature_collections",
    sa.MetaData(),
    sa.Column("database", sa.String(48), primary_key=True),
    sa.Column("name", sa.String(48), primary_key=True),
    sa.Column("properties", sa.JSON),
    sa.Column("crs", sa.Integer),
    sa.Column("geometry_type", sa.String(24)),
    sa.Column("title", sa.String(256)),
    sa.Column("description", sa.Text),
    sa.Column("licence", sa.String(256)),
    sa.Column("keywords", sa.JSON),
    sa.Column("provenance", sa.Text),
    sa.Column("metadata_url", sa.String(1024)),
    sa.Column("owner", sa.String(128)),
    sa.Column("created", sa.DateTime(timezone=True)),
    sa.Column("time_property", sa.String(48)),
)


@dataclass(frozen=True)
class Selection:
    """Which features: those meeting the bbox (given in `bbox_crs`, default the collection's), the CQL2 filter
    (CQL2 JSON from `filters.parse_filter`; geometry literals in `filter_crs`, default CRS84) and the time
    range on the collection's time property (None for an open end). The empty selection is every feature."""

    bbox: tuple[float, float, float, float] | None = None
    bbox_crs: int | str | None = None
    filter: Filter | None = None
    filter_crs: int | str = 4326
    datetime: tuple[datetime | None, datetime | None] | None = None


EVERYTHING = Selection()


def table_name(database: str, name: str) -> str:
    return f"f_{database}__{name}"


class FeatureStore(ABC):
    """Create, fill, query and drop feature collections. A backend keeps the geometry and its index."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.engine = db.engine

    # -- collections ---------------------------------------------------------------------------------------
    def create(
        self,
        spec: CollectionSpec,
        features: Iterable[dict[str, Any]] = (),
        chunk: int = CHUNK,
        *,
        on_create: Callable[[sa.Connection], None] | None = None,
    ) -> CollectionSpec:
        """A new collection, with `features` (as `insert` takes them) written in the same transaction: an
        import that fails or is killed leaves no collection behind. ConflictError if it exists.
        `on_create` runs first in that transaction (e.g. to write the collection's access rule, so that
        nobody sees it without one)."""
        spec = spec.checked()
        data = self._table(spec)
        with self.engine.begin() as connection:
            if self._row(connection, spec.database, spec.name) is not None:
                raise ConflictError(f"collection {spec.id!r} exists")
            if on_create is not None:
                on_create(connection)
            connection.execute(_REGISTRY.insert().values(**asdict(spec), created=datetime.now(UTC)))
            self._create_table(connection, spec, data)
            self._write(connection, spec, data, features, chunk, upsert=False)
        return spec

    def get(self, database: str, name: str) -> CollectionSpec:
        with self.engine.connect() as connection:
            row = self._row(connection, check_name(database, "database"), check_name(name, "collection"))
        if row is None:
            # worded as the guard words a hidden one, and naming no other collection
            raise NotFoundError(f"collection {f'{database}.{name}'!r} not found")
        return _spec(row)

    def list(self, database: str | None = None) -> builtins.list[CollectionSpec]:
        query = sa.select(_REGISTRY).order_by(_REGISTRY.c.database, _REGISTRY.c.name)
        if database is not None:
            query = query.where(_REGISTRY.c.database == database)
        with self.engine.connect() as connection:
            return [_spec(row) for row in connection.execute(query).mappings()]

    def describe(self, database: str, name: str, **metadata: Any) -> CollectionSpec:
        """The collection with new metadata (any of `schema.METADATA`); properties and features stay."""
        spec = self.get(database, name)
        unknown = sorted(set(metadata) - set(METADATA))
        if unknown:
            raise InputError(f"cannot change {', '.join(unknown)}; metadata: {', '.join(METADATA)}")
        new = replace(spec, **metadata).checked()
        with self.engine.begin() as connection:
            connection.execute(
                _REGISTRY.update()
                .where((_REGISTRY.c.database == spec.database) & (_REGISTRY.c.name == spec.name))
                .values(**{k: getattr(new, k) for k in METADATA})
            )
        return new

    def drop(self, database: str, name: str) -> None:
        spec = self.get(database, name)
        with self.engine.begin() as connection:
            self._drop_table(connection, spec, self._table(spec))
            connection.execute(
                _REGISTRY.delete().where(
                    (_REGISTRY.c.database == spec.database) & (_REGISTRY.c.name == spec.name)
                )
            )

    # -- features --------------------------------------------------------------------------------------------
    def insert(
        self,
        database: str,
        name: str,
        features: Iterable[dict[str, Any]],
        chunk: int = CHUNK,
        *,
        upsert: bool = False,
    ) -> int:
        """Add GeoJSON-like features ({"geometry": ..., "properties": {...}}; geometry as GeoJSON or shapely, in
        the collection's CRS); all or nothing. With `upsert`, a feature with an "id" replaces the feature of
        that id (or is added under it); otherwise ids are given by the store. Returns how many were written."""
        spec = self.get(database, name)
        with self.engine.begin() as connection:
            return self._write(connection, spec, self._table(spec), features, chunk, upsert=upsert)

    def _write(
        self,
        connection: sa.Connection,
        spec: CollectionSpec,
        data: sa.Table,
        features: Iterable[dict[str, Any]],
        chunk: int,
        *,
        upsert: bool,
    ) -> int:
        """`insert` within the caller's transaction."""
        added = 0
        stream = iter(features)
        next_id = connection.execute(sa.select(sa.func.coalesce(sa.func.max(data.c.id), 0))).scalar_one() + 1
        while batch := list(islice(stream, chunk)):
            deadline.check("writing the features")  # within the transaction: a stopped write writes nothing
            rows = [_row_of(spec, feature, added + i) for i, feature in enumerate(batch)]
            given = [_id_of(f, added + i) if upsert else None for i, f in enumerate(batch)]
            chosen = [g for g in given if g is not None]
            if len(set(chosen)) < len(chosen):
                raise InputError("two features have the same id; each id may come once")
            if chosen:
                self._delete_ids(connection, data, sa.select(data.c.id).where(data.c.id.in_(chosen)))
                next_id = max(next_id, max(chosen) + 1)
            for row, feature_id in zip(rows, given, strict=False):
                if feature_id is None:
                    feature_id, next_id = next_id, next_id + 1
                row["id"] = feature_id
            self._insert_rows(connection, spec, data, rows)
            added += len(rows)
        if added:
            self._filled(connection, data)
        return added

    def query(
        self,
        database: str,
        name: str,
        selection: Selection = EVERYTHING,
        *,
        sortby: builtins.list[str] | None = None,
        limit: int | None = None,
        offset: int = 0,
        properties: builtins.list[str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """The selected features (id, shapely geometry, properties), sorted by `sortby` (property names, `-`
        for descending) then id; `offset` and `limit` page through them; `properties` chooses the properties."""
        spec = self.get(database, name)
        data = self._table(spec)
        chosen = list(spec.properties) if properties is None else properties
        check_known(spec, chosen, "properties")
        query = (
            sa.select(data.c.id, self._wkb(data), *(data.c[p] for p in chosen))
            .where(*self._where(spec, data, selection))
            .order_by(*order_terms(spec, data, sortby))
            .offset(offset)
            .limit(limit)
        )
        return (_feature(row, chosen, spec) for row in self._stream(query))

    def _stream(self, query: sa.Select[Any]) -> Iterator[sa.Row[Any]]:
        """The rows of `query`, read in chunks from a server-side cursor as the caller iterates. The query is
        built (and the request checked) before: a bad one fails at the call, not once a response has begun."""
        with self.engine.connect() as connection:
            rows = connection.execution_options(stream_results=True, yield_per=CHUNK).execute(query)
            for part in rows.partitions():
                deadline.check("reading the features")  # pages, exports, a backend's GeoJSON
                yield from part

    def geojson(
        self,
        database: str,
        name: str,
        selection: Selection = EVERYTHING,
        *,
        sortby: builtins.list[str] | None = None,
        limit: int | None = None,
        offset: int = 0,
        properties: builtins.list[str] | None = None,
    ) -> Iterator[str]:
        """The features `query` gives, as GeoJSON Feature texts in CRS84 (what the API and exports send)."""
        features = self.query(
            database, name, selection, sortby=sortby, limit=limit, offset=offset, properties=properties
        )
        crs = self.get(database, name).crs
        return (
            text
            for part in iter(lambda: list(islice(features, CHUNK)), [])
            for text in geojson_features(crs, part)
        )

    def feature(self, database: str, name: str, feature_id: int) -> dict[str, Any]:
        """One feature by id; NotFoundError if there is none."""
        spec = self.get(database, name)
        data = self._table(spec)
        query = sa.select(data.c.id, self._wkb(data), *(data.c[p] for p in spec.properties)).where(
            data.c.id == feature_id
        )
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        if row is None:
            raise NotFoundError(f"feature {feature_id} not in collection {spec.id}")
        return _feature(row, list(spec.properties), spec)

    def count(
        self, database: str, name: str, selection: Selection = EVERYTHING, *, exact: bool = True
    ) -> int:
        """How many features are selected; `exact=False` gives the backend's quick estimate (PostgreSQL's
        planner statistics; on SQLite the bbox index's candidates)."""
        spec = self.get(database, name)
        data = self._table(spec)
        with self.engine.connect() as connection:
            if not exact:
                return self._estimate(connection, spec, data, selection)
            query = sa.select(sa.func.count()).select_from(data).where(*self._where(spec, data, selection))
            return int(connection.execute(query).scalar_one())

    # -- changes -----------------------------------------------------------------------------------------------
    def update(self, database: str, name: str, selection: Selection, values: dict[str, Any]) -> int:
        """Set properties of the selected features; returns how many changed."""
        spec = self.get(database, name)
        data = self._table(spec)
        check_known(spec, list(values), "properties")
        if not values:
            raise InputError("give at least one property to set")
        checked = {p: _value(v, spec.properties[p], 0, p) for p, v in values.items()}
        with self.engine.begin() as connection:
            return int(
                connection.execute(
                    data.update().where(*self._where(spec, data, selection)).values(**checked)
                ).rowcount
            )

    def delete(self, database: str, name: str, selection: Selection) -> int:
        """Delete the selected features; returns how many."""
        spec = self.get(database, name)
        data = self._table(spec)
        ids = sa.select(data.c.id).where(*self._where(spec, data, selection))
        with self.engine.begin() as connection:
            return self._delete_ids(connection, data, ids)

    def delete_feature(self, database: str, name: str, feature_id: int) -> None:
        spec = self.get(database, name)
        data = self._table(spec)
        with self.engine.begin() as connection:
            if not self._delete_ids(connection, data, sa.select(data.c.id).where(data.c.id == feature_id)):
                raise NotFoundError(f"feature {feature_id} not in collection {spec.id}")

    def replace(self, database: str, name: str, feature_id: int, feature: dict[str, Any]) -> None:
        """Replace an existing feature (geometry and properties), keeping its id."""
        self.feature(database, name, feature_id)
        self.insert(database, name, [{**feature, "id": feature_id}], upsert=True)

    def rename(self, database: str, name: str, new_name: str) -> CollectionSpec:
        """The collection under a new name in the same database."""
        spec = self.get(database, name)
        new = replace(spec, name=check_name(new_name, "collection"))
        old_table, new_table = table_name(database, name), table_name(database, new.name)
        with self.engine.begin() as connection:
            if self._row(connection, database, new.name) is not None:
                raise ConflictError(f"collection {new.id!r} exists")
            connection.exec_driver_sql(f'ALTER TABLE "{old_table}" RENAME TO "{new_table}"')
            self._renamed(connection, old_table, new_table)
            connection.execute(
                _REGISTRY.update()
                .where((_REGISTRY.c.database == database) & (_REGISTRY.c.name == name))
                .values(name=new.name)
            )
        return new

    def copy(
        self,
        database: str,
        name: str,
        to_database: str,
        to_name: str,
        *,
        on_create: Callable[[sa.Connection], None] | None = None,
    ) -> CollectionSpec:
        """A new collection `to_database.to_name` with the same properties, metadata and features
        (`on_create` as for `create`)."""
        spec = self.get(database, name)
        new = self.create(replace(spec, database=to_database, name=to_name, owner=None), on_create=on_create)
        source, target = self._table(spec), self._table(new)
        columns = [c.name for c in source.columns]
        try:
            with self.engine.begin() as connection:
                connection.execute(target.insert().from_select(columns, sa.select(*source.c)))
                self._copied(connection, source, target)
        except Exception:
            self.drop(new.database, new.name)
            raise
        return new

    # -- helpers -----------------------------------------------------------------------------------------------
    def _where(self, spec: CollectionSpec, data: sa.Table, selection: Selection) -> builtins.list[Any]:
        """The SQL conditions of a selection."""
        conditions = []
        if selection.bbox is not None:
            conditions.extend(
                self._in_area(spec, data, bbox_in(spec, selection.bbox, selection.bbox_crs), True)
            )
        if selection.filter is not None:
            columns = {"id": data.c.id, **{p: data.c[p] for p in spec.properties}}
            compiler = FilterCompiler(
                spec,
                columns,
                data.c.geometry,
                lambda g: self._geometry_literal(spec, g),
                check_crs(selection.filter_crs),
            )
            conditions.append(compiler.condition(selection.filter))
        if selection.datetime is not None:
            if not spec.time_property:
                raise InputError(f"collection {spec.id} has no time property, so `datetime` cannot filter it")
            start, end = selection.datetime
            column = data.c[spec.time_property]
            conditions.extend(
                c
                for c in (column >= start if start else None, column <= end if end else None)
                if c is not None
            )
        return conditions

    @staticmethod
    def _row(connection: sa.Connection, database: str, name: str) -> Any:
        return (
            connection.execute(
                sa.select(_REGISTRY).where((_REGISTRY.c.database == database) & (_REGISTRY.c.name == name))
            )
            .mappings()
            .first()
        )

    def _table(self, spec: CollectionSpec) -> sa.Table:
        return sa.Table(
            table_name(spec.database, spec.name),
            sa.MetaData(),
            sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
            sa.Column("geometry", self._geometry_type(spec), nullable=False),
            *(sa.Column(p, _SQL_TYPES[kind]) for p, kind in spec.properties.items()),
        )

    # -- what a backend provides ---------------------------------------------------------------------------
    @abstractmethod
    def _geometry_type(self, spec: CollectionSpec) -> Any:
        """The SQLAlchemy type of the geometry column."""

    @abstractmethod
    def _create_table(self, connection: sa.Connection, spec: CollectionSpec, data: sa.Table) -> None:
        """Create the collection's table and its geometry index."""

    @abstractmethod
    def _drop_table(self, connection: sa.Connection, spec: CollectionSpec, data: sa.Table) -> None:
        """Drop the collection's table and its geometry index."""

    @abstractmethod
    def _renamed(self, connection: sa.Connection, old: str, new: str) -> None:
        """Rename what belongs to a renamed table (index tables, index names)."""

    @abstractmethod
    def _copied(self, connection: sa.Connection, source: sa.Table, target: sa.Table) -> None:
        """Complete the index of a table filled by copying rows."""

    @abstractmethod
    def _insert_rows(
        self,
        connection: sa.Connection,
        spec: CollectionSpec,
        data: sa.Table,
        rows: builtins.list[dict[str, Any]],
    ) -> None:
        """Write checked rows (ids given, geometry as shapely) and their index entries."""

    def _filled(self, connection: sa.Connection, data: sa.Table) -> None:  # noqa: B027 - optional hook
        """After rows were added: update what the query planner knows (nothing, unless a backend says)."""

    @abstractmethod
    def _delete_ids(self, connection: sa.Connection, data: sa.Table, ids: sa.Select[Any]) -> int:
        """Delete the features whose ids `ids` selects; returns how many."""

    @abstractmethod
    def _wkb(self, data: sa.Table) -> Any:
        """The geometry column as WKB, labelled `wkb`."""

    @abstractmethod
    def _geometry_literal(self, spec: CollectionSpec, geometry: BaseGeometry) -> Any:
        """A geometry (in the collection's CRS) as an SQL value to compare the geometry column with."""

    @abstractmethod
    def _in_area(
        self, spec: CollectionSpec, data: sa.Table, area: BaseGeometry, exact: bool
    ) -> builtins.list[Any]:
        """Conditions for features meeting `area`: exactly, or by their bounding boxes (quicker)."""

    @abstractmethod
    def _estimate(
        self, connection: sa.Connection, spec: CollectionSpec, data: sa.Table, selection: Selection
    ) -> int:
        """A quick estimate of how many features `selection` selects."""


def _spec(row: Any) -> CollectionSpec:
    values = {k: row[k] for k in CollectionSpec.__dataclass_fields__}
    return CollectionSpec(**values | {"time_property": values["time_property"] or ""})


def _feature(row: Any, properties: list[str], spec: CollectionSpec) -> dict[str, Any]:
    values = {p: row._mapping[p] for p in properties}
    for p in properties:  # SQLite gives naive datetimes back; every stored time is UTC
        if spec.properties[p] == "datetime":
            values[p] = as_utc(values[p])
    return {"id": row.id, "geometry": shapely.from_wkb(row.wkb), "properties": values}


def check_known(spec: CollectionSpec, names: list[str], what: str) -> None:
    """InputError unless every name is a property of the collection; `what` says what the names are for."""
    unknown = [p for p in names if p not in spec.properties]
    if unknown:
        raise InputError(
            f"unknown {what} {', '.join(map(str, unknown))}; properties: "
            f"{', '.join(spec.properties) or 'none'}"
        )


def order_terms(spec: CollectionSpec, data: sa.Table, sortby: list[str] | None) -> list[Any]:
    """ORDER BY terms for `sortby` ("name", "+name", "-name"; also "id"), ending with the id for stable pages."""
    terms = []
    for item in sortby or []:
        descending, field = item.startswith("-"), item.lstrip("+-").strip()
        if field != "id":
            check_known(spec, [field], "sort property")
            if spec.properties[field] == "json":
                raise InputError(f"cannot sort by {field!r}: a json property has no order")
        column = data.c[field]
        terms.append(column.desc() if descending else column.asc())
    return [*terms, data.c.id]


def _id_of(feature: Any, index: int) -> int | None:
    value = feature.get("id") if isinstance(feature, dict) else None
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, str))
        or not str(value).isdigit()
        or not 1 <= int(value) <= MAX_ID
    ):
        raise InputError(f"feature {index}: id {value!r} is not a positive integer below 2^63")
    return int(value)


def _row_of(spec: CollectionSpec, feature: dict[str, Any], index: int) -> dict[str, Any]:
    """A table row of a feature, or InputError saying which feature is wrong and how."""
    raw: Any = feature.get("geometry") if isinstance(feature, dict) else None  # whatever the caller sent
    try:
        geometry = raw if isinstance(raw, BaseGeometry) else shape(raw)
    except (TypeError, ValueError, KeyError, AttributeError, IndexError, shapely.errors.ShapelyError) as exc:
        raise InputError(f"feature {index}: no valid GeoJSON geometry ({exc})") from None
    if geometry.is_empty or not geometry.is_valid:
        reason = "it is empty" if geometry.is_empty else shapely.is_valid_reason(geometry)
        raise InputError(f"feature {index}: invalid geometry: {reason}")
    if spec.geometry_type != "Geometry" and geometry.geom_type not in (
        spec.geometry_type,
        "Multi" + spec.geometry_type,
    ):
        raise InputError(
            f"feature {index}: a {geometry.geom_type}, but collection {spec.id} holds "
            f"{spec.geometry_type} geometries"
        )
    values = feature.get("properties") or {}
    unknown = [k for k in values if k not in spec.properties]
    if unknown:
        raise InputError(
            f"feature {index}: unknown properties {', '.join(map(str, unknown))}; "
            f"properties: {', '.join(spec.properties) or 'none'}"
        )
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
            moment = (
                value
                if isinstance(value, datetime)
                else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            )
            return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
        elif kind == "json":
            return value
    except (TypeError, ValueError):
        pass
    raise InputError(f"feature {index}: property {name!r} must be {kind}, not {value!r}")


def bbox_in(
    spec: CollectionSpec, bbox: tuple[float, float, float, float], bbox_crs: int | str | None
) -> BaseGeometry:
    """The bbox as a polygon in the collection's CRS (densified when it is reprojected)."""
    west, south, east, north = (float(v) for v in bbox)
    if not (west <= east and south <= north):
        raise InputError(f"bbox {bbox}: give west, south, east, north with west <= east and south <= north")
    area = box(west, south, east, north)
    code = check_crs(bbox_crs) if bbox_crs is not None else spec.crs
    if code != spec.crs:
        transform = Transformer.from_crs(code, spec.crs, always_xy=True).transform
        area = shapely.transform(
            area.segmentize(max(east - west, north - south) / 32),
            transform,  # type: ignore[arg-type]  # types-shapely lacks interleaved=False's (x, y) signature
            interleaved=False,
        )
        area = box(*area.bounds)
    return area
