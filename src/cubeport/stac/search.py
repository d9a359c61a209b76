"""STAC item search over the local items: bbox, intersects, datetime, ids, collections, CQL2 filter (text or
JSON, evaluated on each item by the `cql2` library), sortby, fields, limit and token paging; and which sources
(this server, registered remote STAC APIs) a search asks.

The database narrows the candidates (collection, id, bbox, time); geometry, CQL2 and sorting run on the
items themselves, which is enough for catalogues of products (thousands of items per cube, not millions);
the request's time budget is checked as they go.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import cql2
import shapely
from shapely.geometry import box, shape

from cubeport import deadline
from cubeport.errors import InputError
from cubeport.ogc.params import BBox, Interval, parse_bbox, parse_cql2, parse_datetime, parse_instant
from cubeport.stac.federation import LOCAL

MAX_LIMIT = 10_000  # larger limits are lowered to it, as the STAC API allows
BUDGET_EVERY = 500  # items between checks of the time budget (some 50 ms with a geometry and a filter)
TOP_LEVEL = ("id", "collection", "geometry", "bbox", "type")
SOURCES_HELP = (
    "comma-separated: 'local' (this server's items, the default), names of registered sources "
    "(GET /stac/sources), or '*' for all of them"
)


@dataclass
class SearchRequest:
    """One search, from GET query parameters (`from_query`) or a POST body (`from_body`). A search of other
    `sources` than this server's is federated; its `token` is then the federation's."""

    collections: list[str] | None = None
    ids: list[str] | None = None
    bbox: BBox | None = None
    intersects: dict[str, Any] | None = None
    datetime: str | None = None
    filter: str | dict[str, Any] | None = None
    filter_lang: str | None = None
    sortby: list[tuple[str, bool]] = field(default_factory=list)  # (field, ascending)
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    limit: int = 10
    token: str | None = None
    sources: list[str] = field(default_factory=lambda: [LOCAL])

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> SearchRequest:
        if not isinstance(body, dict):
            raise InputError("the search body must be a JSON object")
        unknown = set(body) - {
            "collections",
            "ids",
            "bbox",
            "intersects",
            "datetime",
            "filter",
            "filter-lang",
            "filter-crs",
            "sortby",
            "fields",
            "limit",
            "token",
            "sources",
            "conf",
        }
        if unknown:
            raise InputError(f"unknown search member(s) {', '.join(sorted(unknown))}")
        sortby = body.get("sortby") or []
        if not isinstance(sortby, list) or not all(isinstance(s, dict) and "field" in s for s in sortby):
            raise InputError('sortby: give a list of {"field": ..., "direction": "asc"|"desc"}')
        fields = body.get("fields") or {}
        if not isinstance(fields, dict):
            raise InputError('fields: give {"include": [...], "exclude": [...]}')
        sources = body.get("sources")
        if sources is not None and (
            not isinstance(sources, list) or not all(isinstance(s, str) for s in sources)
        ):
            raise InputError(f"sources: give a list of names ({SOURCES_HELP})")
        if not isinstance(body.get("token"), (str, type(None))):
            raise InputError("token: give the string of a 'next' link")
        return cls(
            collections=_strings(body.get("collections"), "collections"),
            ids=_strings(body.get("ids"), "ids"),
            bbox=_bbox_list(body["bbox"]) if body.get("bbox") is not None else None,
            intersects=body.get("intersects"),
            datetime=body.get("datetime"),
            filter=body.get("filter"),
            filter_lang=body.get("filter-lang"),
            sortby=[(s["field"], str(s.get("direction", "asc")).lower() != "desc") for s in sortby],
            include=_strings(fields.get("include"), "fields.include") or [],
            exclude=_strings(fields.get("exclude"), "fields.exclude") or [],
            limit=check_limit(body.get("limit", 10)),
            token=body.get("token"),
            sources=sources or [LOCAL],
        ).checked()

    @classmethod
    def from_query(
        cls,
        *,
        collections: str | None = None,
        ids: str | None = None,
        bbox: str | None = None,
        intersects: str | None = None,
        datetime: str | None = None,
        filter: str | None = None,
        filter_lang: str | None = None,
        sortby: str | None = None,
        fields: str | None = None,
        limit: int = 10,
        token: str | None = None,
        sources: str | None = None,
    ) -> SearchRequest:
        try:
            geometry = json.loads(intersects) if intersects else None
        except json.JSONDecodeError as exc:
            raise InputError(f"intersects is not GeoJSON: {exc}") from None
        names = _split(fields)
        return cls(
            collections=_split(collections) or None,
            ids=_split(ids) or None,
            bbox=parse_bbox(bbox) if bbox else None,
            intersects=geometry,
            datetime=datetime,
            filter=filter,
            filter_lang=filter_lang,
            sortby=[(s.lstrip("+-"), not s.startswith("-")) for s in _split(sortby)],
            include=[f.lstrip("+") for f in names if not f.startswith("-")],
            exclude=[f[1:] for f in names if f.startswith("-")],
            limit=check_limit(limit),
            token=token,
            sources=_split(sources) or [LOCAL],
        ).checked()

    @property
    def federated(self) -> bool:
        """Whether the search asks other sources than this server's items."""
        return self.sources != [LOCAL]

    def checked(self) -> SearchRequest:
        """Parse what can be wrong once, so the search itself cannot fail on the caller's input."""
        if self.bbox and self.intersects:
            raise InputError("give bbox or intersects, not both")
        self._geometry = (
            _geometry(self.intersects) if self.intersects else (box(*self.bbox) if self.bbox else None)
        )
        self._interval: Interval = (
            parse_datetime(self.datetime, strict=True) if self.datetime else (None, None)
        )
        self._filter: cql2.Expr | None = (
            parse_cql2(self.filter, self.filter_lang) if self.filter not in (None, "") else None
        )
        self._offset = 0 if self.federated else _offset(self.token)
        return self

    @property
    def end(self) -> dt.datetime | None:
        return self._interval[1]

    @property
    def bounds(self) -> BBox | None:
        """The bbox of `bbox` or `intersects`, which the database can narrow by."""
        return None if self._geometry is None else tuple(self._geometry.bounds)

    def to_body(self) -> dict[str, Any]:
        """The search as a STAC POST body (what a remote source is sent), without limit and token."""
        body: dict[str, Any] = {
            "collections": self.collections,
            "ids": self.ids,
            "bbox": list(self.bbox) if self.bbox else None,
            "intersects": self.intersects,
            "datetime": self.datetime,
            "filter": self.filter,
        }
        if self.filter not in (None, ""):
            body["filter-lang"] = self.filter_lang or (
                "cql2-json" if isinstance(self.filter, dict) else "cql2-text"
            )
        if self.sortby:
            body["sortby"] = [{"field": f, "direction": "asc" if up else "desc"} for f, up in self.sortby]
        if self.include or self.exclude:
            body["fields"] = {"include": self.include, "exclude": self.exclude}
        return {k: v for k, v in body.items() if v not in (None, "")}

    def matches(self, item: dict[str, Any]) -> bool:
        if self._geometry is not None and not shape(item["geometry"]).intersects(self._geometry):
            return False
        if self.datetime and not _in_interval(item["properties"], *self._interval):
            return False
        if self._filter is None:
            return True
        try:
            return bool(self._filter.matches(item))
        except Exception:  # noqa: BLE001 (cql2 raises a bare Exception when an item cannot be compared)
            # A property the item lacks, or a value of another type, leaves the predicate unknown: as in SQL,
            # unknown is not true, so the item is not selected (and the request is no 500).
            return False

    def page(
        self,
        items: list[dict[str, Any]],
        present: Callable[[dict[str, Any]], dict[str, Any]],
        offset: int | None = None,
        limit: int | None = None,
    ) -> tuple[list[dict[str, Any]], int | None, int]:
        """The requested page (or the one at `offset`, of `limit` items) of the matching items, sorted:
        (items as `present` makes them, with fields applied; next offset or None; number matched)."""
        found = [i for part in _budgeted(items) for i in part if self.matches(i)]
        for name, ascending in reversed(self.sortby):  # stable sorts, last key first
            found.sort(key=_sort_by(name), reverse=not ascending)
        start = self._offset if offset is None else offset
        size = limit or self.limit
        chosen = found[start : start + size]
        following = start + size if start + size < len(found) else None
        return [self.project(present(i)) for part in _budgeted(chosen) for i in part], following, len(found)

    def project(self, item: dict[str, Any]) -> dict[str, Any]:
        """The fields extension: only `include` (if given, with what every item needs), then without `exclude`."""
        if self.include:
            kept: dict[str, Any] = {
                k: item[k] for k in ("type", "stac_version", "id", "collection", "links") if k in item
            }
            for path in self.include:
                _copy_path(item, kept, _path(path))
            item = kept
        if self.exclude:
            item = json.loads(json.dumps(item))
            for path in self.exclude:
                _drop_path(item, _path(path))
        return item


def _budgeted(items: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """`items` a few hundred at a time, the request's time budget (`deadline`) checked before each: geometry,
    CQL2 and presentation run on every item in Python."""
    for start in range(0, len(items), BUDGET_EVERY):
        deadline.check("searching the items")
        yield items[start : start + BUDGET_EVERY]


def token_for(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        kind, value = text.split(":", 1)
        if kind != "offset" or int(value) < 0:
            raise ValueError
        return int(value)
    except (ValueError, UnicodeDecodeError):
        raise InputError(f"token {token!r} is not one this server gave; follow the 'next' link") from None


def check_limit(limit: Any) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InputError(f"limit must be a positive integer (at most {MAX_LIMIT:,} are returned)")
    return min(limit, MAX_LIMIT)


def _bbox_list(value: Any) -> BBox:
    if not isinstance(value, list):
        raise InputError(f"bbox {value!r}: in a POST body give a list of 4 (or 6) numbers")
    return parse_bbox(value)


def _geometry(data: Any) -> Any:
    try:
        geometry = shape(data)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, shapely.errors.ShapelyError) as exc:
        raise InputError(f"intersects is not a GeoJSON geometry: {exc}") from None
    if geometry.is_empty or not geometry.is_valid:
        raise InputError("intersects: the geometry is empty or not valid")
    return geometry


def _in_interval(properties: dict[str, Any], start: dt.datetime | None, end: dt.datetime | None) -> bool:
    first = properties.get("start_datetime") or properties.get("datetime")
    last = properties.get("end_datetime") or properties.get("datetime")
    if first is None or last is None:
        return False
    return (end is None or parse_instant(first) <= end) and (start is None or parse_instant(last) >= start)


def _path(name: str) -> list[str]:
    parts = name.split(".")
    return (
        parts
        if parts[0] in (*TOP_LEVEL, "properties", "assets", "links", "stac_version", "stac_extensions")
        else ["properties", *parts]
    )


def _field(item: dict[str, Any], name: str) -> Any:
    value: Any = item
    for part in _path(name):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _sort_by(name: str) -> Callable[[dict[str, Any]], tuple[int, Any]]:
    return lambda item: _sort_key(_field(item, name))


def _sort_key(value: Any) -> tuple[int, Any]:
    """Missing values last; numbers, then text (an ISO time sorts as text)."""
    if value is None:
        return (2, "")
    return (0, value) if isinstance(value, (int, float)) and not isinstance(value, bool) else (1, str(value))


def _copy_path(source: dict[str, Any], target: dict[str, Any], path: list[str]) -> None:
    head, rest = path[0], path[1:]
    if head not in source:
        return
    if not rest or not isinstance(source[head], dict):
        target[head] = source[head]
        return
    _copy_path(source[head], target.setdefault(head, {}), rest)


def _drop_path(item: dict[str, Any], path: list[str]) -> None:
    for part in path[:-1]:
        item = item.get(part)  # type: ignore[assignment]
        if not isinstance(item, dict):
            return
    item.pop(path[-1], None)


def _split(text: str | None) -> list[str]:
    return [p.strip() for p in (text or "").split(",") if p.strip()]


def _strings(value: Any, what: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InputError(f"{what}: give a list of strings")
    return value
