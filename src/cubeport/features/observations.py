"""In-situ observations at the stations of a station collection: one row per station, time and parameter
(value, unit, quality flag), so the viewer and notebooks can put monitoring data beside EO data.

Stations are ordinary features; observations refer to them by feature id. Monitoring data arrive as CSV
(`station,time,parameter,value,unit,quality`, stations named by a property such as their code); a row
for a station, parameter and time already stored replaces it, and a bad row leaves nothing written.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from itertools import islice
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from cubeport.db import as_utc
from cubeport.errors import InputError
from cubeport.features.store import CHUNK, FeatureStore
from cubeport.ogc.params import parse_datetime, parse_instant

COLUMNS = ("station", "time", "parameter", "value", "unit", "quality")
_TABLE = sa.Table(  # as migration 0004 makes it
    "observations",
    sa.MetaData(),
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("collection", sa.String(97)),
    sa.Column("station", sa.BigInteger),
    sa.Column("time", sa.DateTime(timezone=True)),
    sa.Column("parameter", sa.String(64)),
    sa.Column("value", sa.Float),
    sa.Column("unit", sa.String(32)),
    sa.Column("quality", sa.String(16)),
)


class Observations:
    def __init__(self, store: FeatureStore) -> None:
        self.store = store

    def add(
        self,
        database: str,
        name: str,
        rows: Iterable[dict[str, Any]],
        *,
        station_property: str | None = None,
        chunk: int = CHUNK,
    ) -> int:
        """Store observation rows (keys of COLUMNS); `station` is a feature id, or the value of
        `station_property` of a station. All or nothing; returns how many rows were written."""
        spec = self.store.get(database, name)
        stations = self._stations(database, name, station_property)
        written = 0
        stream = iter(rows)
        with self.store.engine.begin() as connection:
            while batch := list(islice(stream, chunk)):
                records = [_record(spec.id, row, stations, written + i + 1) for i, row in enumerate(batch)]
                keys = {(r["station"], r["parameter"], r["time"]) for r in records}
                if len(keys) < len(records):
                    raise InputError("a station, parameter and time come twice in the same data")
                for station, parameter, moment in keys:  # replace what was stored for the same keys
                    connection.execute(
                        _TABLE.delete().where(
                            _TABLE.c.collection == spec.id,
                            _TABLE.c.station == station,
                            _TABLE.c.parameter == parameter,
                            _TABLE.c.time == moment,
                        )
                    )
                connection.execute(_TABLE.insert(), records)
                written += len(records)
        return written

    def import_csv(self, database: str, name: str, path: Path, station_property: str | None = None) -> int:
        with Path(path).open(newline="", encoding="utf-8-sig") as file:
            reader = csv.DictReader(file)
            missing = [
                c for c in ("station", "time", "parameter", "value") if c not in (reader.fieldnames or [])
            ]
            if missing:
                raise InputError(
                    f"{path}: missing columns {', '.join(missing)}; columns: {', '.join(COLUMNS)}"
                )
            return self.add(database, name, reader, station_property=station_property)

    def parameters(self, database: str, name: str, station: int) -> list[dict[str, Any]]:
        """What is measured at a station: parameter, unit, count, first and last time."""
        spec = self.store.get(database, name)
        query = (
            sa.select(
                _TABLE.c.parameter,
                sa.func.max(_TABLE.c.unit).label("unit"),
                sa.func.count().label("count"),
                sa.func.min(_TABLE.c.time).label("first"),
                sa.func.max(_TABLE.c.time).label("last"),
            )
            .where(_TABLE.c.collection == spec.id, _TABLE.c.station == station)
            .group_by(_TABLE.c.parameter)
        )
        with self.store.engine.connect() as connection:
            return [
                {**row._mapping, "first": as_utc(row.first), "last": as_utc(row.last)}
                for row in connection.execute(query.order_by(_TABLE.c.parameter))
            ]

    def series(
        self, database: str, name: str, station: int, parameter: str, datetime_range: str | None = None
    ) -> list[dict[str, Any]]:
        """A station's time series of one parameter, in time order (within `datetime_range`, an OGC
        `datetime` instant or interval)."""
        spec = self.store.get(database, name)
        self.store.feature(database, name, station)
        query = sa.select(_TABLE.c.time, _TABLE.c.value, _TABLE.c.unit, _TABLE.c.quality).where(
            _TABLE.c.collection == spec.id, _TABLE.c.station == station, _TABLE.c.parameter == parameter
        )
        if datetime_range:
            start, end = parse_datetime(datetime_range)
            query = query.where(
                *(
                    c
                    for c in (
                        _TABLE.c.time >= start if start else None,
                        _TABLE.c.time <= end if end else None,
                    )
                    if c is not None
                )
            )
        with self.store.engine.connect() as connection:
            rows = connection.execute(query.order_by(_TABLE.c.time)).all()
        if not rows and parameter not in {p["parameter"] for p in self.parameters(database, name, station)}:
            known = ", ".join(p["parameter"] for p in self.parameters(database, name, station)) or "none"
            raise InputError(f"no parameter {parameter!r} at station {station}; parameters: {known}")
        return [
            {"time": as_utc(r.time), "value": r.value, "unit": r.unit, "quality": r.quality} for r in rows
        ]

    def drop(self, collection_id: str) -> None:
        with self.store.engine.begin() as connection:
            connection.execute(_TABLE.delete().where(_TABLE.c.collection == collection_id))

    def move(self, old_id: str, new_id: str) -> None:
        """Keep a renamed station collection's observations."""
        with self.store.engine.begin() as connection:
            connection.execute(_TABLE.update().where(_TABLE.c.collection == old_id).values(collection=new_id))

    def _stations(self, database: str, name: str, station_property: str | None) -> dict[str, int]:
        """Station names (or ids as text) to feature ids."""
        spec = self.store.get(database, name)
        if station_property and station_property not in spec.properties:
            raise InputError(
                f"unknown station property {station_property!r}; properties: "
                f"{', '.join(spec.properties) or 'none'}"
            )
        chosen = [station_property] if station_property else []
        return {
            str(f["properties"][station_property] if station_property else f["id"]): f["id"]
            for f in self.store.query(database, name, properties=chosen)
        }


def _record(collection: str, row: dict[str, Any], stations: dict[str, int], line: int) -> dict[str, Any]:
    station = stations.get(str(row.get("station", "")).strip())
    if station is None:
        raise InputError(f"row {line}: unknown station {row.get('station')!r}")
    try:
        moment = parse_instant(str(row.get("time")).strip())
    except InputError:
        raise InputError(f"row {line}: time {row.get('time')!r} is not an ISO 8601 time") from None
    text = str(row.get("value") if row.get("value") is not None else "").strip()
    try:
        value = float(text) if text else None
    except ValueError:
        raise InputError(f"row {line}: value {text!r} is not a number") from None
    if value is not None and not math.isfinite(value):
        value = None
    parameter = str(row.get("parameter") or "").strip()
    if not parameter or len(parameter) > 64:
        raise InputError(f"row {line}: give a parameter name (at most 64 characters)")
    return {
        "collection": collection,
        "station": station,
        "time": moment,
        "parameter": parameter,
        "value": value,
        "unit": str(row.get("unit") or "").strip()[:32],
        "quality": str(row.get("quality") or "").strip()[:16],
    }
