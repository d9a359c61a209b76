"""The SQLite backend of the feature store, the embedded default: geometry as WKB, bounding boxes in an
R*Tree virtual table per collection, exact tests by the ST_ functions `db.sqlite_spatial` registers on
every connection (from shapely)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import shapely
import sqlalchemy as sa
from shapely.geometry.base import BaseGeometry

from cubeport.features.schema import CollectionSpec
from cubeport.features.store import FeatureStore, Selection, bbox_in


class SqliteFeatureStore(FeatureStore):
    """WKB blobs; bounding boxes in an R*Tree virtual table `{table}_rtree`; exact tests by the spatial
    functions `db.sqlite_spatial` registers."""

    def _geometry_type(self, spec: CollectionSpec) -> Any:
        return sa.LargeBinary

    @staticmethod
    def _rtree(name: str) -> sa.TableClause:
        return sa.table(f"{name}_rtree", *(sa.column(c) for c in ("id", "minx", "maxx", "miny", "maxy")))

    def _create_table(self, connection: sa.Connection, spec: CollectionSpec, data: sa.Table) -> None:
        data.create(connection)  # the names are checked identifiers (schema.check_name)
        connection.exec_driver_sql(
            f'CREATE VIRTUAL TABLE "{data.name}_rtree" USING rtree(id, minx, maxx, miny, maxy)'
        )

    def _drop_table(self, connection: sa.Connection, spec: CollectionSpec, data: sa.Table) -> None:
        connection.exec_driver_sql(f'DROP TABLE "{data.name}_rtree"')
        data.drop(connection)

    def _renamed(self, connection: sa.Connection, old: str, new: str) -> None:
        connection.exec_driver_sql(f'ALTER TABLE "{old}_rtree" RENAME TO "{new}_rtree"')

    def _copied(self, connection: sa.Connection, source: sa.Table, target: sa.Table) -> None:
        rtree = self._rtree(source.name)
        connection.execute(
            self._rtree(target.name).insert().from_select(list(rtree.c.keys()), sa.select(*rtree.c))
        )

    def _insert_rows(
        self, connection: sa.Connection, spec: CollectionSpec, data: sa.Table, rows: list[dict[str, Any]]
    ) -> None:
        boxes = [
            {"id": r["id"], **dict(zip(("minx", "miny", "maxx", "maxy"), r["geometry"].bounds, strict=False))}
            for r in rows
        ]
        connection.execute(self._rtree(data.name).insert(), boxes)
        connection.execute(data.insert(), [{**r, "geometry": shapely.to_wkb(r["geometry"])} for r in rows])

    def _delete_ids(self, connection: sa.Connection, data: sa.Table, ids: sa.Select[Any]) -> int:
        chosen = [row[0] for row in connection.execute(ids)]
        rtree = self._rtree(data.name)
        for start in range(0, len(chosen), 10_000):  # SQLite caps the parameters of a statement
            part = chosen[start : start + 10_000]
            connection.execute(rtree.delete().where(rtree.c.id.in_(part)))
            connection.execute(data.delete().where(data.c.id.in_(part)))
        return len(chosen)

    def _wkb(self, data: sa.Table) -> Any:
        return data.c.geometry.label("wkb")

    def _geometry_literal(self, spec: CollectionSpec, geometry: BaseGeometry) -> Any:
        return sa.literal(shapely.to_wkb(geometry), sa.LargeBinary)

    def _in_area(self, spec: CollectionSpec, data: sa.Table, area: BaseGeometry, exact: bool) -> list[Any]:
        rtree = self._rtree(data.name)
        west, south, east, north = area.bounds
        candidates = data.c.id.in_(
            sa.select(rtree.c.id).where(
                rtree.c.minx <= east, rtree.c.maxx >= west, rtree.c.miny <= north, rtree.c.maxy >= south
            )
        )
        return (
            [candidates, sa.func.ST_Intersects(data.c.geometry, self._geometry_literal(spec, area))]
            if exact
            else [candidates]
        )

    def _estimate(
        self, connection: sa.Connection, spec: CollectionSpec, data: sa.Table, selection: Selection
    ) -> int:
        conditions = self._where(spec, data, replace(selection, bbox=None))
        if selection.bbox is not None:
            conditions += self._in_area(spec, data, bbox_in(spec, selection.bbox, selection.bbox_crs), False)
        return int(
            connection.execute(sa.select(sa.func.count()).select_from(data).where(*conditions)).scalar_one()
        )
