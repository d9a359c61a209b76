"""Land mask on an output grid: GSHHG-style land polygons (or the GLOBE 30'' mask as a fallback), grown
seawards by a coastal buffer, so that coast, skerries and their radar clutter are no-data.

The buffer is a morphological dilation of the rasterised mask with a disk (OpenCV), not a buffer of the
polygons: its cost is pixels x disk rows whatever the coastline, some 0.1 s for 10,000 x 10,000 pixels and
a 4-pixel disk, against 1.1 s to buffer the Gulf of Finland's 260,000 GSHHG vertices by 200 m in shapely
(and 6 s for scipy.ndimage's binary dilation of the same raster).
"""

from __future__ import annotations

import importlib.util
import math
import zipfile
from pathlib import Path
from typing import Any

import cv2
import dask.array as da
import numpy as np
import pyogrio
import shapely
from affine import Affine
from pyproj import CRS, Proj, Transformer
from rasterio.features import rasterize
from rasterio.warp import Resampling, reproject, transform_bounds

from cubeport.errors import InputError
from cubeport.seaice.grid import Grid

GLOBE_PACKAGE = "global_land_mask"
GLOBE_FILE = "globe_combined_mask_compressed.npz"


def buffer_pixels(grid: Grid, buffer_m: float) -> float:
    """The buffer in pixels at the grid's centre: metres on the ground times the projection's scale
    factor there (the chart Mercator stretches 1.12x at 65 N, shrinks 0.81x at 54 N) over the pixel size."""
    if buffer_m <= 0:
        return 0.0
    if grid.crs.is_geographic:
        raise InputError("a coastal buffer in metres needs a projected grid, not one in degrees")
    xmin, ymin, xmax, ymax = grid.bounds
    lon, lat = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True).transform(
        (xmin + xmax) / 2, (ymin + ymax) / 2
    )
    scale = float(Proj(grid.crs).get_factors(lon, lat).parallel_scale)
    unit = float(grid.crs.axis_info[0].unit_conversion_factor) if grid.crs.axis_info else 1.0
    return buffer_m * scale / unit / grid.resolution


def disk(radius: float) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """Pixels whose centres are within `radius` pixels of the centre one."""
    r = math.floor(radius)
    y, x = np.ogrid[-r : r + 1, -r : r + 1]
    inside: np.ndarray[Any, np.dtype[np.bool_]] = x * x + y * y <= radius * radius
    return inside.astype(np.uint8)


def _padded(grid: Grid, pad: int) -> Grid:
    t = grid.transform
    return Grid(grid.crs, t @ Affine.translation(-pad, -pad), grid.width + 2 * pad, grid.height + 2 * pad)


def _polygons_mask(grid: Grid, path: str) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """Land polygons of `path` inside the grid (read with a bbox filter in the file's CRS), rasterised:
    a pixel is land when its centre is (all_touched=False)."""
    try:
        info = pyogrio.read_info(path)
    except Exception as exc:  # pyogrio raises DataSourceError and others from GDAL
        raise InputError(f"{path}: not a readable vector file of land polygons ({exc})") from exc
    file_crs = CRS.from_user_input(info["crs"]) if info.get("crs") else CRS.from_epsg(4326)
    bbox = transform_bounds(grid.crs, file_crs, *grid.bounds, densify_pts=21)
    frame = pyogrio.read_dataframe(path, bbox=tuple(bbox), columns=[])
    if len(frame) == 0:
        return np.zeros(grid.shape, dtype=np.uint8)
    geoms = frame.set_crs(file_crs, allow_override=True).to_crs(grid.crs).geometry.values
    geoms = geoms[~(shapely.is_empty(geoms) | shapely.is_missing(geoms))]
    if len(geoms) == 0:
        return np.zeros(grid.shape, dtype=np.uint8)
    return rasterize(  # type: ignore[no-any-return]
        ((g, 1) for g in geoms),
        out_shape=grid.shape,
        transform=grid.transform,
        fill=0,
        all_touched=False,
        dtype="uint8",
    )


def _globe_file() -> Path:
    """The package's data file, found without importing the package (its import loads the whole mask)."""
    spec = importlib.util.find_spec(GLOBE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise InputError(f"no land polygons given and the fallback package {GLOBE_PACKAGE} is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / GLOBE_FILE


def _globe_window(
    south: float, north: float, west: float, east: float
) -> tuple[np.ndarray[Any, np.dtype[np.uint8]], Affine]:
    """Rows and columns of the GLOBE land mask (1 = land) covering a lon/lat box, and their transform.

    global_land_mask's `globe` module decompresses the whole 21,600 x 43,200 mask (930 MB, 5 s) at import;
    this streams only the rows needed from the same file, which is stored north to south.
    """
    path = _globe_file()
    with zipfile.ZipFile(str(path)) as archive:
        lat: np.ndarray[Any, Any] = np.load(archive.open("lat.npy"))
        lon = np.load(archive.open("lon.npy"))
        step_lat, step_lon = float(lat[1] - lat[0]), float(lon[1] - lon[0])
        # the package indexes with int((v - v0) / step): cell i spans [v0 + i*step, v0 + (i+1)*step)
        row0 = max(0, math.floor((north - lat[0]) / step_lat) - 1)
        row1 = min(len(lat), math.floor((south - lat[0]) / step_lat) + 2)
        col0 = max(0, math.floor((west - lon[0]) / step_lon) - 1)
        col1 = min(len(lon), math.floor((east - lon[0]) / step_lon) + 2)
        with archive.open("mask.npy") as f:
            version = np.lib.format.read_magic(f)
            if version != (1, 0):
                raise InputError(f"{path}: unexpected .npy version {version}")
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            if fortran or dtype != np.bool_ or tuple(shape) != (len(lat), len(lon)):
                raise InputError(f"{path}: the GLOBE mask is not the {len(lat)} x {len(lon)} boolean array")
            f.seek(f.tell() + row0 * len(lon))
            rows = np.frombuffer(f.read((row1 - row0) * len(lon)), dtype=np.bool_).reshape(-1, len(lon))
    ocean = rows[:, col0:col1]
    transform = Affine(step_lon, 0, lon[0] + col0 * step_lon, 0, step_lat, lat[0] + row0 * step_lat)
    return (~ocean).astype(np.uint8), transform


def _globe_mask(grid: Grid) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """The GLOBE mask sampled at the grid's pixel centres (nearest-neighbour warp does exactly that)."""
    west, south, east, north = transform_bounds(grid.crs, "EPSG:4326", *grid.bounds, densify_pts=21)
    land, transform = _globe_window(south, north, west, east)
    out = np.zeros(grid.shape, dtype=np.uint8)
    reproject(
        land,
        out,
        src_transform=transform,
        src_crs="EPSG:4326",
        dst_transform=grid.transform,
        dst_crs=grid.crs,
        resampling=Resampling.nearest,
        num_threads=2,
    )
    return out


def land_mask(
    grid: Grid, polygons: str | None = None, buffer_m: float = 0.0
) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """True where the grid's pixels are land or within `buffer_m` metres of it.

    Land comes from `polygons` (a vector file, e.g. GSHHG full resolution) or, when None, from the GLOBE
    30'' (about 1 km) mask of global-land-mask, which is coarse but always there. Land just outside the
    grid still grows into it: the mask is made on a grid wider by the buffer, then cut.
    """
    radius = buffer_pixels(grid, buffer_m)
    pad = math.ceil(radius)
    wide = _padded(grid, pad)
    mask: np.ndarray[Any, Any] = _polygons_mask(wide, polygons) if polygons is not None else _globe_mask(wide)
    if radius >= 1:
        mask = cv2.dilate(mask, disk(radius))
    return mask[pad : pad + grid.height, pad : pad + grid.width].astype(bool)


def apply_land_mask(array: Any, mask: np.ndarray[Any, Any], nodata: float | int = float("nan")) -> Any:
    """`array` with `nodata` where `mask` is True (a numpy copy, or lazily for a dask array); integer
    (class) arrays take their type's largest value (CLASS_NODATA for uint8) when `nodata` is NaN."""
    if np.issubdtype(array.dtype, np.integer) and isinstance(nodata, float) and math.isnan(nodata):
        nodata = int(np.iinfo(array.dtype).max)
    if tuple(array.shape) != tuple(mask.shape):
        raise InputError(f"a land mask of shape {mask.shape} does not fit an array of shape {array.shape}")
    if isinstance(array, da.Array):
        return da.where(mask, np.asarray(nodata, dtype=array.dtype), array)
    out = np.array(array, copy=True)
    out[mask] = nodata
    return out
