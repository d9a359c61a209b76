"""Place groups: named GeoJSON feature collections (stations, water bodies, regions of interest) that
viewers show on the map and use for time series. Each is one file `places/{id}.geojson` below the data
root; access to a group is that of the feature collection of the same id."""

from __future__ import annotations

import json
import re
from typing import Any

import shapely
from shapely.geometry import box, shape

from cubeport.errors import InputError, NotFoundError
from cubeport.storage import Storage

PLACES_DIR = "places"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class Places:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def ids(self) -> list[str]:
        return [n.removesuffix(".geojson") for n in self.storage.list_files(PLACES_DIR) if n.endswith(".geojson")]

    def get(self, group_id: str, *, within: tuple[float, float, float, float] | None = None) -> dict[str, Any]:
        """The group as a FeatureCollection with `id` and `title`; only features that touch `within` if given."""
        try:
            if not _ID.match(group_id):
                raise FileNotFoundError(group_id)
            collection = json.loads(self.storage.read_bytes(PLACES_DIR, f"{group_id}.geojson"))
        except FileNotFoundError:
            raise NotFoundError(f"place group {group_id!r} not found; groups: {', '.join(self.ids()) or 'none'}") \
                from None
        features = collection.get("features", [])
        if within is not None:
            area = box(*within)
            features = [f for f in features if f.get("geometry") and shape(f["geometry"]).intersects(area)]
        return {"type": "FeatureCollection", "id": group_id, "title": collection.get("title", group_id),
                "features": features}

    def add(self, group_id: str, content: bytes, title: str | None = None) -> dict[str, Any]:
        """Store a GeoJSON FeatureCollection as a place group (checked first; replaced atomically)."""
        if not _ID.match(group_id):
            raise InputError(f"place group id {group_id!r} is not valid: letters, digits, _ . - (at most 64)")
        try:
            collection = json.loads(content)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"not GeoJSON: {exc}") from None
        if not isinstance(collection, dict) or collection.get("type") != "FeatureCollection":
            raise InputError("a place group must be a GeoJSON FeatureCollection")
        features = []
        for index, feature in enumerate(collection.get("features") or []):
            if not isinstance(feature, dict) or not isinstance(feature.get("geometry"), dict):
                raise InputError(f"feature {index} has no geometry")
            _check_geometry(index, feature["geometry"])
            features.append({**feature, "id": feature.get("id", index)})
        if not features:
            raise InputError("the FeatureCollection has no features")
        stored = {"type": "FeatureCollection", "title": title or collection.get("title") or group_id,
                  "features": features}
        self.storage.write_bytes_atomic(json.dumps(stored).encode(), PLACES_DIR, f"{group_id}.geojson")
        return self.get(group_id)


def _check_geometry(index: int, geometry: dict[str, Any]) -> None:
    """InputError saying what is wrong with a feature's geometry: its GeoJSON, its lon/lat range, its validity."""
    try:
        parsed = shape(geometry)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, shapely.errors.ShapelyError) as exc:
        raise InputError(f"feature {index}: invalid {geometry.get('type')} geometry: {exc}") from None
    lon_lo, lat_lo, lon_hi, lat_hi = parsed.bounds if not parsed.is_empty else (0, 0, 0, 0)
    if not (-180 <= lon_lo <= lon_hi <= 360 and -90 <= lat_lo <= lat_hi <= 90):
        raise InputError(f"feature {index}: coordinates must be longitude, latitude in degrees")
    if not parsed.is_valid:
        raise InputError(f"feature {index} is not valid: {shapely.is_valid_reason(parsed)}")
