"""What a feature collection is: its names (checked, so that they can be SQL identifiers), its typed
properties, its CRS and geometry type, and the metadata users read (title, licence, provenance, ...)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, TypeGuard
from urllib.parse import urlsplit

from pyproj import CRS
from pyproj.exceptions import CRSError

from cubeport.errors import InputError

PropertyType = Literal["string", "integer", "number", "boolean", "datetime", "json"]
PROPERTY_TYPES: tuple[str, ...] = ("string", "integer", "number", "boolean", "datetime", "json")
METADATA = ("title", "description", "licence", "keywords", "provenance", "metadata_url", "time_property")
GEOMETRY_TYPES = (
    "Geometry",
    "Point",
    "LineString",
    "Polygon",
    "MultiPoint",
    "MultiLineString",
    "MultiPolygon",
)
RESERVED = frozenset({"id", "geometry", "fid", "bbox", "minx", "maxx", "miny", "maxy"})
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,47}$")


def check_name(name: str, what: str) -> str:
    """A database, collection or property name: lower-case letters, digits, hyphens and single underscores,
    from a letter, at most 48 characters (names become quoted SQL identifiers; nothing else ever does)."""
    if not isinstance(name, str) or not _NAME.match(name) or "__" in name:
        raise InputError(
            f"{what} name {name!r} is not valid: lower-case letters, digits, hyphens and single "
            "underscores, starting with a letter, at most 48 characters"
        )
    return name


def check_properties(properties: Mapping[str, str]) -> dict[str, PropertyType]:
    checked: dict[str, PropertyType] = {}
    for name, kind in properties.items():
        check_name(name, "property")
        if name in RESERVED:
            raise InputError(f"property name {name!r} is reserved; reserved: {', '.join(sorted(RESERVED))}")
        if not _is_property_type(kind):
            raise InputError(f"property {name!r} has type {kind!r}; types: {', '.join(PROPERTY_TYPES)}")
        checked[name] = kind
    return checked


def _is_property_type(kind: str) -> TypeGuard[PropertyType]:
    return kind in PROPERTY_TYPES


def check_crs(crs: int | str) -> int:
    """The EPSG code of a CRS given as a code or a string such as 'EPSG:3067'."""
    try:
        code = CRS.from_user_input(crs).to_epsg()
    except CRSError:
        code = None
    if code is None:
        raise InputError(f"CRS {crs!r} is not an EPSG CRS; give e.g. 4326 or 'EPSG:3067'")
    return int(code)


@dataclass(frozen=True)
class CollectionSpec:
    """A collection as users define it and read about it."""

    database: str
    name: str
    properties: dict[str, PropertyType] = field(default_factory=dict)
    crs: int = 4326
    geometry_type: str = "Geometry"
    title: str = ""
    description: str = ""
    licence: str = ""
    keywords: list[str] = field(default_factory=list)
    provenance: str = ""
    metadata_url: str = ""  # an ISO 19139 or STAC record describing the collection
    owner: str | None = None  # the user, group or project that owns the database
    time_property: str = ""  # the datetime property that OGC API `datetime` queries filter on

    def checked(self) -> CollectionSpec:
        check_name(self.database, "database")
        check_name(self.name, "collection")
        if self.geometry_type not in GEOMETRY_TYPES:
            raise InputError(f"geometry type {self.geometry_type!r}; types: {', '.join(GEOMETRY_TYPES)}")
        properties = check_properties(self.properties)
        if self.metadata_url and urlsplit(self.metadata_url).scheme not in ("http", "https"):
            raise InputError(
                f"metadata_url {self.metadata_url!r}: give the http(s) URL of an ISO or STAC record"
            )
        if not isinstance(self.keywords, list) or not all(isinstance(k, str) for k in self.keywords):
            raise InputError("keywords: give a list of words")
        times = [p for p, kind in properties.items() if kind == "datetime"]
        if self.time_property and self.time_property not in times:
            raise InputError(
                f"time property {self.time_property!r} is not a datetime property; "
                f"datetime properties: {', '.join(times) or 'none'}"
            )
        return CollectionSpec(
            **{
                **asdict(self),
                "properties": properties,
                "crs": check_crs(self.crs),
                "time_property": self.time_property or (times[0] if times else ""),
            }
        )

    @property
    def id(self) -> str:
        """The collection's id across databases (OGC API collection id, access-control resource id)."""
        return f"{self.database}.{self.name}"

    def queryables(self) -> dict[str, Any]:
        """What a filter may name, as the JSON Schema of OGC API Features Part 3."""
        types = {
            "string": {"type": "string"},
            "integer": {"type": "integer"},
            "number": {"type": "number"},
            "boolean": {"type": "boolean"},
            "datetime": {"type": "string", "format": "date-time"},
            "json": {"type": "object"},
        }
        geometry = {"Geometry": "geometry-any"}.get(
            self.geometry_type, f"geometry-{self.geometry_type.lower()}"
        )
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "title": self.title or self.name,
            "additionalProperties": False,
            "properties": {
                "geometry": {"format": geometry, "title": "geometry"},
                "id": {"type": "integer", "title": "feature id"},
                **{p: {**types[k], "title": p} for p, k in self.properties.items()},
            },
        }

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, **asdict(self)}
