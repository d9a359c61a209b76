"""CQL2 filters (text or JSON) as SQL conditions on a collection's table.

`ogc.params.parse_filter` parses and validates both encodings (with the `cql2` library); this module walks
the resulting CQL2 JSON tree and builds SQLAlchemy expressions. Property names are checked against the
collection's queryables and literal types against the property types, so a filter never becomes SQL text and
a wrong one is an InputError that says what is wrong, not a database error. The compiler recurses once per
level of the tree; `parse_filter` has refused trees deeper than `MAX_FILTER_DEPTH` (32) before they get here.

Supported: and, or, not; =, <>, <, <=, >, >=, like, between, in, isNull; casei; + - * /; the spatial
predicates s_intersects, s_disjoint, s_contains, s_within, s_touches, s_crosses, s_overlaps, s_equals (geometry
literals in CRS84 unless a filter-crs is given); the temporal predicates t_after, t_before, t_during,
t_equals, t_intersects, t_disjoint on instants (a datetime property against a timestamp, a date or an interval).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import shapely
import sqlalchemy as sa
from pyproj import Transformer
from shapely.geometry import box, shape
from shapely.geometry.base import BaseGeometry

from cubeport.errors import InputError
from cubeport.features.schema import CollectionSpec
from cubeport.ogc.params import parse_instant

Filter = dict[str, Any]  # CQL2 JSON
SPATIAL = {
    f"s_{p}": f"ST_{p.capitalize()}"
    for p in ("intersects", "disjoint", "contains", "within", "touches", "crosses", "overlaps", "equals")
}
COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "=": lambda a, b: a == b,
    "<>": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / sa.func.nullif(b, 0),
}  # NULL, not a database error, for a division by zero
_KIND = {
    "string": "string",
    "integer": "number",
    "number": "number",
    "boolean": "boolean",
    "datetime": "datetime",
    "json": "json",
}


GeometryLiteral = Callable[[BaseGeometry], Any]  # a shapely geometry (in the collection's CRS) as SQL


class FilterCompiler:
    """Turns CQL2 JSON into a SQLAlchemy condition on one collection's table.

    `columns` maps queryable names to columns; `geometry_literal` makes a backend's SQL geometry value;
    `filter_crs` is the CRS of geometry literals (default CRS84)."""

    def __init__(
        self,
        spec: CollectionSpec,
        columns: dict[str, Any],
        geometry: Any,
        geometry_literal: GeometryLiteral,
        filter_crs: int = 4326,
    ) -> None:
        self.spec, self.columns, self.geometry, self.geometry_literal = (
            spec,
            columns,
            geometry,
            geometry_literal,
        )
        self.kinds = {"id": "number", **{p: _KIND[k] for p, k in spec.properties.items()}}
        self.to_storage = (
            None
            if filter_crs == spec.crs
            else Transformer.from_crs(filter_crs, spec.crs, always_xy=True).transform
        )

    def condition(self, node: Filter) -> Any:
        """A boolean SQL expression for a CQL2 JSON boolean expression."""
        if isinstance(node, bool):
            return sa.true() if node else sa.false()
        op, args = _op(node)
        if op in ("and", "or"):
            return (sa.and_ if op == "and" else sa.or_)(*(self.condition(a) for a in args))
        if op == "not":
            return sa.not_(self.condition(args[0]))
        if op in COMPARISONS:
            (left, kind), (right, other) = self.value(args[0]), self.value(args[1])
            self._same(op, kind, other)
            result = COMPARISONS[op](left, right)
            return sa.literal(result) if isinstance(result, bool) else result
        if op == "like":
            (left, kind), (pattern, other) = self.value(args[0]), self.value(args[1])
            self._same(op, kind, other, "string")
            return _sql(left).like(pattern)
        if op == "between":
            (value, kind), (low, k1), (high, k2) = (self.value(a) for a in args)
            self._same(op, kind, k1, "number")
            self._same(op, kind, k2, "number")
            return sa.between(value, low, high)
        if op == "in":
            value, kind = self.value(args[0])
            options = [self.value(a) for a in args[1]]
            for _, other in options:
                self._same(op, kind, other)
            return _sql(value).in_([o for o, _ in options])
        if op == "isnull":
            value, _ = self.value(args[0])
            return _sql(value).is_(None)
        if op in SPATIAL:
            return self._spatial(op, args)
        if op.startswith("t_"):
            return self._temporal(op, args)
        raise InputError(
            f"filter: {op!r} is not supported here; supported: and, or, not, comparisons, like, "
            f"between, in, isNull, casei, + - * /, {', '.join(SPATIAL)}, t_after, t_before, t_during, "
            "t_equals, t_intersects, t_disjoint"
        )

    def value(self, node: Any) -> tuple[Any, str]:
        """A scalar expression and its kind (string, number, boolean, datetime, geometry)."""
        if isinstance(node, bool):
            return node, "boolean"
        if isinstance(node, (int, float)):
            return node, "number"
        if isinstance(node, str):
            return node, "string"
        if isinstance(node, dict) and "property" in node:
            name = node["property"]
            if name == "geometry":
                return self.geometry, "geometry"
            if name not in self.kinds:
                raise InputError(
                    f"filter: unknown property {name!r}; queryables: {', '.join(['geometry', *self.kinds])}"
                )
            return self.columns[name], self.kinds[name]
        if isinstance(node, dict) and ("timestamp" in node or "date" in node):
            return parse_instant(node.get("timestamp") or node["date"]), "datetime"
        if isinstance(node, dict) and ("type" in node or "bbox" in node):
            return self._geometry(node), "geometry"
        if isinstance(node, dict) and "op" in node:
            op, args = _op(node)
            if op == "casei":
                value, kind = self.value(args[0])
                self._same(op, kind, "string", "string")
                return sa.func.lower(value), "string"
            if op in ARITHMETIC:
                (left, kind), (right, other) = self.value(args[0]), self.value(args[1])
                self._same(op, kind, other, "number")
                return ARITHMETIC[op](left, right), "number"
            if op in COMPARISONS or op in ("and", "or", "not", "like", "between", "in", "isnull"):
                return self.condition(node), "boolean"
        raise InputError(f"filter: cannot use {json.dumps(node)[:200]} as a value here")

    def _geometry(self, node: dict[str, Any]) -> BaseGeometry:
        try:
            geometry = box(*node["bbox"][:2], *node["bbox"][-2:]) if "bbox" in node else shape(node)
        except (TypeError, ValueError, KeyError, IndexError, shapely.errors.ShapelyError) as exc:
            raise InputError(f"filter: invalid geometry literal ({exc})") from None
        if geometry.is_empty or not geometry.is_valid:  # GEOS would fail on it inside the query
            raise InputError(f"filter: invalid geometry literal: {shapely.is_valid_reason(geometry)}")
        if self.to_storage is not None:
            # shapely-stubs type only the interleaved form; with interleaved=False the function takes x and y
            geometry = shapely.transform(geometry, self.to_storage, interleaved=False)  # type: ignore[arg-type]
        return geometry

    def _spatial(self, op: str, args: list[Any]) -> Any:
        (left, kind), (right, other) = self.value(args[0]), self.value(args[1])
        if kind != "geometry" or other != "geometry":
            raise InputError(
                f"filter: {op} compares geometries, e.g. {op.upper()}(geometry, POINT(24.9 60.2))"
            )
        left, right = (self.geometry_literal(v) if isinstance(v, BaseGeometry) else v for v in (left, right))
        return getattr(sa.func, SPATIAL[op])(left, right)

    def _temporal(self, op: str, args: list[Any]) -> Any:
        value, kind = self.value(args[0])
        if kind != "datetime":
            raise InputError(
                f"filter: {op} needs a datetime property, e.g. {op.upper()}(time, TIMESTAMP(...)); "
                f"datetime properties: {', '.join(k for k, v in self.kinds.items() if v == 'datetime')}"
            )
        other = args[1]
        if isinstance(other, dict) and "interval" in other:
            start, end = (None if v in ("..", None) else parse_instant(v) for v in other["interval"])
        else:
            start = end = self.value(other)[0]
        within = sa.and_(
            value >= start if start is not None else sa.true(), value <= end if end is not None else sa.true()
        )
        conditions: dict[str, Callable[[], Any]] = {
            "t_after": lambda: value > end if end is not None else sa.false(),
            "t_before": lambda: value < start if start is not None else sa.false(),
            "t_during": lambda: within,
            "t_intersects": lambda: within,
            "t_equals": lambda: within,
            "t_disjoint": lambda: sa.not_(within),
        }
        if op not in conditions:
            raise InputError(f"filter: {op} is not supported on instants; use {', '.join(conditions)}")
        return conditions[op]()

    def _same(self, op: str, kind: str, other: str, required: str | None = None) -> None:
        if kind != other or (required and kind != required):
            raise InputError(
                f"filter: {op} compares a {kind} with a {other}"
                + (f"; it needs {required}s" if required else "; give values of the property's type")
            )


def _sql(value: Any) -> Any:
    """A column expression as is, a Python literal as an SQL literal (so both have .like, .in_, .is_)."""
    return value if isinstance(value, sa.ColumnElement) else sa.literal(value)


def _op(node: Any) -> tuple[str, list[Any]]:
    if not isinstance(node, dict) or "op" not in node:
        raise InputError(f"filter: expected a boolean expression, not {json.dumps(node)[:200]}")
    return str(node["op"]).lower(), list(node.get("args", []))
