"""OGC API request parameters as plain values, with no HTTP: CQL2 filters (text and JSON), bbox, datetime
instants and intervals, CRS URIs, and the conformance classes the API documents list.

Features, STAC, EDR and tiles all parse here, so a parameter means the same everywhere and a wrong one fails
with the same message (an InputError, which the HTTP edge answers with 400)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from typing import Any

import cql2

from cubeport import nesting
from cubeport.errors import InputError

BBox = tuple[float, float, float, float]  # west, south, east, north
Interval = tuple[datetime | None, datetime | None]  # None: an open end

# -- CQL2 -------------------------------------------------------------------------------------------------------
CQL2_LANGUAGES = ("cql2-text", "cql2-json")
MAX_FILTER = 20_000  # characters of a filter given as text (CQL2 text or JSON text)
# Levels of a filter's CQL2 JSON (objects and arrays; a NOT or an AND is two): real filters nest under 20 (ten
# boolean levels around a MultiPolygon literal). The cql2 library recurses per level: its parser overflows the
# stack past about a thousand, and its validator's time and memory grow with the levels (14 nested NOTs, 31
# levels: 0.4 s and 150 MB; 400 NOTs, an 8 KB filter: 53 s and 16 GB).
MAX_FILTER_DEPTH = 32
_CQL2_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")  # strings and quoted identifiers
_CQL2_TOKENS = re.compile(r"\(|\)|\bNOT\b|-|[^\s()-]+", re.IGNORECASE)


def parse_cql2(text: str | dict[str, Any], lang: str | None = None) -> cql2.Expr:
    """A CQL2 filter, checked against the CQL2 schema. The one entry point every filter goes through.

    JSON when `lang` says cql2-json, when `text` is an already parsed object, or when it starts with '{'
    (never valid CQL2 text); CQL2 text otherwise. Size and nesting are checked before the cql2 library (or
    `json`) sees the filter, and the parsed tree's depth again before it is validated: text at most `MAX_FILTER`
    characters, an object at most as long as compact JSON (measured in the walk that measures its depth, which
    stops past either limit, so a 12 MB object is refused as quickly as a small one)."""
    if lang not in (None, *CQL2_LANGUAGES):
        raise InputError(f"filter-lang {lang!r}: use one of {', '.join(CQL2_LANGUAGES)}")
    if isinstance(text, dict):
        parsed = text
        depth, size = nesting.value_extent(parsed, MAX_FILTER_DEPTH, MAX_FILTER)
        _check_depth(depth)
        _check_size(size, " as CQL2 JSON")
        return _validated(lambda: cql2.Expr(parsed), "cql2-json")
    if not isinstance(text, str):
        raise InputError("filter: give CQL2 text or a CQL2 JSON object")
    _check_size(len(text), "")
    if lang == "cql2-json" or text.lstrip().startswith("{"):
        _check_depth(nesting.text_depth(text))
        return _validated(lambda: cql2.Expr(json.loads(text)), "cql2-json")
    _check_depth(_text_nesting(text))
    return _validated(lambda: _parse_text(text), "cql2-text")


def _parse_text(text: str) -> cql2.Expr:
    expression = cql2.parse_text(text)
    # a chain such as 1 + 1 + 1 ... nests without parentheses: measure the tree before it is validated
    _check_depth(nesting.value_depth(expression.to_json(), MAX_FILTER_DEPTH))
    return expression


def _validated(make: Callable[[], cql2.Expr], encoding: str) -> cql2.Expr:
    """The expression `make` builds, checked against the CQL2 schema; the cql2 library's errors as InputError."""
    try:
        expression = make()
        expression.validate()
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - cql2 raises ParseError, ValidationError, ValueError and Exception
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"filter is not valid {encoding}: {first[:300]}") from None
    return expression


def _check_depth(depth: int) -> None:
    if depth > MAX_FILTER_DEPTH:
        raise InputError(
            f"filter nests deeper than {MAX_FILTER_DEPTH} levels (operators, parentheses, arrays); "
            "write it flatter"
        )


def _check_size(size: int, encoded: str) -> None:
    """The same limit for a filter sent as text and one sent as an object (measured as compact JSON)."""
    if size > MAX_FILTER:
        raise InputError(
            f"filter is longer than {MAX_FILTER:,} characters{encoded}; write it shorter: compare a property "
            "with many values by IN (a list) or BETWEEN rather than many ORs, or narrow the request by bbox, "
            "datetime, collections or ids"
        )


def _text_nesting(text: str) -> int:
    """How deep CQL2 text nests, counted without parsing it: the parentheses open at once (outside strings),
    plus the run of prefix operators (NOT, minus) before the current operand, which nest without parentheses.
    About the depth of its CQL2 JSON; an unbalanced ')' never lowers it below 0."""
    deepest = depth = run = 0
    for token in _CQL2_TOKENS.findall(_CQL2_QUOTED.sub("''", text)):
        if token == "(":
            depth += 1
        elif token == ")":
            depth = max(depth - 1, 0)
        elif token == "-" or token.upper() == "NOT":
            run += 1
        else:
            run = 0
        deepest = max(deepest, depth + run)
    return deepest


def parse_filter(text: str | dict[str, Any], lang: str | None = None) -> dict[str, Any]:
    """A CQL2 filter as CQL2 JSON (what the feature store compiles to SQL)."""
    return parse_cql2(text, lang).to_json()


# -- bbox -------------------------------------------------------------------------------------------------------
def parse_bbox(value: str | list[Any]) -> BBox:
    """`bbox`: 4 numbers west,south,east,north, or 6 (a 3D bbox, whose heights are dropped). West may be
    greater than east (across the antimeridian); south may not be greater than north."""
    parts = value.split(",") if isinstance(value, str) else value
    try:
        numbers = [float(p) for p in parts]
    except (TypeError, ValueError):
        raise InputError(f"bbox {value!r}: give 4 (or 6) numbers west,south,east,north") from None
    if len(numbers) == 6:
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
    if len(numbers) != 4 or not all(math.isfinite(n) for n in numbers) or numbers[1] > numbers[3]:
        raise InputError(
            f"bbox {value!r}: give 4 (or 6) finite numbers west,south,east,north, with south <= north"
        )
    return numbers[0], numbers[1], numbers[2], numbers[3]


# -- datetime ---------------------------------------------------------------------------------------------------
OPEN_ENDS = ("..", "")
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def parse_instant(text: str) -> datetime:
    """An RFC 3339 timestamp or a date (CQL2's TIMESTAMP and DATE) as an aware UTC datetime (a date as its
    midnight; a time without zone as UTC)."""
    try:
        moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        try:
            moment = datetime.combine(date.fromisoformat(str(text)), time())
        except ValueError:
            raise InputError(f"{text!r} is not an RFC 3339 timestamp or date") from None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def interval_ends(text: str) -> tuple[str | None, str | None]:
    """`datetime` as the texts of its two ends, None where open ('..' or empty); an instant is both ends."""
    parts = text.split("/")
    if len(parts) > 2 or not text:
        raise InputError(
            f"datetime {text!r}: give an RFC 3339 instant or an interval start/end ('..' for open)"
        )
    ends = [None if p in OPEN_ENDS else p for p in parts]
    return (ends[0], ends[0]) if len(ends) == 1 else (ends[0], ends[1])


def parse_datetime(text: str, *, strict: bool = False) -> Interval:
    """`datetime` (an instant, or an interval start/end) as a UTC range.

    OGC API Features takes RFC 3339 timestamps or dates and open ends; `strict` (the STAC API) takes only
    RFC 3339 date-times with their zone, and at most one open end."""
    if strict and not _rfc3339_interval(text):
        raise InputError(
            f"datetime {text!r}: give an RFC 3339 date-time such as 2024-06-01T00:00:00Z, or an "
            "interval start/end with '..' for an open end"
        )
    start, end = (
        None if part is None else parse_instant(part.upper() if strict else part)
        for part in interval_ends(text)
    )
    if start is not None and end is not None and start > end:
        raise InputError(f"datetime {text!r}: the interval ends before it starts")
    return start, end


def _rfc3339_interval(text: str) -> bool:
    parts = text.split("/")
    given = [p for p in parts if not (len(parts) == 2 and p in OPEN_ENDS)]
    return len(parts) <= 2 and bool(given) and all(RFC3339.match(p) for p in given)


# -- CRS --------------------------------------------------------------------------------------------------------
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"  # WGS 84 in lon/lat order
EPSG = "http://www.opengis.net/def/crs/EPSG/0/"


def epsg_uri(code: int) -> str:
    return f"{EPSG}{code}"


def parse_crs(uri: str | None, name: str = "bbox-crs") -> int:
    """A CRS URI (`bbox-crs`, `filter-crs`; None means CRS84) as an EPSG code, CRS84 as 4326."""
    if uri is None or uri == CRS84:
        return 4326
    code = uri.removeprefix(EPSG)
    if uri.startswith(EPSG) and code.isdigit():
        return int(code)
    raise InputError(f"{name} {uri!r}: give {CRS84} or {EPSG}<code>")


# -- conformance classes ----------------------------------------------------------------------------------------
# OGC API Common
COMMON_CORE = "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/core"
COMMON_LANDING_PAGE = "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/landing-page"
COMMON_JSON = "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/json"
COMMON_OAS30 = "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/oas30"
COMMON_COLLECTIONS = "http://www.opengis.net/spec/ogcapi-common-2/1.0/conf/collections"
# OGC API Features, Part 1 and Part 3
FEATURES_CORE = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core"
FEATURES_GEOJSON = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson"
FEATURES_OAS30 = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30"
FEATURES_QUERYABLES = "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables"
FEATURES_QUERYABLES_QUERY_PARAMETERS = (
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters"
)
FEATURES_FILTER = "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter"
FEATURES_FEATURES_FILTER = "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter"
# CQL2
CQL2_TEXT = "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text"
CQL2_JSON = "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json"
CQL2_BASIC = "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2"
CQL2_ADVANCED_COMPARISON = "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators"
CQL2_CASE_INSENSITIVE = "http://www.opengis.net/spec/cql2/1.0/conf/case-insensitive-comparison"
CQL2_BASIC_SPATIAL = "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions"
CQL2_SPATIAL = "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions"
CQL2_TEMPORAL = "http://www.opengis.net/spec/cql2/1.0/conf/temporal-functions"
CQL2_ARITHMETIC = "http://www.opengis.net/spec/cql2/1.0/conf/arithmetic"
# OGC API Tiles and the tile matrix set standard
TILES_CORE = "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core"
TILES_TILESET = "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset"
TILES_TILESETS_LIST = "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tilesets-list"
TILES_GEODATA_TILESETS = "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/geodata-tilesets"
TILES_PNG = "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/png"
TMS_TILEMATRIXSET = "http://www.opengis.net/spec/tms/2.0/conf/tilematrixset"
# OGC API Environmental Data Retrieval
EDR_CORE = "http://www.opengis.net/spec/ogcapi-edr-1/1.0/conf/core"
EDR_POSITION = "http://www.opengis.net/spec/ogcapi-edr-1/1.0/conf/position"
EDR_AREA = "http://www.opengis.net/spec/ogcapi-edr-1/1.0/conf/area"
EDR_COVJSON = "http://www.opengis.net/spec/ogcapi-edr-1/1.0/conf/covjson"
# OGC API Processes, Part 1
PROCESSES_CORE = "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/core"
PROCESSES_DESCRIPTION = "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/ogc-process-description"
PROCESSES_JSON = "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/json"
PROCESSES_JOB_LIST = "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/job-list"
PROCESSES_DISMISS = "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/dismiss"
PROCESSES_OAS30 = "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/oas30"
