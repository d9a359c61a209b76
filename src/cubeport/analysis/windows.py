"""The one way analysis reads cube values: open the variable (as the time-chunked twin when asked and built),
then read the window of a geometry over a range of steps, within a size budget per request."""

from __future__ import annotations

import numpy as np
import xarray as xr
from shapely.geometry.base import BaseGeometry

from cubeport import deadline
from cubeport.analysis.regions import Region, region
from cubeport.cubes import cf
from cubeport.cubes.source import CubeSource
from cubeport.errors import LimitError

MAX_VALUES = 50_000_000  # pixels x time steps one request may read (400 MB as float64)


def step_range(times: np.ndarray, start: str | None, end: str | None) -> slice:
    """The steps of `times` from `start` to `end` (inclusive; the xcube parameters startDate/endDate)."""
    lo = int(np.searchsorted(times, cf.parse_time(start, "startDate"), "left")) if start else 0
    hi = int(np.searchsorted(times, cf.parse_time(end, "endDate"), "right")) if end else len(times)
    return slice(lo, hi)


def open_variable(store: CubeSource, cube_id: str, variable: str, *, twin: bool) -> xr.Dataset:
    """The cube without dask, as its time-chunked twin if asked for and built; NotFoundError naming the
    variables when `variable` is not one of them."""
    ds = store.open(cube_id, timeseries=twin and store.pointer(cube_id).timeseries, dask=False)
    cf.check_variable(ds, variable, cube_id)
    return ds


def read_region(
    ds: xr.Dataset, variable: str, geometry: BaseGeometry, steps: slice, all_touched: bool = False
) -> tuple[np.ndarray, Region]:
    """The values in the geometry's window as a (time, rows, cols) array as stored, within the size budget."""
    where = region(ds, geometry, all_touched)
    count = len(range(*steps.indices(ds.sizes["time"]))) * where.mask.size
    if count > MAX_VALUES:
        raise LimitError(
            f"the request would read {count:,} values (area x time steps); the limit is "
            f"{MAX_VALUES:,}: use a smaller polygon or a shorter startDate..endDate",
            "values",
            MAX_VALUES,
        )
    deadline.check("reading the data")
    ydim, xdim = cf.spatial_dims(ds)
    # the Variable, not the DataArray: no coordinates or indexes to cut (a third of a point's time)
    return ds.variables[variable].isel({"time": steps, ydim: where.rows, xdim: where.cols}).values, where
