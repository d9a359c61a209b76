"""GeoJSON in, shapely out: points and polygons in lon/lat, with an InputError that says what is wrong."""

from __future__ import annotations

import json
from typing import Any

import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from cubeport.errors import InputError


def parse_geojson(body: bytes | str | dict[str, Any]) -> BaseGeometry:
    """A geometry from a GeoJSON geometry, Feature or FeatureCollection (features are united)."""
    try:
        data = json.loads(body) if isinstance(body, (bytes, str)) else body
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"the body is not JSON: {exc}") from None
    if not isinstance(data, dict) or "type" not in data:
        raise InputError("expected a GeoJSON geometry, Feature or FeatureCollection with a 'type'")
    kind = data["type"]
    if kind == "FeatureCollection":
        features = data.get("features")
        if not isinstance(features, list) or not features:
            raise InputError("the FeatureCollection has no features")
        return shapely.union_all([parse_geojson(f) for f in features])
    if kind == "Feature":
        if not isinstance(data.get("geometry"), dict):
            raise InputError("the Feature has no geometry")
        return parse_geojson(data["geometry"])
    if kind not in ("Point", "Polygon", "MultiPolygon"):
        raise InputError(
            f"geometry type {kind!r} not supported; use a Point, Polygon or MultiPolygon "
            "(or a Feature of one; one request per point)"
        )
    try:
        geometry = shape(data)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise InputError(f"invalid {kind} coordinates: {exc}") from None
    if geometry.is_empty:
        raise InputError(f"the {kind} is empty")
    lon_lo, lat_lo, lon_hi, lat_hi = geometry.bounds
    if not (-180 <= lon_lo <= lon_hi <= 360 and -90 <= lat_lo <= lat_hi <= 90):
        raise InputError("coordinates must be longitude, latitude in degrees (GeoJSON order)")
    if not geometry.is_valid:
        raise InputError(f"the {kind} is not valid: {shapely.is_valid_reason(geometry)}")
    return geometry
