"""GeoJSON in, shapely out: points and polygons in lon/lat, with an InputError that says what is wrong."""

from __future__ import annotations

import json
from typing import Any

import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from cubeport import deadline
from cubeport.errors import InputError


def parse_geojson(body: bytes | str | dict[str, Any]) -> BaseGeometry:
    """A geometry from a GeoJSON geometry, Feature or FeatureCollection (features are united).

    CPU-bound for large bodies (a FeatureCollection of 20,000 squares takes seconds, most of it the union):
    call it in a worker thread, not on the event loop. It checks the request's time budget between steps."""
    try:
        data = json.loads(body) if isinstance(body, (bytes, str)) else body
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"the body is not JSON: {exc}") from None
    except RecursionError:  # the HTTP edge refuses deep JSON first; this holds for other callers
        raise InputError("the body is not GeoJSON: it nests too deep") from None
    if not isinstance(data, dict) or "type" not in data:
        raise InputError("expected a GeoJSON geometry, Feature or FeatureCollection with a 'type'")
    kind = data["type"]
    if kind == "FeatureCollection":
        features = data.get("features")
        if not isinstance(features, list) or not features:
            raise InputError("the FeatureCollection has no features")
        geometries = []
        for feature in features:
            geometries.append(parse_geojson(feature))
            deadline.check("reading the GeoJSON")
        united = shapely.union_all(geometries)
        deadline.check("uniting the GeoJSON features")
        return united
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
