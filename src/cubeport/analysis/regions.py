"""Where a geometry falls on a cube's grid: the pixel under a point, or the window and mask of a polygon."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
import xarray as xr
from affine import Affine
from numpy.typing import NDArray
from pyproj import CRS, Transformer
from rasterio.features import geometry_mask
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

from cubeport import deadline
from cubeport.cubes import cf
from cubeport.errors import NotFoundError

LONLAT = CRS.from_epsg(4326)


@dataclass(frozen=True)
class Region:
    """A window of the grid (rows, cols) and which of its pixels belong to the geometry."""

    rows: slice
    cols: slice
    mask: np.ndarray  # bool, window shape; True inside


@dataclass(frozen=True)
class _Layout:
    grid: cf.Grid
    crs: CRS
    wraps: bool  # a lon/lat grid stored as 0..360
    to_cube: Transformer | None  # from lon/lat, for grids in other CRSs


@cf.per_dataset
def _layout(ds: xr.Dataset) -> _Layout:
    """The dataset's grid and CRS, worked out once per opened dataset (a millisecond a request otherwise)."""
    grid, crs = cf.Grid.of(ds), cf.crs_of(ds)
    wraps = bool(crs.is_geographic and max(grid.x0, grid.x0 + grid.dx * (grid.nx - 1)) > 180)
    to_cube = None if crs.is_geographic else Transformer.from_crs(LONLAT, crs, always_xy=True)
    return _Layout(grid, crs, wraps, to_cube)


def in_cube_crs(layout: _Layout, geometry: BaseGeometry) -> BaseGeometry:
    to_cube = layout.to_cube
    if to_cube is not None:

        def project(xy: NDArray[np.float64]) -> NDArray[np.float64]:
            return np.column_stack(to_cube.transform(xy[:, 0], xy[:, 1]))

        return shapely.transform(geometry, project)
    if layout.wraps and geometry.bounds[0] < 0:  # a 0..360 cube: shift western longitudes
        return shapely.transform(geometry, _east_of_zero)
    return geometry


def _east_of_zero(xy: NDArray[np.float64]) -> NDArray[np.float64]:
    """Longitudes below 0 as their 180..360 equivalents, for a 0..360 cube."""
    return np.column_stack((np.where(xy[:, 0] < 0, xy[:, 0] + 360, xy[:, 0]), xy[:, 1]))


def region(ds: xr.Dataset, geometry: BaseGeometry, all_touched: bool = False) -> Region:
    """The pixels of `ds` inside `geometry` (lon/lat): centres inside, or every pixel touched."""
    if geometry.is_empty:
        raise NotFoundError("the geometry is empty")
    layout = _layout(ds)
    grid = layout.grid
    local = in_cube_crs(layout, geometry)
    deadline.check("projecting the geometry")
    if isinstance(local, Point) and isinstance(geometry, Point):  # one is a point when the other is
        row, col = _pixel(grid, local, geometry)
        return Region(slice(row, row + 1), slice(col, col + 1), np.ones((1, 1), dtype=bool))
    shape = (grid.ny, grid.nx)
    inverse = ~grid.transform
    west, south, east, north = local.bounds
    cols = sorted(int(np.floor(c)) for c, _ in (inverse @ (west, north), inverse @ (east, south)))
    rows = sorted(int(np.floor(r)) for _, r in (inverse @ (west, north), inverse @ (east, south)))
    c0, c1 = max(cols[0] - 1, 0), min(cols[1] + 2, shape[1])
    r0, r1 = max(rows[0] - 1, 0), min(rows[1] + 2, shape[0])
    if c0 >= c1 or r0 >= r1:
        raise NotFoundError("the polygon does not overlap the dataset")
    window_transform = grid.transform @ Affine.translation(c0, r0)
    mask = geometry_mask(
        [local],
        out_shape=(r1 - r0, c1 - c0),
        transform=window_transform,
        all_touched=all_touched,
        invert=True,
    )
    deadline.check("masking the polygon")
    if not mask.any():
        raise NotFoundError("the polygon covers no pixel centre of the dataset; try all_touched=true")
    return Region(slice(r0, r1), slice(c0, c1), mask)


def _pixel(grid: cf.Grid, local: Point, point: Point) -> tuple[int, int]:
    """The (row, col) of the pixel under a point in the cube's CRS; NotFoundError outside the grid."""
    col, row = ~grid.transform @ (local.x, local.y)
    r, c = int(np.floor(row)), int(np.floor(col))
    if not (0 <= r < grid.ny and 0 <= c < grid.nx):
        raise NotFoundError(f"the point ({point.x:g}, {point.y:g}) is outside the dataset")
    return r, c
