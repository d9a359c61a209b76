"""Zonal statistics: per feature of a collection and per time step, the mean, minimum, maximum, standard
deviation and count of a variable's valid pixels whose centre lies inside the feature (a point: the pixel
under it). The pixels are found and read as the analysis routes do (`analysis/regions.py`, `windows.py`)."""

from __future__ import annotations

import warnings
from typing import Annotated, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr
from pydantic import Field
from shapely.geometry.base import BaseGeometry

from cubeport.analysis.regions import region
from cubeport.analysis.windows import MAX_VALUES, read_region
from cubeport.errors import InputError, NotFoundError
from cubeport.processes.builtin.cubes import as_cube, pick, variables_check
from cubeport.processes.definition import Collection, Cube, JobContext, process
from cubeport.processes.types import End, Start, VariableName, time_range

STATISTICS = ("mean", "min", "max", "std", "count")
COLUMNS = ("feature_id", "time", *STATISTICS)


def feature_ids(features: gpd.GeoDataFrame) -> list[Any]:
    """The features' ids: an `id` column if there is one, else the frame's index (as the feature store and
    the Python client give them)."""
    ids = features["id"] if "id" in features.columns else features.index
    return [v.item() if isinstance(v, np.generic) else v for v in ids]


def step_statistics(values: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
    """mean, min, max, std (population) and count of the finite values of each step (axis 0) in `mask`."""
    inside = values[:, mask].astype(np.float64)
    valid = np.isfinite(inside)
    count = valid.sum(axis=1)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN steps give NaN, and that is the answer
        return {
            "mean": np.nanmean(inside, axis=1),
            "min": np.nanmin(inside, axis=1) if inside.shape[1] else np.full(len(inside), np.nan),
            "max": np.nanmax(inside, axis=1) if inside.shape[1] else np.full(len(inside), np.nan),
            "std": np.nanstd(inside, axis=1),
            "count": count,
        }


@process(
    "zonal-statistics",
    title="Zonal statistics",
    version="1.0.0",
    keywords=["cube", "features", "zonal", "statistics", "polygon", "time series"],
    check=variables_check("variable"),
)
def zonal_statistics(
    job: JobContext,
    cube: Annotated[Cube, Field(description="the cube to read")],
    features: Annotated[
        Collection, Field(description="the zones: polygons (or points) of a feature collection")
    ],
    variable: Annotated[VariableName, Field(description="the cube's variable to summarise")],
    start: Start = None,
    end: End = None,
    properties: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=128)]] | None,
        Field(max_length=64, description="properties of the features to copy into each row"),
    ] = None,
) -> gpd.GeoDataFrame:
    """One row per feature and time step: the feature's id (and the properties asked for), the time, and
    the mean, min, max, std (population) and count of the variable's valid (finite) pixels whose centre
    lies inside the feature; for a point, the pixel under it. A feature that covers no pixel centre has
    count 0 and no statistics. Rows keep the feature's geometry."""
    ds = pick(as_cube(cube), [variable])
    if start is not None or end is not None:
        ds = ds.sel(time=time_range(start, end))
        if not ds.sizes["time"]:
            raise InputError("no time step of the cube between start and end")
    wanted = list(dict.fromkeys(properties or []))
    for name in wanted:
        if name not in features.columns or name == features.geometry.name:
            listed = ", ".join(str(c) for c in features.columns if c != features.geometry.name)
            raise InputError(f"the features have no property {name!r}; properties: {listed or 'none'}")
        if name in COLUMNS:
            raise InputError(
                f"property {name!r} has the name of a result column; results: {', '.join(COLUMNS)}"
            )
    zones = features.set_crs(4326) if features.crs is None else features.to_crs(4326)
    times = pd.DatetimeIndex(ds["time"].values).tz_localize("UTC")
    steps = len(times)
    ids = feature_ids(features)
    columns: dict[str, list[Any]] = {name: [] for name in (*COLUMNS, *wanted)}
    geometries: list[BaseGeometry | None] = []
    total = len(zones)
    for position, geometry in enumerate(zones.geometry):
        stats = _zone(ds, variable, geometry, steps)
        columns["feature_id"].extend([ids[position]] * steps)
        columns["time"].extend(times)
        for name in STATISTICS:
            columns[name].extend(stats[name].tolist())
        for name in wanted:
            columns[name].extend([features[name].iloc[position]] * steps)
        geometries.extend([features.geometry.iloc[position]] * steps)
        job.progress((position + 1) / total, f"feature {position + 1} of {total}")
    frame = pd.DataFrame(columns)
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    frame["count"] = frame["count"].astype("int64")
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geometries, crs=features.crs), crs=features.crs)


def _zone(ds: xr.Dataset, variable: str, geometry: BaseGeometry | None, steps: int) -> dict[str, np.ndarray]:
    """The statistics of one zone over all steps, read in blocks of steps within the analysis read budget."""
    empty = {name: np.full(steps, np.nan) for name in STATISTICS} | {"count": np.zeros(steps, dtype=np.int64)}
    if geometry is None or geometry.is_empty:
        return empty
    try:
        size = region(ds, geometry).mask.size
    except NotFoundError:  # outside the cube, or covering no pixel centre
        return empty
    per_read = max(1, MAX_VALUES // size)
    parts = []
    for first in range(0, steps, per_read):
        values, where = read_region(ds, variable, geometry, slice(first, min(first + per_read, steps)))
        parts.append(step_statistics(values, where.mask))
    return {name: np.concatenate([part[name] for part in parts]) for name in STATISTICS}


__all__ = ["COLUMNS", "STATISTICS", "feature_ids", "step_statistics", "zonal_statistics"]
