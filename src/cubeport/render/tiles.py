"""Map tiles from a cube: pick the pyramid level, find each output pixel's source pixel, read only that
window (no dask), colour the values through a lookup table.

The source pixel of every output pixel comes from transforming the tile's pixel centres into the cube's
CRS. Between Web Mercator or lon/lat tiles and a lon/lat or Web Mercator cube the transform is
separable (x depends on the column only, y on the row only), so 2 x 256 points are transformed instead
of 65,536; other pairs (e.g. TM35FIN tiles over a lon/lat cube, or lon/lat tiles over a UTM cube) are
transformed point by point. Both cases end in the same fancy indexing, by broadcasting.
"""

from __future__ import annotations

import math
from typing import Literal

import morecantile
import numpy as np
from pyproj import CRS, Transformer

from cubeport.cubes import cf
from cubeport.cubes.source import CubeSource
from cubeport.errors import InputError, NotFoundError
from cubeport.render.colormaps import COLOURS, NODATA_INDEX, categorical_table, lookup_table
from cubeport.render.tms import TILE_SIZE, pixel_centres

Resampling = Literal["nearest", "bilinear"]
Norm = Literal["lin", "log", "cat"]
MAX_WINDOW = 4096 * 4096  # source pixels one tile may read; a coarser level is used past it


class CubeLevels:
    """One version of a cube opened for rendering: every pyramid level, lazily indexed, with its grid."""

    def __init__(self, store: CubeSource, cube_id: str) -> None:
        pointer = store.pointer(cube_id)
        self.cube_id, self.tag = cube_id, pointer.tag
        self.levels = [store.open(cube_id, level=level, dask=False) for level in range(pointer.levels)]
        base = self.levels[0]
        self.crs = cf.crs_of(base)
        self.grids = [cf.Grid.of(ds) for ds in self.levels]
        self.ydim, self.xdim = cf.spatial_dims(base)
        self.times = base["time"].values
        # a global lon/lat cube stored as 0..360 also answers for -180..0
        first = self.grids[0]
        self.wraps = self.crs.is_geographic and max(first.x0, first.x0 + first.dx * (first.nx - 1)) > 180.0

        self._transformers: dict[str | None, tuple[Transformer, bool]] = {}  # by TMS id (optional there)

    def check_variable(self, name: str) -> None:
        cf.check_variable(self.levels[0], name, self.cube_id)

    def transformer(self, tms: morecantile.TileMatrixSet) -> tuple[Transformer, bool]:
        """From the tiles' CRS to the cube's, and whether it is separable (x from columns, y from rows)."""
        if tms.id not in self._transformers:
            tms_crs = tms.crs._pyproj_crs
            self._transformers[tms.id] = (
                Transformer.from_crs(tms_crs, self.crs, always_xy=True),
                _separable(tms_crs) and _separable(self.crs),
            )
        return self._transformers[tms.id]


def render_values(
    cube: CubeLevels,
    variable: str,
    time_index: int,
    tms: morecantile.TileMatrixSet,
    z: int,
    x: int,
    y: int,
    resampling: Resampling = "nearest",
) -> np.ndarray | None:
    """The tile's values (float, NaN where there is no data), or None when the tile misses the cube."""
    cube.check_variable(variable)
    if not 0 <= time_index < len(cube.times):
        raise NotFoundError(
            f"time index {time_index} not in cube {cube.cube_id!r} (0..{len(cube.times) - 1})"
        )
    xs, ys = pixel_centres(tms, z, x, y)
    cx, cy = _to_cube_crs(*cube.transformer(tms), xs, ys)
    if cube.wraps:
        cx = np.where(cx < 0, cx + 360.0, cx)
    level = _pick_level(cube, cx, cy)
    while True:
        grid = cube.grids[level]
        fx, fy = (cx - grid.x0) / grid.dx, (cy - grid.y0) / grid.dy  # fractional pixel positions
        ix, iy = np.rint(fx).astype(np.int64), np.rint(fy).astype(np.int64)
        inside = (ix >= 0) & (ix < grid.nx) & (iy >= 0) & (iy < grid.ny)
        if not inside.any():
            return None
        cols, rows = ix[(ix >= 0) & (ix < grid.nx)], iy[(iy >= 0) & (iy < grid.ny)]
        c0, c1, r0, r1 = int(cols.min()), int(cols.max()) + 1, int(rows.min()), int(rows.max()) + 1
        if resampling == "bilinear":
            c0, c1, r0, r1 = max(c0 - 1, 0), min(c1 + 1, grid.nx), max(r0 - 1, 0), min(r1 + 1, grid.ny)
        if (c1 - c0) * (r1 - r0) <= MAX_WINDOW or level == len(cube.levels) - 1:
            break
        level += 1
    da = cube.levels[level][variable]
    window = np.asarray(
        da.isel({"time": time_index, cube.ydim: slice(r0, r1), cube.xdim: slice(c0, c1)}).values,
        dtype=np.float64,
    )
    if resampling == "bilinear":
        values = _bilinear(window, fx - c0, fy - r0)
    else:
        values = window[np.clip(iy - r0, 0, r1 - r0 - 1), np.clip(ix - c0, 0, c1 - c0 - 1)]
    values = np.where(inside, values, np.nan)
    return np.broadcast_to(values, (TILE_SIZE, TILE_SIZE))


def _to_cube_crs(
    transformer: Transformer, separable: bool, xs: np.ndarray, ys: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres in the cube's CRS: a (1, 256) row of x and a (256, 1) column of y when the transform is
    separable, otherwise two (256, 256) arrays."""
    if separable:
        cx, _ = transformer.transform(xs, np.full_like(xs, ys[len(ys) // 2]))
        _, cy = transformer.transform(np.full_like(ys, xs[len(xs) // 2]), ys)
        return np.asarray(cx)[None, :], np.asarray(cy)[:, None]
    gx, gy = np.meshgrid(xs, ys)
    cx, cy = transformer.transform(gx, gy)
    return np.asarray(cx), np.asarray(cy)


def _separable(crs: CRS) -> bool:
    return bool(crs.is_geographic) or crs.to_epsg() == 3857


def _pick_level(cube: CubeLevels, cx: np.ndarray, cy: np.ndarray) -> int:
    """The coarsest level that is still at least as fine as the tile's pixels."""
    row = cx[cx.shape[0] // 2] if cx.ndim == 2 and cx.shape[0] > 1 else cx.ravel()
    finite = row[np.isfinite(row)]
    if finite.size < 2:
        return 0
    tile_step = abs(float(finite[-1] - finite[0])) / (finite.size - 1)
    base_step = abs(cube.grids[0].dx)
    if tile_step <= base_step:
        return 0
    return min(int(math.floor(math.log2(tile_step / base_step) + 1e-9)), len(cube.levels) - 1)


def _bilinear(window: np.ndarray, fx: np.ndarray, fy: np.ndarray) -> np.ndarray:
    """Bilinear interpolation at fractional positions; where a neighbour is missing, the nearest value."""
    height, width = window.shape
    x0 = np.clip(np.floor(fx).astype(np.int64), 0, width - 1)
    y0 = np.clip(np.floor(fy).astype(np.int64), 0, height - 1)
    x1, y1 = np.minimum(x0 + 1, width - 1), np.minimum(y0 + 1, height - 1)
    wx, wy = np.clip(fx - x0, 0.0, 1.0), np.clip(fy - y0, 0.0, 1.0)
    top = window[y0, x0] * (1 - wx) + window[y0, x1] * wx
    bottom = window[y1, x0] * (1 - wx) + window[y1, x1] * wx
    values = top * (1 - wy) + bottom * wy
    nearest = window[
        np.clip(np.rint(fy).astype(np.int64), 0, height - 1),
        np.clip(np.rint(fx).astype(np.int64), 0, width - 1),
    ]
    blended: np.ndarray = np.where(np.isfinite(values), values, nearest)  # numpy types np.where as Any
    return blended


def colour_indices(values: np.ndarray, vmin: float, vmax: float, norm: Norm = "lin") -> np.ndarray:
    """Palette indices 0..254 for values (clipped to vmin..vmax), 255 where there is no value."""
    missing = ~np.isfinite(values)
    if norm == "cat":
        indices = np.where(missing, 0, values).astype(np.int64) % COLOURS
    else:
        if norm == "log":
            if vmin <= 0:
                raise InputError("a log norm needs vmin > 0")
            with np.errstate(divide="ignore", invalid="ignore"):
                scaled = (np.log10(np.maximum(values, vmin)) - math.log10(vmin)) / (
                    math.log10(vmax) - math.log10(vmin)
                )
        else:
            scaled = (values - vmin) / (vmax - vmin)
        indices = np.clip(np.nan_to_num(scaled, nan=0.0) * COLOURS, 0, COLOURS - 1).astype(np.int64)
    return np.where(missing, NODATA_INDEX, indices).astype(np.uint8)


def palette(colormap: str, norm: Norm) -> np.ndarray:
    return categorical_table(colormap) if norm == "cat" else lookup_table(colormap)
