"""Sea-ice drift between two SAR scenes: ORB feature matching for a first guess, refined on a regular grid by
normalised cross-correlation (the ORB + pattern-matching chain of Korosov & Rampal 2017 and Muckenhuber &
Sandven 2017; FMI's operational chain also starts from ORB, seaice-facts.md sections 3 and 5).

Both scenes must already be rectified to the SAME Grid (seaice/grid.py): the chain warps each scene to the
chart Mercator first, so a pixel offset between the two arrays is a displacement on the ground. Vectors are
given in grid metres (u east, v north along the grid axes), in longitude/latitude, and as a speed and a
direction computed on the ellipsoid (geodesic distance and azimuth between start and end), so they are right
in any CRS. In the chart Mercator, grid north IS true north (a normal Mercator is conformal with vertical
meridians), so the direction equals atan2(u, v); but grid metres are not ground metres there (the scale is
cos(61 deg 40 min) / cos(latitude), about 1.1 in the Bothnian Bay), which is why speed is geodesic.
"""

from __future__ import annotations

import math
import os
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import geopandas as gpd
import numpy as np
import shapely
import xarray as xr
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike, NDArray
from pyproj import Proj, Transformer

from cubeport.cubes.cf import GRID_MAPPING, grid_mapping_variable
from cubeport.errors import InputError
from cubeport.seaice.grid import Grid

Floats = NDArray[np.float64]

# ORB works on a downsampled copy: averaging blocks of pixels removes most speckle (which never matches
# between passes) and keeps the search cheap; about 1,600 px on the long side is enough for a first guess.
_ORB_SIDE = 1600
_ORB_FEATURES = 10000
_LOWE_RATIO = 0.75
_MIN_MATCHES = 8
# The normalised median test of PIV (Westerweel & Scarano 2005): a vector is an outlier when its distance
# to the median of its 24 neighbours exceeds this many times their own spread (plus a noise floor in px); and
# neighbours that scatter more than _COHERENCE_PX among themselves mark ice that cannot be followed.
_MEDIAN_THRESHOLD = 3.0
_MEDIAN_EPS_PX = 0.5
_COHERENCE_PX = 3.0
_NEIGHBOUR_PASSES = 3
_MATCH_VALID = 0.9  # share of the matched window in the second scene that must be data


@dataclass(frozen=True)
class DriftField:
    """The drift between two scenes: kept vectors (points at the start position, in the grid's CRS) and the
    same on the coarse regular grid (NaN where there is no vector), plus what was rejected and why."""

    vectors: gpd.GeoDataFrame
    grid: xr.Dataset
    seconds: float
    rejected: dict[str, int] = field(default_factory=dict)

    def lines(self) -> gpd.GeoDataFrame:
        """The vectors as LineStrings from start to end (for maps: the arrow without the head)."""
        v = self.vectors
        starts = shapely.get_coordinates(v.geometry.values)
        ends = starts + np.column_stack([v["u"].to_numpy(), v["v"].to_numpy()])
        lines = shapely.linestrings(np.stack([starts, ends], axis=1))
        return gpd.GeoDataFrame(v.drop(columns="geometry"), geometry=lines, crs=v.crs)


def estimate_drift(
    first: ArrayLike,
    second: ArrayLike,
    grid: Grid,
    seconds: float,
    *,
    step_px: int = 32,
    patch_px: int = 32,
    search_px: int = 16,
    max_speed_m_s: float = 1.5,
    min_quality: float = 0.3,
    threads: int = 2,
    names: tuple[str, str] = ("first scene", "second scene"),
) -> DriftField:
    """Ice drift from `first` to `second`, taken `seconds` apart, on one vector every `step_px` pixels.

    Both are float32 backscatter (dB, NaN for no-data) rectified to the same `grid`. Each vector matches a
    `patch_px` window of `first` within +-`search_px` of the ORB first guess in `second`; quality is the
    correlation peak (-1..1). Vectors are dropped where either scene has no data, where the peak is weaker
    than `min_quality` or on the edge of the search window, where the vector disagrees with its neighbours
    or they scatter among themselves (DriftField.rejected counts each reason) and where the speed exceeds
    `max_speed_m_s`. `threads` is OpenCV's thread count while this runs; `names` label the scenes in errors.
    Raises InputError when the scenes do not fit the grid, do not overlap or share no features.

    Time: about 20 s for two 8,000 x 8,000 scenes at the defaults (62,500 grid points) on one core.
    """
    a, b = _check_inputs(first, second, grid, seconds, step_px, patch_px, search_px, max_speed_m_s, names)
    previous = cv2.getNumThreads()
    cv2.setNumThreads(threads)
    try:
        scale = _max_scale(grid)
        max_shift_px = max_speed_m_s * seconds * scale / abs(grid.resolution)
        guess = _first_guess(a, b, max_shift_px, names)
        rows, cols = _grid_points(grid.shape, step_px, patch_px)
        gu, gv = guess(cols, rows)
        matcher = _Matcher(a, b, patch_px, search_px, min_quality, _robust_range(a), _robust_range(b))
        dx, dy, quality, reasons = _refine(matcher, rows, cols, gu, gv)
    finally:
        cv2.setNumThreads(previous)
    for _ in range(_NEIGHBOUR_PASSES):  # a bad vector hides its bad neighbours until it is gone
        # compared after taking out the smooth first guess, so rotation and shear do not count as scatter
        outliers = _neighbour_outliers(dx - gu, dy - gv)
        outlier = outliers != ""
        if not outlier.any():
            break
        reasons[outlier] = outliers[outlier]
        dx[outlier] = dy[outlier] = np.nan
    return _assemble(grid, seconds, rows, cols, dx, dy, quality, reasons, max_speed_m_s, step_px)


def write_vectors(drift: DriftField, path: str | Path, *, lines: bool = False) -> Path:
    """Write the vectors as GeoPackage (.gpkg) or GeoParquet (.parquet), atomically; `lines` writes
    LineStrings from start to end instead of start points."""
    target = Path(path)
    frame = drift.lines() if lines else drift.vectors
    suffix = target.suffix.lower()
    if suffix not in (".gpkg", ".parquet", ".geoparquet"):
        raise InputError(f"{target}: write drift vectors as .gpkg (GeoPackage) or .parquet (GeoParquet)")
    with _atomic(target) as tmp:
        if suffix == ".gpkg":
            frame.to_file(tmp, driver="GPKG", layer="drift", engine="pyogrio")
        else:
            frame.to_parquet(tmp, index=False)
    return target


def write_grid(drift: DriftField, path: str | Path) -> Path:
    """Write the gridded drift as CF NetCDF-4 (compressed), atomically."""
    target = Path(path)
    encoding = {name: {"zlib": True, "complevel": 4} for name in drift.grid.data_vars}
    with _atomic(target) as tmp:
        drift.grid.to_netcdf(tmp, engine="netcdf4", format="NETCDF4", encoding=encoding)
    return target


@contextmanager
def _atomic(target: Path) -> Iterator[Path]:
    """A temporary file beside `target` (same suffix, for drivers that look at it), renamed over it at the
    end, so a reader never sees half a file and a failure leaves the old one."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.stem}.{uuid.uuid4().hex[:8]}.tmp{target.suffix}")
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _check_inputs(
    first: ArrayLike,
    second: ArrayLike,
    grid: Grid,
    seconds: float,
    step_px: int,
    patch_px: int,
    search_px: int,
    max_speed_m_s: float,
    names: tuple[str, str],
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    a = np.asarray(first, dtype=np.float32)
    b = np.asarray(second, dtype=np.float32)
    for name, arr in zip(names, (a, b), strict=True):
        if arr.shape != grid.shape:
            raise InputError(
                f"{name}: shape {arr.shape} is not the grid's {grid.shape}; rectify both scenes to the same "
                "Grid before estimating drift"
            )
    if not (math.isfinite(seconds) and seconds > 0):
        raise InputError(
            f"the time between {names[0]} and {names[1]} must be positive seconds, not {seconds}"
        )
    if patch_px < 8 or step_px < 1 or search_px < 1 or not max_speed_m_s > 0:
        raise InputError(
            f"drift options: patch_px >= 8, step_px >= 1, search_px >= 1 and max_speed_m_s > 0 are needed "
            f"(got {patch_px}, {step_px}, {search_px}, {max_speed_m_s})"
        )
    common = int(np.count_nonzero(np.isfinite(a) & np.isfinite(b)))
    if common < patch_px * patch_px:
        raise InputError(
            f"{names[0]} and {names[1]} do not overlap on the grid ({common} pixels with data in both); "
            "drift needs two scenes of the same area"
        )
    return a, b


def _max_scale(grid: Grid) -> float:
    """The largest grid-metres-per-ground-metre over the grid (Mercator grows towards the pole): it turns
    the speed limit into a pixel limit that is never too tight."""
    if grid.crs.is_geographic:
        raise InputError("drift needs a projected grid in metres (e.g. the chart Mercator), not degrees")
    xmin, ymin, xmax, ymax = grid.bounds
    xs = np.array([xmin, xmax, xmin, xmax, (xmin + xmax) / 2])
    ys = np.array([ymin, ymin, ymax, ymax, (ymin + ymax) / 2])
    lon, lat = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True).transform(xs, ys)
    factors = Proj(grid.crs).get_factors(lon, lat)
    scale = np.nanmax(np.maximum(factors.parallel_scale, factors.meridional_scale))
    return float(scale) if np.isfinite(scale) else 1.0


def _robust_range(image: NDArray[np.float32]) -> tuple[float, float]:
    """The 0.5 and 99.5 percentiles (on a sample): clipping at them keeps a few bright targets from
    dominating a correlation."""
    stride = max(1, int(math.sqrt(image.size / 1_000_000)))
    sample = image[::stride, ::stride]
    sample = sample[np.isfinite(sample)]
    lo, hi = np.percentile(sample, [0.5, 99.5])
    return float(lo), (float(hi) if hi > lo else float(lo) + 1.0)


def _to_uint8(image: NDArray[np.float32]) -> NDArray[np.uint8]:
    """Stretch the 1-99 percentiles to 1..255 (0 is no-data) as ORB wants 8 bits."""
    valid = np.isfinite(image)
    lo, hi = np.percentile(image[valid], [1, 99])
    scaled = np.clip((image - lo) / max(float(hi - lo), 1e-6) * 254 + 1, 1, 255)
    return np.where(valid, scaled, 0).astype(np.uint8)


def _downsample(image: NDArray[np.float32], factor: int) -> NDArray[np.float32]:
    """Block means of `factor` x `factor` pixels (NaN where any pixel is NaN)."""
    if factor == 1:
        return image
    h, w = (image.shape[0] // factor) * factor, (image.shape[1] // factor) * factor
    small = cv2.resize(image[:h, :w], (w // factor, h // factor), interpolation=cv2.INTER_AREA)
    return np.asarray(small, dtype=np.float32)


class _Model:
    """Displacement (dx, dy) in pixels as a function of (col, row): affine or 2nd-order polynomial."""

    def __init__(self, coef: Floats, order: int) -> None:
        self.coef, self.order = coef, order

    def __call__(self, cols: Floats, rows: Floats) -> tuple[Floats, Floats]:
        terms = _poly_terms(np.ravel(cols), np.ravel(rows), self.order)
        out = terms @ self.coef
        return out[:, 0].reshape(np.shape(cols)), out[:, 1].reshape(np.shape(cols))


def _poly_terms(cols: Floats, rows: Floats, order: int) -> Floats:
    # scaled to about unit size so the least-squares problem is well conditioned
    x, y = cols / 1000.0, rows / 1000.0
    terms = [np.ones_like(x), x, y]
    if order == 2:
        terms += [x * x, x * y, y * y]
    return np.column_stack(terms)


def _first_guess(
    a: NDArray[np.float32], b: NDArray[np.float32], max_shift_px: float, names: tuple[str, str]
) -> _Model:
    """ORB matches on downsampled scenes, a RANSAC affine model, then a 2nd-order polynomial fitted to its
    inliers where they cover the scene (smooth non-rigid drift), in full-resolution pixels."""
    factor = max(1, math.ceil(max(a.shape) / _ORB_SIDE))
    small_a, small_b = _downsample(a, factor), _downsample(b, factor)
    orb = cv2.ORB.create(
        nfeatures=_ORB_FEATURES, scaleFactor=1.2, nlevels=6, edgeThreshold=31, fastThreshold=5
    )
    found = []
    for small in (small_a, small_b):
        image = _to_uint8(small)
        mask = cv2.erode((image > 0).astype(np.uint8), np.ones((31, 31), np.uint8))
        found.append(orb.detectAndCompute(image, mask))
    (kp_a, des_a), (kp_b, des_b) = found
    if des_a is None or des_b is None or len(kp_a) < _MIN_MATCHES or len(kp_b) < _MIN_MATCHES:
        raise InputError(f"{names[0]} / {names[1]}: too few features to match; are these scenes of ice?")
    pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(des_a, des_b, k=2)
    good = [m[0] for m in pairs if len(m) == 2 and m[0].distance < _LOWE_RATIO * m[1].distance]
    p_a = np.array([kp_a[m.queryIdx].pt for m in good], np.float64).reshape(-1, 2)
    p_b = np.array([kp_b[m.trainIdx].pt for m in good], np.float64).reshape(-1, 2)
    # keypoint coordinates of the downsampled image (pixel centres at k + 0.5) to full-resolution indices
    p_a, p_b = (p_a + 0.5) * factor - 0.5, (p_b + 0.5) * factor - 0.5
    near = np.hypot(*(p_b - p_a).T) <= max_shift_px
    p_a, p_b = p_a[near], p_b[near]
    if len(p_a) < _MIN_MATCHES:
        raise InputError(
            f"{names[0]} / {names[1]}: only {len(p_a)} feature matches within the speed limit; the scenes "
            "may not overlap, be too far apart in time, or the limit (max_speed_m_s) is too low"
        )
    threshold = 2.5 * factor
    affine, inliers = cv2.estimateAffine2D(
        p_a, p_b, method=cv2.RANSAC, ransacReprojThreshold=threshold, maxIters=5000, confidence=0.999
    )
    keep = inliers.ravel().astype(bool) if inliers is not None else np.zeros(len(p_a), bool)
    if affine is None or keep.sum() < _MIN_MATCHES:
        raise InputError(f"{names[0]} / {names[1]}: no consistent motion between the feature matches")
    p_a, p_b = p_a[keep], p_b[keep]
    d = p_b - p_a
    spread = np.ptp(p_a, axis=0) / np.array([a.shape[1], a.shape[0]])
    order = 2 if len(p_a) >= 30 and spread.min() >= 0.5 else 1
    coef = np.zeros((6 if order == 2 else 3, 2))
    for _ in range(3):  # least squares, dropping matches that stray from it
        terms = _poly_terms(p_a[:, 0], p_a[:, 1], order)
        coef = np.linalg.lstsq(terms, d, rcond=None)[0]
        residual = np.hypot(*(terms @ coef - d).T)
        close = residual <= threshold
        if close.all() or close.sum() < 3 * len(coef):
            break
        p_a, d = p_a[close], d[close]
    return _Model(coef, order)


def _grid_points(shape: tuple[int, int], step_px: int, patch_px: int) -> tuple[Floats, Floats]:
    """Row and column (index coordinates) of each template centre: one every `step_px`, centred in the cell,
    flattened in (row, col) order of the coarse grid."""
    ny, nx = shape[0] // step_px, shape[1] // step_px
    off = (step_px - patch_px) // 2 + (patch_px - 1) / 2
    rows, cols = np.meshgrid(np.arange(ny) * step_px + off, np.arange(nx) * step_px + off, indexing="ij")
    return rows.astype(np.float64), cols.astype(np.float64)


@dataclass(frozen=True)
class _Matcher:
    """Matches templates of `a` in windows of `b`: what every grid point shares."""

    a: NDArray[np.float32]
    b: NDArray[np.float32]
    patch_px: int
    search_px: int
    min_quality: float
    range_a: tuple[float, float]
    range_b: tuple[float, float]

    def match(self, row: float, col: float, gu: float, gv: float) -> tuple[float, float, float, str]:
        """(dx, dy, peak, reason) for the template centred at (row, col), searched around (gu, gv); the
        reason is '' when the vector is good, else dx and dy are NaN."""
        h, w = self.a.shape
        p, s = self.patch_px, self.search_px
        half = (p - 1) / 2
        r0, c0 = round(row - half), round(col - half)
        if r0 < 0 or c0 < 0 or r0 + p > h or c0 + p > w:
            return math.nan, math.nan, math.nan, "border"
        template = self.a[r0 : r0 + p, c0 : c0 + p]
        if not np.isfinite(template).all():
            return math.nan, math.nan, math.nan, "nodata"
        iu, iv = round(gu), round(gv)
        sr0, sc0 = max(0, r0 + iv - s), max(0, c0 + iu - s)
        sr1, sc1 = min(h, r0 + iv + s + p), min(w, c0 + iu + s + p)
        if sr1 - sr0 < p + 2 or sc1 - sc0 < p + 2:
            return math.nan, math.nan, math.nan, "border"
        window = self.b[sr0:sr1, sc0:sc1]
        valid = np.isfinite(window)
        if not valid.any():
            return math.nan, math.nan, math.nan, "nodata"
        window = np.clip(window, *self.range_b)
        if not valid.all():
            window = np.where(valid, window, np.float32(np.median(window[valid])))
        t = np.clip(template, *self.range_a)
        if float(t.std()) == 0.0:
            return math.nan, math.nan, math.nan, "flat"
        ncc = cv2.matchTemplate(window, t, cv2.TM_CCOEFF_NORMED)
        py, px = np.unravel_index(int(np.argmax(ncc)), ncc.shape)
        peak = float(ncc[py, px])
        if not (0 < py < ncc.shape[0] - 1 and 0 < px < ncc.shape[1] - 1):
            return math.nan, math.nan, peak, "edge"  # the true peak may lie outside the window
        if peak < self.min_quality:
            return math.nan, math.nan, peak, "quality"
        if valid[py : py + p, px : px + p].mean() < _MATCH_VALID:
            return math.nan, math.nan, peak, "nodata"
        sx = _parabola(ncc[py, px - 1], peak, ncc[py, px + 1])
        sy = _parabola(ncc[py - 1, px], peak, ncc[py + 1, px])
        return sc0 + px + sx - c0, sr0 + py + sy - r0, peak, ""


def _refine(
    matcher: _Matcher, rows: Floats, cols: Floats, gu: Floats, gv: Floats
) -> tuple[Floats, Floats, Floats, NDArray[np.object_]]:
    """Match every grid point: dx, dy (px), the peak value and why a point has no vector ('' when it has
    one). One plain loop: each match is some 100 us, and Python threads made it slower (the GIL)."""
    shape = rows.shape
    dx, dy, quality = (np.full(shape, np.nan) for _ in range(3))
    reasons = np.full(shape, "", dtype=object)
    for j, i in np.ndindex(shape):
        dx[j, i], dy[j, i], quality[j, i], reasons[j, i] = matcher.match(
            float(rows[j, i]), float(cols[j, i]), float(gu[j, i]), float(gv[j, i])
        )
    return dx, dy, quality, reasons


def _parabola(left: float, centre: float, right: float) -> float:
    """Sub-pixel offset of the peak of the parabola through three samples (within +-0.5)."""
    denominator = left - 2 * centre + right
    if denominator >= 0:
        return 0.0
    return float(np.clip(0.5 * (left - right) / denominator, -0.5, 0.5))


def _neighbour_outliers(dx: Floats, dy: Floats) -> NDArray[np.object_]:
    """Why each vector disagrees with its neighbours in a 5 x 5 window ('' when it does not): 'median' when it
    is far from their median relative to their spread (a bad match among good ones), 'incoherent' when the
    neighbours themselves scatter (ice that changed: random peaks cluster there and would pass the median
    test among themselves), 'isolated' when fewer than 3 of the 24 have a vector."""
    reasons = np.full(dx.shape, "", dtype=object)
    has = np.isfinite(dx)
    mx, my, spread, count = _neighbours(dx, dy, 5)
    distance = np.hypot(dx - mx, dy - my)
    reasons[has & (distance > _MEDIAN_THRESHOLD * (spread + _MEDIAN_EPS_PX))] = "median"
    reasons[has & (spread > _COHERENCE_PX)] = "incoherent"
    reasons[has & (count < 3)] = "isolated"
    return reasons


def _neighbours(dx: Floats, dy: Floats, size: int) -> tuple[Floats, Floats, Floats, NDArray[np.int_]]:
    """Median dx and dy of the neighbours in a size x size window (the point itself left out), their
    median distance to that median, and how many there are."""
    padded = [np.pad(d, size // 2, constant_values=np.nan) for d in (dx, dy)]
    shape = (*dx.shape, size * size)
    nx, ny = (
        np.delete(sliding_window_view(p, (size, size)).reshape(shape), size * size // 2, -1) for p in padded
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN neighbourhoods
        mx, my = np.nanmedian(nx, axis=-1), np.nanmedian(ny, axis=-1)
        spread = np.nanmedian(np.hypot(nx - mx[..., None], ny - my[..., None]), axis=-1)
    return mx, my, spread, np.isfinite(nx).sum(axis=-1)


def _assemble(
    grid: Grid,
    seconds: float,
    rows: Floats,
    cols: Floats,
    dx: Floats,
    dy: Floats,
    quality: Floats,
    reasons: NDArray[np.object_],
    max_speed_m_s: float,
    step_px: int,
) -> DriftField:
    """Pixels to metres, lon/lat, geodesic speed and azimuth; the speed limit; the two outputs."""
    t = grid.transform
    # index coordinates are pixel centres: the continuous (corner) coordinate is +0.5
    x = t.c + t.a * (cols + 0.5) + t.b * (rows + 0.5)
    y = t.f + t.d * (cols + 0.5) + t.e * (rows + 0.5)
    u = t.a * dx + t.b * dy
    v = t.d * dx + t.e * dy
    to_geo = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True)
    lon, lat = to_geo.transform(x, y)
    lon_end, lat_end = to_geo.transform(x + np.nan_to_num(u), y + np.nan_to_num(v))
    geod = grid.crs.get_geod()
    if geod is None:
        raise InputError(f"the grid's CRS has no ellipsoid to measure speed on: {grid.crs.name}")
    azimuth, _, distance = geod.inv(lon, lat, lon_end, lat_end)
    speed = np.where(np.isfinite(u), distance / seconds, np.nan)
    direction = np.where(np.isfinite(u), np.mod(azimuth, 360.0), np.nan)
    fast = speed > max_speed_m_s
    reasons[fast] = "speed"
    kept = np.isfinite(u) & ~fast
    for arr in (u, v, speed, direction):
        arr[~kept] = np.nan
    quality = np.where(kept, quality, np.nan)

    rejected: dict[str, int] = {}
    for reason in reasons.ravel():
        if reason:
            rejected[str(reason)] = rejected.get(str(reason), 0) + 1
    ny, nx = rows.shape
    sel = kept.ravel()
    columns: dict[str, Any] = {
        "row": np.repeat(np.arange(ny), nx)[sel],
        "col": np.tile(np.arange(nx), ny)[sel],
        "u": u.ravel()[sel],
        "v": v.ravel()[sel],
        "speed": speed.ravel()[sel],
        "direction": direction.ravel()[sel],
        "quality": quality.ravel()[sel],
        "lon": np.asarray(lon).ravel()[sel],
        "lat": np.asarray(lat).ravel()[sel],
        "lon_end": np.asarray(lon_end).ravel()[sel],
        "lat_end": np.asarray(lat_end).ravel()[sel],
    }
    points = shapely.points(x.ravel()[sel], y.ravel()[sel])
    vectors = gpd.GeoDataFrame(columns, geometry=points, crs=grid.crs)
    dataset = _dataset(grid, seconds, x[0, :], y[:, 0], lon, lat, u, v, speed, direction, quality, step_px)
    return DriftField(vectors, dataset, seconds, rejected)


def _dataset(
    grid: Grid,
    seconds: float,
    xs: Floats,
    ys: Floats,
    lon: Floats,
    lat: Floats,
    u: Floats,
    v: Floats,
    speed: Floats,
    direction: Floats,
    quality: Floats,
    step_px: int,
) -> xr.Dataset:
    """The coarse grid as a CF dataset: (y, x) in the grid's CRS with its grid mapping, lon/lat beside."""
    dims = ("y", "x")
    variables = {
        "u": (
            u,
            {"standard_name": "sea_ice_x_displacement", "units": "m", "long_name": "displacement along x"},
        ),
        "v": (
            v,
            {"standard_name": "sea_ice_y_displacement", "units": "m", "long_name": "displacement along y"},
        ),
        "speed": (speed, {"standard_name": "sea_ice_speed", "units": "m s-1", "long_name": "geodesic speed"}),
        "direction": (
            direction,
            {"units": "degree", "long_name": "direction the ice moves towards, clockwise from true north"},
        ),
        "quality": (quality, {"units": "1", "long_name": "peak normalised cross-correlation"}),
    }
    data_vars = {
        name: xr.Variable(dims, values.astype(np.float32), {**attrs, "grid_mapping": GRID_MAPPING})
        for name, (values, attrs) in variables.items()
    }
    ds = xr.Dataset(
        data_vars,
        coords={
            "x": ("x", xs, {"standard_name": "projection_x_coordinate", "units": "m", "axis": "X"}),
            "y": ("y", ys, {"standard_name": "projection_y_coordinate", "units": "m", "axis": "Y"}),
            "lon": (dims, np.asarray(lon), {"standard_name": "longitude", "units": "degrees_east"}),
            "lat": (dims, np.asarray(lat), {"standard_name": "latitude", "units": "degrees_north"}),
            GRID_MAPPING: grid_mapping_variable(grid.crs),
        },
        attrs={
            "Conventions": "CF-1.8",
            "title": "sea-ice drift (ORB first guess, normalised cross-correlation)",
            "time_difference_seconds": float(seconds),
            "vector_spacing_m": float(abs(grid.resolution) * step_px),
        },
    )
    return ds
