"""Place groups: named GeoJSON feature collections (stations, water bodies, regions of interest) that
viewers show on the map and use for time series. Each is one file `places/{id}.geojson` below the data
root; access to a group is that of the feature collection of the same id. A group of stations may have
in-situ observations beside it, `places/{id}.observations.csv` (station, time, parameter, value, unit)."""

from __future__ import annotations

import io
import json
import re
from typing import Any

import pandas as pd
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
        return [
            n.removesuffix(".geojson") for n in self.storage.list_files(PLACES_DIR) if n.endswith(".geojson")
        ]

    def get(
        self, group_id: str, *, within: tuple[float, float, float, float] | None = None
    ) -> dict[str, Any]:
        """The group as a FeatureCollection with `id` and `title`; only features that touch `within` if given."""
        try:
            if not _ID.match(group_id):
                raise FileNotFoundError(group_id)
            collection = json.loads(self.storage.read_bytes(PLACES_DIR, f"{group_id}.geojson"))
        except FileNotFoundError:
            # no list of the groups: some may be hidden from the caller (`/places` lists the visible ones); worded
            # as the 404 of a group the caller may not see (a group has the access of the collection of its id)
            raise NotFoundError(f"collection {group_id!r} not found") from None
        features = collection.get("features", [])
        if within is not None:
            area = box(*within)
            features = [f for f in features if f.get("geometry") and shape(f["geometry"]).intersects(area)]
        return {
            "type": "FeatureCollection",
            "id": group_id,
            "title": collection.get("title", group_id),
            "features": features,
        }

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
        stored = {
            "type": "FeatureCollection",
            "title": title or collection.get("title") or group_id,
            "features": features,
        }
        self.storage.write_bytes_atomic(json.dumps(stored).encode(), PLACES_DIR, f"{group_id}.geojson")
        return self.get(group_id)

    def feature(self, group_id: str, place_id: str) -> dict[str, Any]:
        """One feature of a group, by its id; NotFoundError naming the ids there are."""
        features = self.get(group_id)["features"]
        found: list[dict[str, Any]] = [f for f in features if str(f.get("id")) == place_id]
        if not found:
            ids = ", ".join(str(f.get("id")) for f in features[:20])
            raise NotFoundError(f"place {place_id!r} not in group {group_id!r}; places: {ids}")
        return found[0]

    def add_observations(self, group_id: str, content: bytes) -> int:
        """Store in-situ observations of the group's places (CSV with station, time, parameter, value and
        optional unit, quality); checked first, replaced atomically. Returns the number of rows."""
        self.get(group_id)  # the group must exist
        try:
            table = pd.read_csv(io.BytesIO(content))
        except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
            raise InputError(f"not a CSV table: {exc}") from None
        missing = [c for c in OBSERVATION_COLUMNS if c not in table.columns]
        if missing:
            raise InputError(
                f"the observations lack columns {', '.join(missing)}; "
                f"needed: {', '.join(OBSERVATION_COLUMNS)}"
            )
        times = pd.to_datetime(table["time"], errors="coerce", utc=True)
        values = pd.to_numeric(table["value"], errors="coerce")
        bad = table.index[times.isna() | values.isna()]
        if len(bad):
            raise InputError(f"row {int(bad[0]) + 2}: time must be ISO 8601 and value a number")
        self.storage.write_bytes_atomic(content, PLACES_DIR, f"{group_id}.observations.csv")
        return len(table)

    def observations(
        self, group_id: str, place_id: str, parameter: str | None = None
    ) -> list[dict[str, Any]]:
        """The in-situ observations of one place, oldest first: time (ISO, UTC), parameter, value, unit."""
        self.feature(group_id, place_id)
        try:
            raw = self.storage.read_bytes(PLACES_DIR, f"{group_id}.observations.csv")
        except FileNotFoundError:
            return []
        try:
            table = pd.read_csv(io.BytesIO(raw), dtype={"station": str})
            rows = table[table["station"] == place_id]
            if parameter:
                rows = rows[rows["parameter"] == parameter]
            times = pd.to_datetime(rows["time"], utc=True).dt.tz_convert(None)
            values = pd.to_numeric(rows["value"])
        except (ValueError, KeyError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise InputError(
                f"the observations of place group {group_id!r} cannot be read ({exc}); "
                "replace them with `Places.add_observations`"
            ) from None
        rows = rows.assign(value=values)
        rows = rows.assign(time=[t + "Z" for t in times.dt.strftime("%Y-%m-%dT%H:%M:%S")]).sort_values("time")
        unit = rows["unit"] if "unit" in rows else [""] * len(rows)
        return [
            {"time": t, "parameter": p, "value": float(v), "unit": "" if pd.isna(u) else str(u)}
            for t, p, v, u in zip(rows["time"], rows["parameter"], rows["value"], unit, strict=False)
        ]


OBSERVATION_COLUMNS = ("station", "time", "parameter", "value")


def _check_geometry(index: int, geometry: dict[str, Any]) -> None:
    """InputError saying what is wrong with a feature's geometry: its GeoJSON, its lon/lat range, its validity."""
    try:
        parsed = shape(geometry)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, shapely.errors.ShapelyError) as exc:
        raise InputError(f"feature {index}: invalid {geometry.get('type')} geometry: {exc}") from None
    if parsed.is_empty:
        raise InputError(f"feature {index}: the {geometry.get('type')} geometry is empty")
    lon_lo, lat_lo, lon_hi, lat_hi = parsed.bounds
    if not (-180 <= lon_lo <= lon_hi <= 360 and -90 <= lat_lo <= lat_hi <= 90):
        raise InputError(f"feature {index}: coordinates must be longitude, latitude in degrees")
    if not parsed.is_valid:
        raise InputError(f"feature {index} is not valid: {shapely.is_valid_reason(parsed)}")
