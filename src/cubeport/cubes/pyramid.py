"""Pyramid levels: each level halves the resolution of the one before, so low-zoom tiles read little data.

Continuous variables are averaged over 2x2 blocks (NaN ignored); flags and classes take the nearest source
pixel, because the mean of two class codes is no class at all.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import xarray as xr

from cubeport.cubes.cf import spatial_dims


def is_categorical(var: xr.DataArray) -> bool:
    """True for flag and class variables (CF flag attributes, or integers that were never masked)."""
    if any(k in var.attrs for k in ("flag_values", "flag_masks", "flag_meanings")):
        return True
    return var.attrs.get("cubeport_kind") == "categorical" or np.issubdtype(var.dtype, np.integer)


def level_count(height: int, width: int, tile_size: int) -> int:
    """Number of levels (level 0 included) until the grid fits into one tile."""
    largest = max(height, width)
    return 1 + max(0, math.ceil(math.log2(largest / tile_size))) if largest > tile_size else 1


def downsample(ds: xr.Dataset) -> xr.Dataset:
    """`ds` at half the resolution; an odd last row or column is averaged on its own."""
    ydim, xdim = spatial_dims(ds)
    coords = {ydim: _halve_coord(ds[ydim].values), xdim: _halve_coord(ds[xdim].values)}
    out = {}
    for name, var in ds.data_vars.items():
        if ydim not in var.dims or xdim not in var.dims:
            continue
        values = _halve(
            np.asarray(var.values),
            var.get_axis_num(ydim),
            var.get_axis_num(xdim),
            categorical=is_categorical(var),
        )
        out[name] = xr.DataArray(values, dims=var.dims, attrs=var.attrs)
        out[name].encoding = dict(var.encoding)
    result = xr.Dataset(out, attrs=ds.attrs)
    result = result.assign_coords(
        {k: v for k, v in ds.coords.items() if ydim not in v.dims and xdim not in v.dims}
    )
    return result.assign_coords(
        {ydim: (ydim, coords[ydim], ds[ydim].attrs), xdim: (xdim, coords[xdim], ds[xdim].attrs)}
    )


def _halve_coord(values: np.ndarray) -> np.ndarray:
    if values.size % 2:
        step = values[-1] - values[-2] if values.size > 1 else 1
        values = np.append(values, values[-1] + step)
    means: np.ndarray = values.reshape(-1, 2).mean(axis=1)  # numpy types a mean along an axis as Any
    return means.astype(values.dtype)


def _halve(values: np.ndarray, yaxis: int, xaxis: int, categorical: bool) -> np.ndarray:
    pad = [(0, 0)] * values.ndim
    pad[yaxis] = (0, values.shape[yaxis] % 2)
    pad[xaxis] = (0, values.shape[xaxis] % 2)
    if any(p[1] for p in pad):
        values = np.pad(values, pad, mode="edge")
    shape = list(values.shape)
    # split y and x into (n/2, 2) blocks; x first so the y axis index stays valid
    shape[xaxis : xaxis + 1] = [shape[xaxis] // 2, 2]
    shape[yaxis : yaxis + 1] = [shape[yaxis] // 2, 2]
    blocks = values.reshape(shape)
    block_axes = (yaxis + 1, xaxis + 2)
    # numpy types `take`, `mean` and `nanmean` along axes as Any: the annotated local says what they give
    halved: np.ndarray
    if categorical:
        halved = blocks.take(0, axis=block_axes[1]).take(0, axis=block_axes[0])
    elif not np.issubdtype(values.dtype, np.floating):
        halved = np.round(blocks.mean(axis=block_axes)).astype(values.dtype)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=RuntimeWarning)  # all-NaN blocks stay NaN
            halved = np.nanmean(blocks, axis=block_axes).astype(values.dtype)
    return halved


def build_levels(ds: xr.Dataset, count: int) -> list[xr.Dataset]:
    """Levels 1..count-1 of `ds` (level 0 is `ds` itself)."""
    levels: list[xr.Dataset] = []
    current = ds
    for _ in range(1, count):
        current = downsample(current)
        levels.append(current)
    return levels
