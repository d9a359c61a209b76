"""Time series of a variable at a point or over a polygon, read from the time-chunked twin when the cube
has one (one chunk per 128 steps instead of one per step), aggregated over the polygon's pixels."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from shapely.geometry.base import BaseGeometry

from cubeport.analysis.windows import open_variable, read_region, step_range
from cubeport.cubes import cf
from cubeport.cubes.source import CubeSource
from cubeport.errors import InputError

AGGREGATIONS = ("mean", "median", "std", "min", "max", "count")


def check_aggregations(names: Sequence[str]) -> list[str]:
    unknown = [n for n in names if n not in AGGREGATIONS]
    if unknown or not names:
        raise InputError(
            f"aggregation {unknown[0] if unknown else ''!r} unknown; use {', '.join(AGGREGATIONS)}"
        )
    return list(dict.fromkeys(names))


def aggregate(values: np.ndarray, mask: np.ndarray, methods: Sequence[str]) -> dict[str, np.ndarray]:
    """Per time step over the masked pixels of (time, rows, cols) values: each method as a float64 array along
    time (NaN where nothing is valid). Sums run in float64 over the values as stored, without a float64 copy."""
    valid = np.isfinite(values) & mask
    count = valid.sum(axis=(1, 2))
    result: dict[str, np.ndarray] = {"count": count.astype(np.float64)}
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN steps give NaN, which is what we want
        if "mean" in methods or "std" in methods:
            mean = np.where(valid, values, 0).sum(axis=(1, 2), dtype=np.float64) / count
            result["mean"] = mean
            if "std" in methods:
                deviations = np.where(valid, values - mean[:, None, None], 0.0)
                result["std"] = np.sqrt(np.square(deviations).sum(axis=(1, 2)) / count)
        order_statistics = [m for m in ("median", "min", "max") if m in methods]
        if order_statistics:
            inside = values[:, mask]  # (time, pixels)
            functions: dict[str, Callable[..., np.ndarray]] = {
                "median": np.nanmedian,
                "min": np.nanmin,
                "max": np.nanmax,
            }
            for method in order_statistics:
                result[method] = functions[method](inside, axis=1).astype(np.float64)
    return result


def time_series(
    store: CubeSource,
    cube_id: str,
    variable: str,
    geometry: BaseGeometry,
    methods: Sequence[str] = ("mean",),
    *,
    start: str | None = None,
    end: str | None = None,
    max_valids: int | None = None,
    all_touched: bool = False,
) -> list[dict[str, Any]]:
    """xcube's time-series records: one per step, `time` plus each method. `max_valids` as in xcube: None,
    every step; -1, only steps with a value; N, the newest N steps with a value."""
    methods = check_aggregations(methods)
    ds = open_variable(store, cube_id, variable, twin=True)
    times = ds["time"].values
    window = step_range(times, start, end)
    values, where = read_region(ds, variable, geometry, window, all_touched)
    stats = aggregate(values, where.mask, list(dict.fromkeys([*methods, "count"])))
    counts = stats["count"].astype(np.int64).tolist()
    columns = {
        m: counts if m == "count" else [v if math.isfinite(v) else None for v in stats[m].tolist()]
        for m in methods
    }
    keys = ("time", *columns)
    rows = zip(cf.times_iso(ds)[window], *columns.values(), strict=False)
    records = [
        dict(zip(keys, row, strict=False))
        for row, count in zip(rows, counts, strict=False)
        if max_valids is None or count
    ]
    return records[-max_valids:] if max_valids and max_valids > 0 else records
