"""The CF conventions a Cubeport cube follows, and the checks that make any dataset one.

A cube has dims (time, y, x) or (time, lat, lon); geographic grids use lat/lon, projected grids use y/x
and carry a CF grid-mapping variable `spatial_ref` with the CRS as WKT. Coordinates are 1-D, regular or
not, and the time axis is strictly increasing without duplicates.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from threading import Lock
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import xarray as xr
from affine import Affine
from pyproj import CRS, Transformer

from cubeport.errors import InputError, NotFoundError

T = TypeVar("T")

GRID_MAPPING = "spatial_ref"
_X_NAMES = ("x", "lon", "longitude")
_Y_NAMES = ("y", "lat", "latitude")


def spatial_dims(ds: xr.Dataset | xr.DataArray) -> tuple[str, str]:
    """The (y, x) dimension names of `ds`."""
    ydim = next((d for d in _Y_NAMES if d in ds.dims), None)
    xdim = next((d for d in _X_NAMES if d in ds.dims), None)
    if ydim is None or xdim is None:
        raise InputError(f"no spatial dimensions: expected y/x or lat/lon, found {list(ds.dims)}")
    return ydim, xdim


def crs_of(ds: xr.Dataset) -> CRS:
    """The cube's CRS: from its grid mapping, or WGS 84 for plain lat/lon grids. InputError if there is none."""
    for name in _grid_mapping_names(ds):
        if name in ds.variables:
            attrs = ds[name].attrs
            for key in ("crs_wkt", "spatial_ref"):
                if attrs.get(key):
                    return CRS.from_user_input(attrs[key])
            if attrs.get("grid_mapping_name"):
                return CRS.from_cf(attrs)
    if ds.attrs.get("crs"):
        return CRS.from_user_input(ds.attrs["crs"])
    ydim, xdim = spatial_dims(ds)
    if (ydim, xdim) in {("lat", "lon"), ("latitude", "longitude")}:
        return CRS.from_epsg(4326)
    raise InputError("no CRS: the dataset has y/x dims but no grid mapping (CF grid_mapping or crs_wkt)")


def _grid_mapping_names(ds: xr.Dataset) -> list[str]:
    names = {str(v.attrs["grid_mapping"]) for v in ds.data_vars.values() if "grid_mapping" in v.attrs}
    names |= {str(v.encoding["grid_mapping"]) for v in ds.data_vars.values() if "grid_mapping" in v.encoding}
    return sorted(names) + [n for n in (GRID_MAPPING, "crs") if n not in names]


def crs_name(crs: CRS) -> str:
    """A short name such as 'EPSG:32633', or the WKT where there is no authority code."""
    code = crs.to_authority(min_confidence=90)
    return f"{code[0]}:{code[1]}" if code else crs.to_wkt()


def grid_mapping_variable(crs: CRS) -> xr.DataArray:
    """A CF grid-mapping variable for `crs`, as GDAL, rioxarray and xcube read it."""
    attrs = crs.to_cf()
    attrs["spatial_ref"] = attrs["crs_wkt"]
    return xr.DataArray(np.int32(0), attrs=attrs)


def normalise(ds: xr.Dataset, source: str) -> xr.Dataset:
    """Return `ds` as a cube: spatial dims named by convention, (time, y, x) order, CRS as a grid mapping.

    Raises InputError naming `source` when the dataset cannot be a cube.
    """
    try:
        crs = crs_of(ds)
        ydim, xdim = spatial_dims(ds)
    except InputError as exc:
        raise InputError(f"{source}: {exc}") from None
    if "time" not in ds.dims:
        raise InputError(f"{source}: no time dimension; give the time with --time or --time-pattern")
    for dim in ("time", ydim, xdim):
        if dim not in ds.coords or ds[dim].ndim != 1:
            raise InputError(f"{source}: dimension {dim!r} has no 1-D coordinate")
    ds = ns_time(ds)
    check_time_axis(ds["time"].values, source)

    drop = [n for n in _grid_mapping_names(ds) if n in ds.variables]
    ds = ds.drop_vars(drop + [v for v in ds.data_vars if ds[v].ndim == 0 and v not in drop])
    geographic = crs.is_geographic
    rename = {}
    if geographic and (ydim, xdim) != ("lat", "lon"):
        rename = {ydim: "lat", xdim: "lon"}
    elif not geographic and (ydim, xdim) != ("y", "x"):
        rename = {ydim: "y", xdim: "x"}
    ds = ds.rename(rename)
    ydim, xdim = spatial_dims(ds)

    keep = [v for v in ds.data_vars if set(ds[v].dims) >= {"time", ydim, xdim}]
    if not keep:
        raise InputError(f"{source}: no variable has the dims (time, {ydim}, {xdim})")
    others = [v for v in ds.data_vars if v not in keep and "time" not in ds[v].dims]
    ds = ds[keep + others]
    for name in keep:
        extra = [d for d in ds[name].dims if d not in ("time", ydim, xdim)]
        ds[name] = ds[name].transpose("time", ydim, xdim, *extra)
        ds[name].attrs.pop("grid_mapping", None)
        ds[name].encoding.pop("grid_mapping", None)
        if not geographic:
            ds[name].attrs["grid_mapping"] = GRID_MAPPING
    if not geographic:
        ds = ds.assign_coords({GRID_MAPPING: grid_mapping_variable(crs)})
    ds.attrs.pop("crs", None)
    ds[xdim].attrs.update(_axis_attrs(xdim, crs))
    ds[ydim].attrs.update(_axis_attrs(ydim, crs))
    return ds


def _axis_attrs(dim: str, crs: CRS) -> dict[str, str]:
    if dim == "lon":
        return {"standard_name": "longitude", "units": "degrees_east", "axis": "X"}
    if dim == "lat":
        return {"standard_name": "latitude", "units": "degrees_north", "axis": "Y"}
    unit = crs.axis_info[0].unit_name if crs.axis_info else "metre"
    name = "projection_x_coordinate" if dim == "x" else "projection_y_coordinate"
    return {"standard_name": name, "units": "m" if unit == "metre" else unit, "axis": dim.upper()}


def ns_time(ds: xr.Dataset) -> xr.Dataset:
    """`ds` with its time axis as datetime64[ns], the one resolution the store writes and compares."""
    if ds["time"].dtype != np.dtype("datetime64[ns]"):
        ds = ds.assign_coords(time=ds["time"].values.astype("datetime64[ns]"))
    return ds


def check_time_axis(times: np.ndarray, source: str) -> None:
    """InputError when times repeat or are not in increasing order."""
    index = pd.DatetimeIndex(times)
    duplicated = index[index.duplicated()]
    if len(duplicated):
        raise InputError(f"{source}: duplicate time {duplicated[0].isoformat()}")
    if not index.is_monotonic_increasing:
        pos = int(np.argmax(np.diff(index.asi8) < 0))
        raise InputError(
            f"{source}: times are not in increasing order "
            f"({index[pos].isoformat()} comes before {index[pos + 1].isoformat()})"
        )


def bounds(ds: xr.Dataset) -> tuple[float, float, float, float]:
    """(xmin, ymin, xmax, ymax) of the pixel edges, in the cube's CRS."""
    ydim, xdim = spatial_dims(ds)
    x0, x1 = _edges(ds[xdim].values)
    y0, y1 = _edges(ds[ydim].values)
    return (x0, y0, x1, y1)


def _edges(values: np.ndarray) -> tuple[float, float]:
    values = np.asarray(values, dtype="float64")
    half = abs(values[1] - values[0]) / 2 if values.size > 1 else 0.0
    return float(values.min() - half), float(values.max() + half)


def lonlat_bbox(ds: xr.Dataset) -> tuple[float, float, float, float]:
    """The cube's bounds in WGS 84 longitude/latitude, densified so curved edges are covered."""
    crs = crs_of(ds)
    box = bounds(ds)
    if crs.is_geographic:
        return box
    transformer = Transformer.from_crs(crs, CRS.from_epsg(4326), always_xy=True)
    return tuple(float(v) for v in transformer.transform_bounds(*box, densify_pts=21))  # type: ignore[return-value]


ISO_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # how xcube writes times: whole seconds, UTC, with a Z
NEWEST = ("", "current", "default")  # time values that mean the newest step (xcube, WMTS)


def parse_time(text: str, what: str = "time") -> np.datetime64:
    """An ISO 8601 time from a request as UTC datetime64[ns]; InputError that shows the expected form."""
    try:
        stamp = pd.Timestamp(text)
        if pd.isna(stamp):
            raise ValueError(text)
        return (stamp.tz_convert(None) if stamp.tzinfo else stamp).as_unit("ns").to_datetime64()
    except (ValueError, TypeError, OverflowError, pd.errors.OutOfBoundsDatetime):
        raise InputError(
            f"{what} {text!r} is not an ISO 8601 time between 1678 and 2261, such as 2017-01-16T10:09:22Z"
        ) from None


def nearest_step(times: np.ndarray, text: str | None) -> int:
    """The index of the step nearest to `text`, or of the newest step when no time is given."""
    if text is None or text in NEWEST:
        return len(times) - 1
    return int(np.argmin(np.abs(times - parse_time(text))))


def iso(time: np.datetime64 | pd.Timestamp) -> str:
    """A time as xcube writes it: whole seconds, UTC, with a Z."""
    return iso_all(pd.DatetimeIndex([time]))[0]


def per_dataset(compute: Callable[[xr.Dataset], T]) -> Callable[[xr.Dataset], T]:
    """`compute(ds)` worked out once per dataset object (datasets are unhashable, so by identity) for the
    64 most recent ones: for what servers derive from the cubes they keep open. Entries hold their
    dataset, so an id is never reused while it is a key."""
    cache: OrderedDict[int, tuple[xr.Dataset, T]] = OrderedDict()
    lock = Lock()

    def cached(ds: xr.Dataset) -> T:
        with lock:
            hit = cache.get(id(ds))
        if hit is not None and hit[0] is ds:
            return hit[1]
        value = compute(ds)
        with lock:
            cache[id(ds)] = (ds, value)
            while len(cache) > 64:
                cache.popitem(last=False)
        return value

    return cached


@per_dataset
def times_iso(ds: xr.Dataset) -> list[str]:
    """`iso` of every time step of the dataset (do not change the list)."""
    return iso_all(ds["time"].values)


def iso_all(times: np.ndarray | pd.DatetimeIndex) -> list[str]:
    """`iso` of many times at once (a year of daily steps in 0.1 ms instead of 10)."""
    seconds = pd.DatetimeIndex(times).round("s").values.astype("datetime64[s]")
    return [text + "Z" for text in np.datetime_as_string(seconds, unit="s")]


def check_variable(ds: xr.Dataset, name: str, cube_id: str) -> None:
    """NotFoundError naming the cube's time-dependent variables unless `name` is one of them."""
    if name not in ds.data_vars or "time" not in ds[name].dims:
        names = [str(v) for v, da in ds.data_vars.items() if "time" in da.dims]
        raise NotFoundError(f"variable {name!r} not in cube {cube_id!r}; variables: {', '.join(names)}")


@dataclass(frozen=True)
class Grid:
    """A regular grid: the centre of the first pixel and the step along each axis."""

    x0: float
    dx: float
    nx: int
    y0: float
    dy: float
    ny: int

    @classmethod
    def of(cls, ds: xr.Dataset | xr.DataArray) -> Grid:
        ydim, xdim = spatial_dims(ds)
        xs, ys = ds[xdim].values, ds[ydim].values
        dx = float(xs[1] - xs[0]) if len(xs) > 1 else 1.0
        dy = float(ys[1] - ys[0]) if len(ys) > 1 else -1.0
        return cls(float(xs[0]), dx, len(xs), float(ys[0]), dy, len(ys))

    @property
    def transform(self) -> Affine:
        """The affine transform from (col, row) of pixel corners to x, y."""
        return Affine(self.dx, 0.0, self.x0 - self.dx / 2, 0.0, self.dy, self.y0 - self.dy / 2)


def json_attrs(attrs: dict[Any, Any], nan: Any = None) -> dict[str, Any]:
    """Attributes as plain JSON values: numpy scalars and arrays become Python ones, NaN and infinities `nan`
    (None; xcube clients expect the string "NaN")."""

    def plain(value: Any) -> Any:
        if isinstance(value, (np.ndarray, np.generic)):
            value = value.tolist()
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return nan if isinstance(value, float) and not np.isfinite(value) else value

    return {str(key): plain(value) for key, value in attrs.items()}
