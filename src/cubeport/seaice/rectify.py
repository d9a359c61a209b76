"""Georectification: radar-geometry (or other gridded) arrays onto a north-up `Grid`, and COG output.

GDAL's warper (rasterio.warp.reproject, 2 threads) does the resampling from GCPs (a polynomial whose order
follows their count, or a thin-plate spline when there are many), RPCs, or a CRS with an affine transform.
Two things keep a 16,000 x 16,000 frame cheap: when the output is much coarser (6 m pixels to a 50 m chart
grid) floats are first block-averaged, which is SAR multilooking and leaves GDAL's kernel a quarter of the
pixels; and a large dask input is warped window by window of the output grid, each window computing only
the source rectangle it needs, so the frame is never in memory whole.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import cv2
import dask.array as da
import numpy as np
import rasterio
import rasterio.shutil
from affine import Affine
from dask.base import compute
from pyproj import CRS, Transformer
from rasterio._err import CPLE_BaseError
from rasterio.control import GroundControlPoint
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.rpc import RPC
from rasterio.transform import GCPTransformer, RPCTransformer
from rasterio.warp import reproject

from cubeport.cubes.readers.base import Georeference
from cubeport.errors import InputError
from cubeport.seaice.grid import CHART_MERCATOR, Grid, grid_covering

ResamplingName = Literal["nearest", "bilinear", "cubic", "average"]
Method = Literal["auto", "transform", "gcps", "rpcs"]

RESAMPLING: dict[str, Resampling] = {
    "nearest": Resampling.nearest,
    "bilinear": Resampling.bilinear,
    "cubic": Resampling.cubic,
    "average": Resampling.average,
}
# At or above this many GCPs a thin-plate spline (exact at every GCP) replaces the polynomial: ICEYE gives
# hundreds on a regular grid, computed from the orbit and a DEM, so interpolating them exactly is safe.
TPS_MIN_GCPS = 100
# Source pixels one output window may need at once when the input is dask (256 MiB of float32).
MAX_SOURCE_PIXELS = 64 * 2**20
WARP_MEM_LIMIT_MB = 256


def gcp_order(count: int) -> int:
    """The polynomial order `count` GCPs can carry with some redundancy (GDAL needs 3, 6, 10 at least)."""
    if count < 3:
        raise InputError(f"{count} GCPs cannot georeference an image: at least 3 are needed")
    if count < 10:
        return 1
    if count < 20:
        return 2
    return 3


def georef_from_corners(corners: Mapping[str, Any]) -> Georeference:
    """A GCP georeference (EPSG:4326) from scene corners with 0-based pixel-centre `col`, `row`, `lat`,
    `lon` attributes (IceyeMetadata.corners): GDAL counts from pixel edges, hence the half pixel."""
    if len(corners) < 3:
        raise InputError(f"{len(corners)} corner coordinates cannot georeference an image: 3 or 4 are needed")
    gcps = tuple(
        GroundControlPoint(row=c.row + 0.5, col=c.col + 0.5, x=c.lon, y=c.lat, id=name)
        for name, c in corners.items()
    )
    return Georeference(gcps=gcps, gcps_crs=CRS.from_epsg(4326))


def _method(georef: Georeference, method: Method) -> str:
    if method == "auto":
        if georef.crs is not None and georef.transform is not None and not georef.transform.is_identity:
            return "transform"
        if georef.gcps:
            return "gcps"
        if georef.rpcs is not None:
            return "rpcs"
        raise InputError(
            "the image has no georeferencing (no CRS and transform, GCPs or RPCs) to rectify from"
        )
    if method == "transform" and (georef.crs is None or georef.transform is None):
        raise InputError("rectification from a transform needs the image's CRS and affine transform")
    if method == "gcps" and not georef.gcps:
        raise InputError("rectification from GCPs asked for, but the image has none")
    if method == "rpcs" and georef.rpcs is None:
        raise InputError("rectification from RPCs asked for, but the image has none")
    return method


def _gcps_crs(georef: Georeference) -> CRS:
    return georef.gcps_crs or CRS.from_epsg(4326)


def _nodata_for(dtype: np.dtype[Any], nodata: float) -> float | int:
    """Floats keep `nodata` (NaN by default); integer (class) rasters use their type's largest value, so
    uint8 classes get CLASS_NODATA = 255."""
    if np.issubdtype(dtype, np.integer):
        return int(np.iinfo(dtype).max)
    return nodata


def _out_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    if dtype == np.bool_:
        return np.dtype(np.uint8)
    if np.issubdtype(dtype, np.integer):
        return dtype
    return np.dtype(np.float32)


def _resampling_for(dtype: np.dtype[Any], resampling: str) -> Resampling:
    """Integer rasters are classes or codes: averaging them would invent classes, so always nearest."""
    if np.issubdtype(dtype, np.integer):
        return Resampling.nearest
    return RESAMPLING[resampling]


def _reduced(georef: Georeference, method: str, factor: int) -> Georeference:
    """The georeference of the image block-averaged by `factor` (pixel edges divide by it)."""
    if factor == 1:
        return georef
    if method == "transform":
        assert georef.transform is not None
        return replace(georef, transform=georef.transform @ Affine.scale(factor))
    if method == "gcps":
        gcps = tuple(
            GroundControlPoint(
                row=g.row / factor, col=g.col / factor, x=g.x, y=g.y, z=g.z, id=g.id, info=g.info
            )
            for g in georef.gcps
        )
        return replace(georef, gcps=gcps)
    assert georef.rpcs is not None
    # RPC lines and samples count from the first pixel's centre: through edges, then back
    rpc = georef.rpcs.to_dict()
    for off, scale in (("line_off", "line_scale"), ("samp_off", "samp_scale")):
        rpc[off] = (rpc[off] + 0.5) / factor - 0.5
        rpc[scale] = rpc[scale] / factor
    return replace(georef, rpcs=RPC(**rpc))


def _source_kwargs(
    georef: Georeference, method: str, rpc_height: float, row0: int = 0, col0: int = 0
) -> dict[str, Any]:
    """reproject() arguments describing the source, for the window starting at (row0, col0)."""
    if method == "transform":
        assert georef.transform is not None
        return {"src_transform": georef.transform @ Affine.translation(col0, row0), "src_crs": georef.crs}
    if method == "gcps":
        gcps = [
            GroundControlPoint(row=g.row - row0, col=g.col - col0, x=g.x, y=g.y, z=g.z, id=g.id, info=g.info)
            for g in georef.gcps
        ]
        kwargs: dict[str, Any] = {"gcps": gcps, "src_crs": _gcps_crs(georef)}
        if len(gcps) >= TPS_MIN_GCPS:
            kwargs["SRC_METHOD"] = "GCP_TPS"
        else:
            kwargs["SRC_METHOD"] = "GCP_POLYNOMIAL"
            kwargs["MAX_GCP_ORDER"] = str(gcp_order(len(gcps)))
        return kwargs
    assert georef.rpcs is not None
    rpc = georef.rpcs.to_dict()
    rpc["line_off"] -= row0
    rpc["samp_off"] -= col0
    return {"rpcs": RPC(**rpc), "src_crs": CRS.from_epsg(4326), "RPC_HEIGHT": str(rpc_height)}


def _apply(t: Affine, cols: Any, rows: Any) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """An affine transform on arrays of (col, row) (the affine package types it for scalars only)."""
    cols, rows = np.asarray(cols, dtype=float), np.asarray(rows, dtype=float)
    return t.a * cols + t.b * rows + t.c, t.d * cols + t.e * rows + t.f


def _pixel_locator(
    georef: Georeference, method: str, crs: CRS, rpc_height: float
) -> Callable[[Any, Any], tuple[Any, Any]]:
    """(x, y) in `crs` -> fractional source (row, col) at pixel edges, near where the warper puts them."""

    def identity(v: Any) -> Any:
        return v

    if method == "transform":
        assert georef.crs is not None and georef.transform is not None
        to_src = Transformer.from_crs(crs, georef.crs, always_xy=True)
        inverse = ~georef.transform

        def locate_affine(xs: Any, ys: Any) -> tuple[Any, Any]:
            sx, sy = to_src.transform(xs, ys)
            cols, rows = _apply(inverse, sx, sy)
            return rows, cols

        return locate_affine
    target = _gcps_crs(georef) if method == "gcps" else CRS.from_epsg(4326)
    to_geo = Transformer.from_crs(crs, target, always_xy=True)
    transformer: GCPTransformer | RPCTransformer
    if method == "gcps":
        transformer = GCPTransformer(list(georef.gcps), tps=len(georef.gcps) >= TPS_MIN_GCPS)
    else:
        assert georef.rpcs is not None
        transformer = RPCTransformer(georef.rpcs)

    def locate_geo(xs: Any, ys: Any) -> tuple[Any, Any]:
        gx, gy = to_geo.transform(xs, ys)
        n = np.size(gx)
        zs = [rpc_height] * n if method == "rpcs" else None
        rows, cols = transformer.rowcol(list(np.ravel(gx)), list(np.ravel(gy)), zs=zs, op=identity)
        return np.asarray(rows, dtype=float), np.asarray(cols, dtype=float)

    return locate_geo


def _sample_points(
    locate: Callable[[Any, Any], tuple[Any, Any]], grid: Grid, window: tuple[int, int, int, int], n: int = 17
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], float]:
    """Source (rows, cols) of an n x n lattice over the output window, and the lattice step (pixels)."""
    r, c, h, w = window
    rows, cols = np.meshgrid(np.linspace(r, r + h, n), np.linspace(c, c + w, n), indexing="ij")
    xs, ys = _apply(grid.transform, cols.ravel(), rows.ravel())
    src_rows, src_cols = locate(np.asarray(xs), np.asarray(ys))
    return (
        np.asarray(src_rows, dtype=float).reshape(n, n),
        np.asarray(src_cols, dtype=float).reshape(n, n),
        max(h, w) / (n - 1),
    )


def _spacing(rows: np.ndarray[Any, Any], cols: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Source distance between neighbouring lattice points, both directions."""
    return np.concatenate(
        [
            np.hypot(np.diff(rows, axis=0), np.diff(cols, axis=0)).ravel(),
            np.hypot(np.diff(rows, axis=1), np.diff(cols, axis=1)).ravel(),
        ]
    )


def _source_window(
    locate: Callable[[Any, Any], tuple[Any, Any]],
    grid: Grid,
    window: tuple[int, int, int, int],
    shape: tuple[int, int],
) -> tuple[int, int, int, int] | None:
    """The source rectangle (row0, col0, row1, col1) the output window needs, with a margin for the
    resampling kernel (which widens when downsampling); None when the window misses the image."""
    rows, cols, step = _sample_points(locate, grid, window)
    ok = np.isfinite(rows) & np.isfinite(cols)
    if not ok.any():
        return None
    spread = _spacing(rows, cols)
    per_pixel = float(np.nanmax(spread)) / max(step, 1.0) if np.isfinite(spread).any() else 1.0
    margin = math.ceil(3 * max(1.0, per_pixel)) + 2
    row0 = max(0, math.floor(float(rows[ok].min())) - margin)
    col0 = max(0, math.floor(float(cols[ok].min())) - margin)
    row1 = min(shape[0], math.ceil(float(rows[ok].max())) + margin + 1)
    col1 = min(shape[1], math.ceil(float(cols[ok].max())) + margin + 1)
    if row0 >= row1 or col0 >= col1:
        return None
    return row0, col0, row1, col1


def _scale(locate: Callable[[Any, Any], tuple[Any, Any]], grid: Grid) -> float:
    """Source pixels per output pixel (along a side), the median over the grid."""
    rows, cols, step = _sample_points(locate, grid, (0, 0, grid.height, grid.width))
    spread = _spacing(rows, cols)
    spread = spread[np.isfinite(spread)]
    return float(np.median(spread)) / step if spread.size and step > 0 else 1.0


def _block_mean_numpy(a: np.ndarray[Any, Any], factor: int) -> np.ndarray[Any, Any]:
    """The mean of each factor x factor block, ignoring NaN (all NaN -> NaN); a partial last block is
    the mean of what it holds. OpenCV's area resampling is an exact block mean for an integer factor and
    some 5x faster than numpy's reshape-mean; rows go in strips to keep temporaries small."""
    rows, cols = a.shape
    out = np.empty((-(-rows // factor), -(-cols // factor)), dtype=np.float32)
    strip = factor * max(1, 4096 // factor)
    for r in range(0, rows, strip):
        x = np.asarray(a[r : r + strip], dtype=np.float32)
        ok = ~np.isnan(x)
        values = np.where(ok, x, np.float32(0))
        weights = ok.astype(np.float32)
        pad = ((0, -x.shape[0] % factor), (0, -cols % factor))
        if pad[0][1] or pad[1][1]:
            values, weights = np.pad(values, pad), np.pad(weights, pad)
        size = (values.shape[1] // factor, values.shape[0] // factor)
        total = cv2.resize(values, size, interpolation=cv2.INTER_AREA)
        count = cv2.resize(weights, size, interpolation=cv2.INTER_AREA)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[r // factor : r // factor + size[1]] = total / count
    return out


def _block_mean(a: Any, factor: int) -> Any:
    """Block mean of a numpy or (lazily, per chunk) dask array."""
    if factor == 1:
        return a
    if not isinstance(a, da.Array):
        return _block_mean_numpy(np.asarray(a), factor)
    chunks = tuple(max(factor, round(c / factor) * factor) for c in (a.chunksize[0], a.chunksize[1]))
    a = a.rechunk(chunks)  # type: ignore[no-untyped-call]
    out_chunks = tuple(tuple(-(-c // factor) for c in axis) for axis in a.chunks)
    return a.map_blocks(_block_mean_numpy, factor, chunks=out_chunks, dtype=np.float32)


def _prepare(block: Any, dtype: np.dtype[Any]) -> np.ndarray[Any, Any]:
    a = np.asarray(block)
    if a.dtype == np.bool_:
        return np.ascontiguousarray(a, dtype=np.uint8)
    return np.ascontiguousarray(a, dtype=dtype)


def _warp_group(
    sources: dict[str, Any],
    georef: Georeference,
    method: str,
    grid: Grid,
    out: dict[str, np.ndarray[Any, Any]],
    resampling: str,
    nodata: float,
    num_threads: int,
    max_source_pixels: int,
    rpc_height: float,
) -> None:
    """Warp same-shaped sources into `out`: numpy whole, dask whole when small, else by output windows."""
    shape: tuple[int, int] = next(iter(sources.values())).shape

    def warp_into(blocks: dict[str, Any], src: dict[str, Any], window: tuple[int, int, int, int]) -> None:
        r, c, h, w = window
        dst_transform = grid.transform @ Affine.translation(c, r)
        for name, block in blocks.items():
            dtype = out[name].dtype
            fill = _nodata_for(dtype, nodata)
            target = out[name] if (h, w) == grid.shape else np.full((h, w), fill, dtype=dtype)
            reproject(
                _prepare(block, dtype),
                target,
                src_nodata=fill,
                dst_transform=dst_transform,
                dst_crs=grid.crs,
                dst_nodata=fill,
                resampling=_resampling_for(dtype, resampling),
                num_threads=num_threads,
                warp_mem_limit=WARP_MEM_LIMIT_MB,
                **src,
            )
            if target is not out[name]:
                out[name][r : r + h, c : c + w] = target

    whole = (0, 0, grid.height, grid.width)
    lazy = {n: a for n, a in sources.items() if isinstance(a, da.Array)}
    if not lazy or shape[0] * shape[1] * len(lazy) <= max_source_pixels:
        # one compute for all, so work they share upstream (e.g. calibration) is done once
        computed = dict(zip(lazy, compute(*lazy.values()), strict=True))  # type: ignore[no-untyped-call]
        warp_into(
            {n: computed.get(n, a) for n, a in sources.items()},
            _source_kwargs(georef, method, rpc_height),
            whole,
        )
        return
    locate = _pixel_locator(georef, method, grid.crs, rpc_height)
    probe = _source_window(locate, grid, whole, shape)
    if probe is None:
        return
    # output tiles whose source rectangles stay near the budget
    per_out_pixel = (probe[2] - probe[0]) * (probe[3] - probe[1]) * len(sources) / (grid.height * grid.width)
    tile = max(256, int(math.sqrt(max_source_pixels / max(per_out_pixel, 1e-6))) // 256 * 256)
    for r in range(0, grid.height, tile):
        for c in range(0, grid.width, tile):
            window = (r, c, min(tile, grid.height - r), min(tile, grid.width - c))
            found = _source_window(locate, grid, window, shape)
            if found is None:
                continue
            row0, col0, row1, col1 = found
            blocks = compute(*(a[row0:row1, col0:col1] for a in sources.values()))  # type: ignore[no-untyped-call]
            warp_into(
                dict(zip(sources, blocks, strict=True)),
                _source_kwargs(georef, method, rpc_height, row0, col0),
                window,
            )


def rectify(
    arrays: Mapping[str, Any],
    georef: Georeference,
    grid: Grid,
    resampling: ResamplingName = "bilinear",
    nodata: float = float("nan"),
    method: Method = "auto",
    num_threads: int = 2,
    rpc_height: float = 0.0,
    max_source_pixels: int = MAX_SOURCE_PIXELS,
) -> dict[str, np.ndarray[Any, Any]]:
    """Each (rows, cols) array of one image warped onto `grid`: floats become float32 with `nodata`;
    integer (class) rasters keep their type, are resampled nearest and get their type's maximum as no-data.

    `method` picks the georeferencing ("auto": CRS + transform, else GCPs, else RPCs, evaluated at
    `rpc_height` metres above the ellipsoid: the sea surface). When the output is several times coarser
    than the image, floats are first block-averaged (NaN-aware, like multilooking) by half that ratio, so
    GDAL's kernel has a quarter as many pixels to visit. Numpy inputs are then warped whole (GDAL chunks
    the work itself); dask inputs whole when small, else window by window of the output grid, each window
    computing only the source rectangle it needs (about `max_source_pixels` at most).
    """
    if not arrays:
        return {}
    how = _method(georef, method)
    if resampling not in RESAMPLING:
        raise InputError(f"unknown resampling {resampling!r}: use one of {', '.join(RESAMPLING)}")
    shapes = {tuple(a.shape) for a in arrays.values()}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise InputError(f"arrays to rectify must be 2-D and of one shape, not {sorted(shapes)}")
    out: dict[str, np.ndarray[Any, Any]] = {}
    for name, a in arrays.items():
        dtype = _out_dtype(np.dtype(a.dtype))
        out[name] = np.full(grid.shape, _nodata_for(dtype, nodata), dtype=dtype)

    try:
        averaged = [n for n in arrays if _resampling_for(out[n].dtype, resampling) != Resampling.nearest]
        factor = 1
        if averaged:
            factor = max(1, int(_scale(_pixel_locator(georef, how, grid.crs, rpc_height), grid) // 2))
        groups = [(factor, averaged), (1, [n for n in arrays if n not in averaged])]
        for k, names in groups:
            if names:
                sources = {n: _block_mean(arrays[n], k) for n in names}
                _warp_group(
                    sources,
                    _reduced(georef, how, k),
                    how,
                    grid,
                    out,
                    resampling,
                    nodata,
                    num_threads,
                    max_source_pixels,
                    rpc_height,
                )
    except (CPLE_BaseError, RasterioError) as exc:
        raise InputError(f"the image cannot be rectified from its {how}: {exc}") from exc
    return out


def scene_grid(
    georef: Georeference,
    crs: str | CRS = CHART_MERCATOR,
    resolution: float = 50.0,
    shape: tuple[int, int] | None = None,
    method: Method = "auto",
    rpc_height: float = 0.0,
) -> Grid:
    """The grid of `resolution` covering the scene: the GCP footprint, or (given the image `shape`) its
    edges traced through the georeferencing, which a transform or RPC georeference needs."""
    how = _method(georef, method)
    if how == "gcps" and shape is None:
        to_geo = Transformer.from_crs(_gcps_crs(georef), "EPSG:4326", always_xy=True)
        lons, lats = to_geo.transform([g.x for g in georef.gcps], [g.y for g in georef.gcps])
        return grid_covering(list(lons), list(lats), crs, resolution)
    if shape is None:
        raise InputError("the scene's footprint from a transform or RPCs needs the image shape (rows, cols)")
    rows_n, cols_n = shape
    t = np.linspace(0.0, 1.0, 65)
    edge_rows = np.concatenate([t * rows_n, np.full_like(t, rows_n), t * rows_n, np.zeros_like(t)])
    edge_cols = np.concatenate([np.zeros_like(t), t * cols_n, np.full_like(t, cols_n), t * cols_n])
    if how == "transform":
        assert georef.transform is not None and georef.crs is not None
        xs, ys = _apply(georef.transform, edge_cols, edge_rows)
        lons, lats = Transformer.from_crs(georef.crs, "EPSG:4326", always_xy=True).transform(xs, ys)
    else:
        transformer: GCPTransformer | RPCTransformer
        if how == "gcps":
            transformer = GCPTransformer(list(georef.gcps), tps=len(georef.gcps) >= TPS_MIN_GCPS)
            src_crs = _gcps_crs(georef)
        else:
            assert georef.rpcs is not None
            transformer, src_crs = RPCTransformer(georef.rpcs), CRS.from_epsg(4326)
        zs = [rpc_height] * edge_rows.size if how == "rpcs" else None
        gx, gy = transformer.xy(list(edge_rows), list(edge_cols), zs=zs, offset="ul")
        lons, lats = Transformer.from_crs(src_crs, "EPSG:4326", always_xy=True).transform(gx, gy)
    return grid_covering(list(np.ravel(lons)), list(np.ravel(lats)), crs, resolution)


def write_cog(
    path: str | os.PathLike[str],
    arrays: Mapping[str, Any] | np.ndarray[Any, Any],
    grid: Grid,
    nodata: float | None = float("nan"),
    band_names: Sequence[str] | None = None,
    overview_resampling: str | None = None,
    compress: str = "DEFLATE",
    blocksize: int = 512,
) -> Path:
    """A Cloud-Optimized GeoTIFF of one band per array, with overviews, written atomically (temporary
    files beside `path`, then a rename), so readers never see a half-written file.

    Overviews average floats and take the nearest value of integers (classes) unless told otherwise.
    """
    target = Path(path)
    if isinstance(arrays, Mapping):
        names = list(band_names) if band_names is not None else list(arrays)
        bands = list(arrays.values())
    else:
        bands = [arrays]
        names = list(band_names) if band_names is not None else []
    if not bands:
        raise InputError(f"{target}: nothing to write")
    if names and len(names) != len(bands):
        raise InputError(f"{target}: {len(names)} band names for {len(bands)} bands")
    dtypes = {np.dtype(b.dtype) for b in bands}
    if len(dtypes) != 1:
        raise InputError(f"{target}: a GeoTIFF holds bands of one type, not {sorted(str(d) for d in dtypes)}")
    dtype = dtypes.pop()
    for b in bands:
        if tuple(b.shape) != grid.shape:
            raise InputError(f"{target}: band of shape {tuple(b.shape)} does not fit the grid {grid.shape}")
    if overview_resampling is None:
        overview_resampling = "NEAREST" if np.issubdtype(dtype, np.integer) else "AVERAGE"
    target.parent.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex[:12]
    staging = target.with_name(f".{target.name}.{token}.stage.tif")
    finished = target.with_name(f".{target.name}.{token}.cog.tif")
    try:
        with rasterio.open(
            staging,
            "w",
            driver="GTiff",
            width=grid.width,
            height=grid.height,
            count=len(bands),
            dtype=dtype.name,
            crs=grid.crs,
            transform=grid.transform,
            nodata=nodata,
            tiled=True,
            blockxsize=blocksize,
            blockysize=blocksize,
            BIGTIFF="IF_SAFER",
        ) as dst:
            for i, band in enumerate(bands, start=1):
                dst.write(np.asarray(band), i)
                if names:
                    dst.set_band_description(i, names[i - 1])
        rasterio.shutil.copy(
            staging,
            finished,
            driver="COG",
            BLOCKSIZE=blocksize,
            COMPRESS=compress,
            PREDICTOR="YES",
            OVERVIEWS="AUTO",
            RESAMPLING=overview_resampling.upper(),
            NUM_THREADS="2",
            BIGTIFF="IF_SAFER",
        )
        os.replace(finished, target)
    finally:
        for leftover in (staging, finished):
            leftover.unlink(missing_ok=True)
    return target
