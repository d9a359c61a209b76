"""Cutting and regridding cubes: `subset` (a bbox, a time range, some variables) and `resample` (another
CRS and/or resolution). `select` is the cut that other processes (export) share."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import xarray as xr
from affine import Affine
from pydantic import Field
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError
from rasterio.crs import CRS as RasterioCRS
from rasterio.enums import Resampling
from rasterio.warp import calculate_default_transform, reproject

from cubeport.cubes import cf
from cubeport.errors import InputError, LimitError
from cubeport.processes.builtin.cubes import as_cube, pick, publishable, variables_check
from cubeport.processes.definition import Cube, JobContext, process
from cubeport.processes.types import BBox, End, Start, Variables, check_bbox, time_range

InputCube = Annotated[Cube, Field(description="the cube to cut")]
MAX_STEP_PIXELS = 64_000_000  # pixels of one resampled time step (512 MB as float64)


def select(
    ds: xr.Dataset,
    bbox: Sequence[float] | None = None,
    start: datetime | str | None = None,
    end: datetime | str | None = None,
    variables: Sequence[str] | None = None,
) -> xr.Dataset:
    """A lazy cut of a cube: its `variables`, the steps from `start` to `end` (inclusive) and the pixels
    that overlap `bbox` (lon/lat, CRS84; for a projected cube the bbox's extent in the cube's CRS).
    InputError when nothing is left, saying what the cube covers."""
    ds = pick(as_cube(ds), variables)
    if start is not None or end is not None:
        times = ds["time"].values
        ds = ds.sel(time=time_range(start, end))
        if not ds.sizes["time"]:
            raise InputError(
                f"no time step between {start or 'the first'} and {end or 'the last'}; the cube has "
                f"{len(times)} steps from {cf.iso(times[0])} to {cf.iso(times[-1])}"
            )
    if bbox is not None:
        ds = _cut(ds, check_bbox(tuple(bbox)))  # type: ignore[arg-type]
    return ds


def _cut(ds: xr.Dataset, bbox: tuple[float, float, float, float]) -> xr.Dataset:
    crs = cf.crs_of(ds)
    ydim, xdim = cf.spatial_dims(ds)
    west, south, east, north = bbox
    if crs.is_geographic:
        xmax = float(ds[xdim].max())
        if xmax > 180 and east <= 0:  # a 0..360 cube and a bbox west of Greenwich
            west, east = west + 360, east + 360
        elif xmax > 180 and west < 0 < east:
            raise InputError("bbox: this cube's longitudes run 0..360; split a bbox that crosses 0 at 0")
        xlo, ylo, xhi, yhi = west, south, east, north
    else:
        to_cube = Transformer.from_crs(CRS.from_epsg(4326), crs, always_xy=True)
        xlo, ylo, xhi, yhi = to_cube.transform_bounds(west, south, east, north, densify_pts=21)
    cols = _overlap(ds[xdim].values, xlo, xhi)
    rows = _overlap(ds[ydim].values, ylo, yhi)
    if cols is None or rows is None:
        covered = ", ".join(f"{round(v, 6) + 0:g}" for v in cf.lonlat_bbox(ds))
        shown = ", ".join(f"{v:g}" for v in bbox)
        raise InputError(f"bbox {shown} does not overlap the cube, which covers {covered} (lon/lat)")
    return ds.isel({ydim: rows, xdim: cols})


def _overlap(centres: np.ndarray, low: float, high: float) -> slice | None:
    """The pixels along an axis whose cells overlap low..high (coordinates sorted either way)."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return None
    values = np.asarray(centres, dtype="float64")
    half = abs(values[1] - values[0]) / 2 if values.size > 1 else 0.0
    inside = np.flatnonzero((values + half > low) & (values - half < high))
    if not inside.size:
        return None
    return slice(int(inside[0]), int(inside[-1]) + 1)


@process(
    "subset",
    title="Subset a cube",
    version="1.0.0",
    keywords=["cube", "subset", "bbox", "time"],
    check=variables_check("variables"),
)
def subset(
    job: JobContext,
    cube: InputCube,
    bbox: BBox = None,
    start: Start = None,
    end: End = None,
    variables: Variables = None,
) -> xr.Dataset:
    """A part of a cube as a new cube: the pixels that overlap a bbox (longitude/latitude; for a projected
    cube, the bbox's extent in the cube's CRS), the time steps from start to end (both included) and some
    of its variables. Values are not changed. A bbox or time range that leaves nothing is an error that
    says what the cube covers."""
    result = select(cube, bbox, start, end, variables)
    job.progress(1.0, f"{result.sizes['time']} steps, {dict(result.sizes)}")
    return publishable(result)


Method = Literal["nearest", "bilinear", "average"]
_RESAMPLING = {"nearest": Resampling.nearest, "bilinear": Resampling.bilinear, "average": Resampling.average}


@process(
    "resample",
    title="Resample a cube",
    version="1.0.0",
    keywords=["cube", "reproject", "resample", "crs", "resolution"],
    check=variables_check("variables"),
)
def resample(
    job: JobContext,
    cube: Annotated[Cube, Field(description="the cube to resample")],
    crs: Annotated[
        int | None,
        Field(
            ge=1024,
            le=999_999,
            description="EPSG code of the target CRS (e.g. 4326); the cube's when left out",
        ),
    ] = None,
    resolution: Annotated[
        float | None,
        Field(
            gt=0, description="pixel size in units of the target CRS (degrees or metres); kept when left out"
        ),
    ] = None,
    method: Annotated[
        Method,
        Field(description="nearest (classes, flags), bilinear (smooth fields) or average (coarser grids)"),
    ] = "nearest",
    variables: Variables = None,
) -> xr.Dataset:
    """The cube on another grid: reprojected to an EPSG CRS and/or resampled to a resolution, one time step
    at a time (GDAL warping via rasterio). Every variable comes out as floating point with NaN where no
    source pixel falls (integer fill values count as missing); the grid is north-up, covering the whole
    cube. Give a CRS, a resolution or both."""
    if crs is None and resolution is None:
        raise InputError("give a target crs (EPSG code), a resolution, or both")
    ds = pick(as_cube(cube), variables)
    source_crs = cf.crs_of(ds)
    try:
        target_crs = CRS.from_epsg(crs) if crs is not None else source_crs
    except CRSError:
        raise InputError(f"crs: EPSG:{crs} is not a known CRS") from None
    grid = cf.Grid.of(ds)
    _check_regular(ds)
    west, south, east, north = cf.bounds(ds)
    try:
        transform, width, height = calculate_default_transform(
            RasterioCRS.from_wkt(source_crs.to_wkt()),
            RasterioCRS.from_wkt(target_crs.to_wkt()),
            grid.nx,
            grid.ny,
            west,
            south,
            east,
            north,
            resolution=resolution,
        )
    except Exception as e:  # GDAL cannot place the cube in that CRS (e.g. far outside its area of use)
        raise InputError(
            f"the cube cannot be projected to {cf.crs_name(target_crs)}: {str(e)[:200]}"
        ) from None
    if width * height > MAX_STEP_PIXELS:
        raise LimitError(
            f"the resampled grid would have {width:,} x {height:,} pixels per time step; the limit is "
            f"{MAX_STEP_PIXELS:,}: use a coarser resolution or subset the cube first",
            "values",
            MAX_STEP_PIXELS,
        )
    xs = transform.c + transform.a * (np.arange(width) + 0.5)
    ys = transform.f + transform.e * (np.arange(height) + 0.5)
    steps = ds.sizes["time"]
    store = job.workdir / "resampled.zarr"
    shutil.rmtree(store, ignore_errors=True)
    job.log(f"resampling {steps} steps to {width} x {height} px in {cf.crs_name(target_crs)} ({method})")
    for index in range(steps):
        step = ds.isel(time=slice(index, index + 1))
        out = {
            str(name): (
                ("time", "y", "x"),
                _warp(step[name], source_crs, grid, target_crs, transform, (height, width), method)[None],
                {k: v for k, v in da.attrs.items() if k not in ("grid_mapping", "_FillValue")},
            )
            for name, da in step.data_vars.items()
        }
        slab = xr.Dataset(
            out,
            coords={
                "time": step["time"].values,
                "y": ("y", ys),
                "x": ("x", xs),
                cf.GRID_MAPPING: cf.grid_mapping_variable(target_crs),
            },
            attrs=ds.attrs,
        )
        for name in out:
            slab[name].attrs["grid_mapping"] = cf.GRID_MAPPING
        _append(slab, store, first=index == 0)
        job.progress((index + 1) / steps, f"step {index + 1} of {steps}")
    return publishable(xr.open_zarr(store, chunks={}), what="the resampled cube")


def _check_regular(ds: xr.Dataset) -> None:
    """InputError unless the grid's coordinates are evenly spaced (warping needs an affine transform)."""
    for dim in cf.spatial_dims(ds):
        steps = np.diff(np.asarray(ds[dim].values, dtype="float64"))
        if steps.size and not np.allclose(steps, steps[0], rtol=1e-3, atol=0):
            raise InputError(
                f"the cube's {dim} coordinates are not evenly spaced; resample needs a regular grid"
            )


def _warp(
    da: xr.DataArray,
    source_crs: CRS,
    grid: cf.Grid,
    target_crs: CRS,
    transform: Affine,
    shape: tuple[int, int],
    method: str,
) -> np.ndarray:
    """One time step of one variable warped onto the target grid, as floats with NaN for no data."""
    values = np.asarray(da.values[0])
    source_transform = grid.transform
    if grid.dy > 0:  # rows from south to north: warp them north-up
        values = values[::-1]
        source_transform = cf.Grid(
            grid.x0, grid.dx, grid.nx, grid.y0 + grid.dy * (grid.ny - 1), -grid.dy, grid.ny
        ).transform
    dtype = values.dtype if values.dtype == np.float32 else np.dtype("float64")
    source = values.astype(dtype)
    fill = da.encoding.get("_FillValue", da.attrs.get("_FillValue"))
    if fill is not None and np.issubdtype(values.dtype, np.integer):
        source[values == fill] = np.nan
    target = np.full(shape, np.nan, dtype=dtype)
    reproject(
        source,
        target,
        src_transform=source_transform,
        src_crs=RasterioCRS.from_wkt(source_crs.to_wkt()),
        src_nodata=np.nan,
        dst_transform=transform,
        dst_crs=RasterioCRS.from_wkt(target_crs.to_wkt()),
        dst_nodata=np.nan,
        resampling=_RESAMPLING[method],
    )
    return target


def _append(slab: xr.Dataset, store: Path, first: bool) -> None:
    """Write one resampled step to the job's own Zarr: the first creates it, the others append in time."""
    if first:
        chunks = {"time": 1, "y": min(slab.sizes["y"], 512), "x": min(slab.sizes["x"], 512)}
        encoding: dict[str, dict[str, object]] = {
            str(name): {"chunks": tuple(chunks[str(d)] for d in slab[name].dims)} for name in slab.data_vars
        }
        encoding["time"] = {"units": "nanoseconds since 1970-01-01", "dtype": "int64"}
        slab.to_zarr(store, mode="w", encoding=encoding, zarr_format=2, consolidated=True)
    else:
        slab.drop_vars(["y", "x", cf.GRID_MAPPING]).to_zarr(
            store, mode="a", append_dim="time", zarr_format=2, consolidated=True
        )


__all__ = ["resample", "select", "subset"]
