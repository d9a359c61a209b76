"""CoverageJSON (OGC Community Standard) time series for OGC API EDR: a PointSeries at a position, a
PolygonSeries (the mean over the area) for an area."""

from __future__ import annotations

from typing import Any

from shapely.geometry import Point, mapping
from shapely.geometry.base import BaseGeometry

from cubeport.cubes.catalogue import VariableEntry

CRS84 = {"type": "GeographicCRS", "id": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}
TIME = {"type": "TemporalRS", "calendar": "Gregorian"}


def parameter(variable: VariableEntry) -> dict[str, Any]:
    result: dict[str, Any] = {
        "type": "Parameter",
        "observedProperty": {"id": variable.name, "label": {"en": variable.long_name or variable.name}},
    }
    if variable.units:
        result["unit"] = {"symbol": variable.units, "label": {"en": variable.units}}
    return result


def series(
    geometry: BaseGeometry, records: dict[str, list[dict[str, Any]]], variables: dict[str, VariableEntry]
) -> dict[str, Any]:
    """A coverage with one range per variable of the means in `records`, time_series() results keyed by
    variable."""
    times = [r["time"] for r in next(iter(records.values()))]
    if isinstance(geometry, Point):
        axes: dict[str, Any] = {
            "x": {"values": [geometry.x]},
            "y": {"values": [geometry.y]},
            "t": {"values": times},
        }
        domain_type, referencing_axes = "PointSeries", ["x", "y"]
    else:
        axes = {
            "composite": {
                "dataType": "polygon",
                "coordinates": ["x", "y"],
                "values": [mapping(geometry)["coordinates"]],
            },
            "t": {"values": times},
        }
        domain_type, referencing_axes = "PolygonSeries", ["x", "y"]
    return {
        "type": "Coverage",
        "domain": {
            "type": "Domain",
            "domainType": domain_type,
            "axes": axes,
            "referencing": [
                {"coordinates": referencing_axes, "system": CRS84},
                {"coordinates": ["t"], "system": TIME},
            ],
        },
        "parameters": {name: parameter(variables[name]) for name in records},
        "ranges": {
            name: {
                "type": "NdArray",
                "dataType": "float",
                "axisNames": ["t"],
                "shape": [len(times)],
                "values": [r["mean"] for r in rows],
            }
            for name, rows in records.items()
        },
    }
