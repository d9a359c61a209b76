"""Water Framework Directive style classification of a variable over a region (a water body): how the EO
observations (every valid pixel of every step) fall into five classes separated by four limits, the summer
(June to September) mean of each year, the daily region mean and spread, and a histogram of the values.

For chlorophyll-a, higher is worse: below the first limit is High, from the last limit up is Bad. A value
equal to a limit belongs to the worse class."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from shapely.geometry.base import BaseGeometry

from cubeport.analysis.windows import open_variable, read_region, step_range
from cubeport.cubes import cf
from cubeport.cubes.source import CubeSource
from cubeport.errors import InputError

CLASSES = ("High", "Good", "Moderate", "Poor", "Bad")
SUMMER = (6, 7, 8, 9)
HISTOGRAM_BINS = 60


def check_limits(limits: Sequence[float]) -> list[float]:
    """Four finite, strictly increasing class limits; InputError saying what is wrong otherwise."""
    try:
        values = [float(v) for v in limits] if isinstance(limits, (list, tuple)) else []
    except (TypeError, ValueError):
        values = []
    if len(values) != len(CLASSES) - 1 or not all(np.isfinite(values)) or max(map(abs, values)) > 1e300:
        raise InputError(f"give {len(CLASSES) - 1} class limits (between {', '.join(CLASSES)}), as numbers")
    if any(b <= a for a, b in zip(values, values[1:], strict=False)):
        raise InputError(f"class limits must increase: {values}")
    return values


def classify(values: np.ndarray, limits: Sequence[float]) -> np.ndarray:
    """The class index (0 High .. 4 Bad) of each value; a value on a limit goes to the worse class."""
    return np.searchsorted(np.asarray(limits), values, side="right")


def class_report(
    store: CubeSource,
    cube_id: str,
    variable: str,
    geometry: BaseGeometry,
    limits: Sequence[float],
    *,
    start: str | None = None,
    end: str | None = None,
    all_touched: bool = False,
) -> dict[str, Any]:
    """The dashboard's numbers for one region; see the module's docstring."""
    limits = check_limits(limits)
    ds = open_variable(store, cube_id, variable, twin=True)
    times = ds["time"].values
    window = step_range(times, start, end)
    values, where = read_region(ds, variable, geometry, window, all_touched)
    inside = values[:, where.mask].astype(np.float64)  # (time, pixels)
    valid = np.isfinite(inside)
    observed = inside[valid]
    counts = np.bincount(classify(observed, limits), minlength=len(CLASSES))
    steps = pd.DatetimeIndex(times[window])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # steps without a valid pixel give NaN
        daily_mean, daily_std = np.nanmean(inside, axis=1), np.nanstd(inside, axis=1)
    summer = []
    for year in sorted(set(steps.year)):
        in_summer = (steps.year == year) & steps.month.isin(SUMMER)
        summer_values = inside[in_summer][valid[in_summer]]
        summer.append(
            {
                "year": int(year),
                "mean": float(summer_values.mean()) if summer_values.size else None,
                "count": int(summer_values.size),
                "class": CLASSES[int(classify(summer_values.mean(), limits))] if summer_values.size else None,
            }
        )
    histogram = None
    if observed.size:
        low, high = min(float(observed.min()), limits[0]), max(float(observed.max()), limits[-1])
        margin = 0.05 * (high - low) or 1.0  # the data and every limit, with room on both sides
        counts_h, edges = np.histogram(observed, bins=HISTOGRAM_BINS, range=(low - margin, high + margin))
        histogram = {"values": counts_h.tolist(), "edges": edges.tolist()}
    total = int(counts.sum())
    return {
        "classes": [
            {
                "name": name,
                "count": int(n),
                "fraction": n / total if total else None,
                "lower": None if i == 0 else limits[i - 1],
                "upper": None if i == len(limits) else limits[i],
            }
            for i, (name, n) in enumerate(zip(CLASSES, counts, strict=False))
        ],
        "limits": limits,
        "count": total,
        "pixels": int(where.mask.sum()),
        "summer": summer,
        "daily": [
            {"time": t, "mean": _number(m), "std": _number(s), "count": int(c)}
            for t, m, s, c in zip(
                cf.times_iso(ds)[window], daily_mean, daily_std, valid.sum(axis=1), strict=False
            )
        ],
        "histogram": histogram,
    }


def _number(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None
