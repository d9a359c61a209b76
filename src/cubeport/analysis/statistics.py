"""Statistics of one time step: the value at a point, or count, range, mean, deviation and a histogram
over a polygon's pixels. One step is read from the map-chunked level 0, not from the twin."""

from __future__ import annotations

from typing import Any

import numpy as np
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

from cubeport.analysis.windows import open_variable, read_region
from cubeport.cubes import cf
from cubeport.cubes.source import CubeSource

HISTOGRAM_BINS = 100


def statistics(
    store: CubeSource,
    cube_id: str,
    variable: str,
    geometry: BaseGeometry,
    time: str | None = None,
    *,
    all_touched: bool = False,
    bins: int = HISTOGRAM_BINS,
) -> dict[str, Any]:
    """At a point: {"time", "value"}; over a polygon: count, minimum, maximum, mean, deviation, histogram."""
    ds = open_variable(store, cube_id, variable, twin=False)
    index = cf.nearest_step(ds["time"].values, time)
    values, where = read_region(ds, variable, geometry, slice(index, index + 1), all_touched)
    result: dict[str, Any] = {"time": cf.iso(ds["time"].values[index])}
    if isinstance(geometry, Point):
        value = float(values.ravel()[0])
        return {**result, "value": value if np.isfinite(value) else None}
    inside = values[0][where.mask].astype(np.float64)
    valid = inside[np.isfinite(inside)]
    result["count"] = int(valid.size)
    if valid.size:
        counts, edges = np.histogram(valid, bins=bins)
        result.update(
            minimum=float(valid.min()),
            maximum=float(valid.max()),
            mean=float(valid.mean()),
            deviation=float(valid.std()),
            histogram={
                "values": counts.tolist(),
                "edges": edges.tolist(),
                "centers": ((edges[:-1] + edges[1:]) / 2).tolist(),
            },
        )
    return result
