"""Georectification: a synthetic radar-geometry scene with a known pixel -> chart-Mercator affine (bright
targets must land within one output pixel of where the affine puts them), the real Sentinel-1 dB scene
(values kept), the real ICEYE GCPs and RPCs, and the COG output."""

from __future__ import annotations

import math
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import rasterio
from affine import Affine
from deliveries import scene_geometry, write_current, write_legacy
from pyproj import CRS, Transformer
from rasterio.control import GroundControlPoint
from rasterio.rpc import RPC
from rasterio.warp import Resampling, reproject

from cubeport.cubes.readers import open_product
from cubeport.cubes.readers.base import Georeference
from cubeport.errors import InputError
from cubeport.seaice.calibration import calibrate
from cubeport.seaice.grid import CHART_MERCATOR, Grid
from cubeport.seaice.rectify import MAX_SOURCE_PIXELS, gcp_order, rectify, scene_grid, write_cog

CHART = CRS.from_user_input(CHART_MERCATOR)
WGS84 = CRS.from_epsg(4326)
ROWS, COLS, SPACING = 1000, 1200, 10.0
# (row, col) of 3 x 3-pixel bright targets, spread to the image's corners
TARGETS = [(100, 150), (500, 600), (900, 1100), (40, 1150), (950, 40), (300, 900)]
S1 = "sar/S1A__IW___A_20150309T173017_VV_grd_mli_geo_norm_db.tif"
ICEYE = "sar/ICEYE_GRD_54549_20210427T215124_hollow_10x10pixels_fake_0.tif"


def radar_affine(heading: float = 350.0) -> Affine:
    """Pixel (col, row) edges -> chart Mercator: rows run along the heading, columns to the right of it
    (right-looking), 10 m apart, the first pixel's corner at 21 E 61 N."""
    x0, y0 = Transformer.from_crs(WGS84, CHART, always_xy=True).transform(21.0, 61.0)
    h = math.radians(heading)
    r = h + math.pi / 2
    s = SPACING
    return Affine(s * math.sin(r), s * math.sin(h), x0, s * math.cos(r), s * math.cos(h), y0)


def gcps_of(affine: Affine, n: int) -> tuple[GroundControlPoint, ...]:
    """n x n GCPs over the image, positions in lon/lat (as ICEYE gives them)."""
    to_geo = Transformer.from_crs(CHART, WGS84, always_xy=True)
    points = []
    for row in np.linspace(0, ROWS, n):
        for col in np.linspace(0, COLS, n):
            lon, lat = to_geo.transform(*(affine @ (col, row)))
            points.append(GroundControlPoint(row=float(row), col=float(col), x=lon, y=lat))
    return tuple(points)


def scene() -> np.ndarray:
    image = np.random.default_rng(1).uniform(0.5, 1.5, (ROWS, COLS)).astype(np.float32)
    for r, c in TARGETS:
        image[r - 1 : r + 2, c - 1 : c + 2] = 1000.0
    return image


def assert_targets_in_place(out: np.ndarray, grid: Grid, affine: Affine) -> None:
    """Each target's brightest output pixel is within one pixel of its true position."""
    for r, c in TARGETS:
        x, y = affine @ (c + 0.5, r + 0.5)  # the target's centre
        col, row = ~grid.transform @ (x, y)  # fractional output pixel (edges)
        r0, c0 = int(row) - 6, int(col) - 6
        window = out[r0 : r0 + 13, c0 : c0 + 13]
        assert np.nanmax(window) > 50, f"target {(r, c)} not found near output pixel {(row, col)}"
        pr, pc = np.unravel_index(np.nanargmax(window), window.shape)
        error = math.hypot(r0 + pr + 0.5 - row, c0 + pc + 0.5 - col)
        assert error <= 1.0, f"target {(r, c)} is {error:.2f} output pixels from its true position"


@pytest.mark.parametrize(("n", "method"), [(12, "TPS"), (4, "order 3"), (3, "order 2"), (2, "corners")])
def test_synthetic_targets_land_where_the_affine_puts_them(n: int, method: str) -> None:
    affine = radar_affine()
    georef = Georeference(gcps=gcps_of(affine, n), gcps_crs=WGS84)
    grid = scene_grid(georef, CHART, 20.0)
    out = rectify({"sigma0": scene()}, georef, grid)["sigma0"]
    assert out.dtype == np.float32 and out.shape == grid.shape
    assert_targets_in_place(out, grid, affine)
    # outside the rotated footprint stays no-data, inside is the background's level
    assert np.isnan(out[0, 0]) and np.isnan(out[-1, -1])
    assert 0.9 < np.nanmedian(out) < 1.1


@pytest.mark.parametrize("generation", ["legacy", "current"])
def test_synthetic_deliveries_rectify_to_their_true_positions(tmp_path: Path, generation: str) -> None:
    """A delivery of either generation (written by tests/seaice/deliveries.py with an exact position model
    of every pixel, GCPs in the file) read, calibrated lazily and rectified at 25 m: targets within one
    pixel of `geometry.lonlat`. (The GCPs count pixel centres from 0, as ICEYE's do, where GDAL counts
    edges: half a source pixel, 0.2 output pixels here.)"""
    geometry = scene_geometry(1200, 1000, range_spacing=10.0, azimuth_spacing=10.0)
    dn = np.full((1000, 1200), 100, np.uint16)
    for r, c in TARGETS:
        dn[r - 1 : r + 2, c - 1 : c + 2] = 3000
    writer = write_legacy if generation == "legacy" else write_current
    product = open_product(str(writer(tmp_path, dn, geometry=geometry)))
    sigma0 = calibrate(product.data["amplitude"].data, product.metadata)
    grid = scene_grid(product.georef, CHART, 25.0)
    out = rectify({"sigma0": sigma0}, product.georef, grid)["sigma0"]
    to_chart = Transformer.from_crs(WGS84, CHART, always_xy=True)
    for r, c in TARGETS:
        x, y = to_chart.transform(*geometry.lonlat(r, c))
        col, row = ~grid.transform @ (x, y)
        r0, c0 = int(row) - 6, int(col) - 6
        window = out[r0 : r0 + 13, c0 : c0 + 13]
        pr, pc = np.unravel_index(np.nanargmax(window), window.shape)
        assert math.hypot(r0 + pr + 0.5 - row, c0 + pc + 0.5 - col) <= 1.0


def test_gcp_order_follows_the_count() -> None:
    assert [gcp_order(n) for n in (3, 9, 10, 19, 20, 810)] == [1, 1, 2, 2, 3, 3]
    with pytest.raises(InputError, match="at least 3"):
        gcp_order(2)


@pytest.mark.parametrize("method", ["gcps", "transform", "rpcs"])
@pytest.mark.parametrize("lazy", [False, True])
def test_coarse_output_is_block_averaged_first_and_stays_in_place(method: str, lazy: bool) -> None:
    """At 60 m from 10 m pixels the image is averaged 2 x 2 before the warp (its georeference scaled to
    match, for each kind); targets keep their place and a flat background keeps its value."""
    affine = radar_affine()
    georef = Georeference(
        crs=CHART, transform=affine, gcps=gcps_of(affine, 12), gcps_crs=WGS84, rpcs=fitted_rpc(affine)
    )
    grid = scene_grid(georef, CHART, 60.0, method="gcps")
    image = da.from_array(scene(), chunks=256) if lazy else scene()
    budget = 200_000 if lazy else MAX_SOURCE_PIXELS  # lazily: by windows too
    out = rectify({"a": image}, georef, grid, "average", method=method, max_source_pixels=budget)
    assert_targets_in_place(out["a"], grid, affine)
    flat = rectify({"a": np.full((ROWS, COLS), 2.5, np.float32)}, georef, grid, method=method)["a"]
    inside = ~np.isnan(flat)
    assert inside.mean() > 0.5
    np.testing.assert_allclose(flat[inside], 2.5, rtol=1e-6)


@pytest.mark.parametrize("method", ["gcps", "transform", "rpcs"])
def test_dask_input_is_warped_by_windows_with_the_same_result(method: str) -> None:
    """A dask image warped window by window (a tiny source budget forces 9 windows of 256 x 256) matches
    the whole-image warp up to GDAL's approximate transformer (0.125 px each), and NaN stays no-data."""
    affine = radar_affine()
    georef = Georeference(
        crs=CHART, transform=affine, gcps=gcps_of(affine, 12), gcps_crs=WGS84, rpcs=fitted_rpc(affine)
    )
    grid = scene_grid(georef, CHART, 20.0, method="gcps")
    assert grid.width > 512 and grid.height > 512
    ramp = np.add.outer(np.arange(ROWS), np.arange(COLS)).astype(np.float32)  # smooth: one unit a pixel
    ramp[400:450, 500:550] = np.nan
    whole = rectify({"ramp": ramp}, georef, grid, method=method)["ramp"]
    lazy = da.from_array(ramp, chunks=256)
    windowed = rectify({"ramp": lazy}, georef, grid, method=method, max_source_pixels=300 * 300)["ramp"]
    both = ~np.isnan(whole) & ~np.isnan(windowed)
    assert both.sum() > 0.98 * (~np.isnan(whole)).sum()
    assert np.abs(windowed[both] - whole[both]).max() < 0.6
    assert_targets_in_place(
        rectify(
            {"s": da.from_array(scene(), chunks=300)}, georef, grid, method=method, max_source_pixels=90_000
        )["s"],
        grid,
        affine,
    )
    # the NaN hole: its centre is no-data in both
    x, y = affine @ (525, 425)
    col, row = ~grid.transform @ (x, y)
    assert np.isnan(whole[int(row), int(col)]) and np.isnan(windowed[int(row), int(col)])


def test_class_rasters_are_nearest_with_their_own_nodata() -> None:
    affine = radar_affine()
    georef = Georeference(gcps=gcps_of(affine, 4), gcps_crs=WGS84)
    grid = scene_grid(georef, CHART, 25.0)
    classes = (np.arange(COLS)[None, :] // 300 + np.zeros((ROWS, 1), int)).astype(np.uint8)  # 0..3 bands
    out = rectify({"classes": classes, "sigma0": scene()}, georef, grid, resampling="cubic")
    assert out["classes"].dtype == np.uint8
    assert set(np.unique(out["classes"])) == {0, 1, 2, 3, 255}
    assert out["classes"][0, 0] == 255
    # and the same lazily
    lazy = rectify({"classes": da.from_array(classes, chunks=500)}, georef, grid, max_source_pixels=250_000)
    assert (lazy["classes"] == out["classes"]).mean() > 0.995


def fitted_rpc(affine: Affine) -> RPC:
    """RPCs of the synthetic scene: second order in lon/lat, fitted to 15 x 15 GCPs (no height terms)."""
    gcps = gcps_of(affine, 15)
    lon = np.array([g.x for g in gcps])
    lat = np.array([g.y for g in gcps])
    rows = np.array([g.row for g in gcps]) - 0.5  # RPC lines count from the first pixel's centre
    cols = np.array([g.col for g in gcps]) - 0.5
    lon_off, lat_off, lon_scale, lat_scale = lon.mean(), lat.mean(), np.ptp(lon) / 2, np.ptp(lat) / 2
    L, P = (lon - lon_off) / lon_scale, (lat - lat_off) / lat_scale
    # RPC00B term order: 1 L P H LP LH PH L2 P2 H2 ...; fit the height-free terms up to second order
    basis = np.stack([np.ones_like(L), L, P, L * P, L * L, P * P], axis=1)
    where = [0, 1, 2, 4, 7, 8]

    def fit(values: np.ndarray, off: float, scale: float) -> list[float]:
        solution = np.linalg.lstsq(basis, (values - off) / scale, rcond=None)[0]
        coeffs = [0.0] * 20
        for i, c in zip(where, solution, strict=True):
            coeffs[i] = float(c)
        return coeffs

    line_off, samp_off, line_scale, samp_scale = ROWS / 2, COLS / 2, ROWS / 2, COLS / 2
    den = [1.0] + [0.0] * 19
    return RPC(
        height_off=0.0, height_scale=100.0, lat_off=lat_off, lat_scale=lat_scale, long_off=lon_off,
        long_scale=lon_scale, line_off=line_off, line_scale=line_scale, samp_off=samp_off,
        samp_scale=samp_scale, line_num_coeff=fit(rows, line_off, line_scale), line_den_coeff=den,
        samp_num_coeff=fit(cols, samp_off, samp_scale), samp_den_coeff=den,
    )  # fmt: skip


def test_rpcs_when_asked() -> None:
    """RPCs fitted to the synthetic scene rectify it like its GCPs do."""
    affine = radar_affine()
    georef = Georeference(gcps=gcps_of(affine, 4), gcps_crs=WGS84, rpcs=fitted_rpc(affine))
    grid = scene_grid(georef, CHART, 20.0)
    out = rectify({"s": scene()}, georef, grid, method="rpcs")["s"]
    assert_targets_in_place(out, grid, affine)
    assert scene_grid(georef, CHART, 20.0, shape=(ROWS, COLS), method="rpcs").bounds == pytest.approx(
        grid.bounds, abs=41
    )


def test_georeference_problems_are_input_errors() -> None:
    affine = radar_affine()
    image = scene()
    grid = scene_grid(Georeference(gcps=gcps_of(affine, 4), gcps_crs=WGS84), CHART, 50.0)
    with pytest.raises(InputError, match="no georeferencing"):
        rectify({"a": image}, Georeference(), grid)
    with pytest.raises(InputError, match="RPCs asked for"):
        rectify({"a": image}, Georeference(gcps=gcps_of(affine, 4), gcps_crs=WGS84), grid, method="rpcs")
    collinear = tuple(GroundControlPoint(row=0, col=c, x=21 + c / 1e4, y=61) for c in (0, 100, 200, 300))
    with pytest.raises(InputError, match="cannot be rectified from its gcps"):
        rectify({"a": image}, Georeference(gcps=collinear, gcps_crs=WGS84), grid)
    with pytest.raises(InputError, match="one shape"):
        rectify({"a": image, "b": image[:10]}, Georeference(gcps=gcps_of(affine, 4), gcps_crs=WGS84), grid)
    with pytest.raises(InputError, match="unknown resampling"):
        rectify(
            {"a": image}, Georeference(gcps=gcps_of(affine, 4), gcps_crs=WGS84), grid, resampling="lanczos"
        )


def s1_inputs(data: Path) -> tuple[np.ndarray, Georeference, Grid]:
    with rasterio.open(data / S1) as ds:
        values = ds.read(1)
        values[values == ds.nodata] = np.nan
        georef = Georeference(crs=ds.crs, transform=ds.transform)
    return values, georef, scene_grid(georef, CHART, 50.0, shape=values.shape)


def test_sentinel1_nearest_keeps_the_source_pixel_values(data: Path) -> None:
    """Every rectified pixel holds the value of the source pixel under its centre (found here with pyproj
    and the source's transform), but for a few at source pixel edges where GDAL's approximate
    transformer (0.125 px) picks the neighbour."""
    values, georef, grid = s1_inputs(data)
    out = rectify({"db": values}, georef, grid, resampling="nearest")["db"]
    rows, cols = np.nonzero(~np.isnan(out))
    assert rows.size > 0.5 * out.size
    xs = grid.transform.c + (cols + 0.5) * grid.transform.a
    ys = grid.transform.f + (rows + 0.5) * grid.transform.e
    sx, sy = Transformer.from_crs(CHART, georef.crs, always_xy=True).transform(xs, ys)
    inverse = ~georef.transform
    src_cols = inverse.a * np.asarray(sx) + inverse.b * np.asarray(sy) + inverse.c
    src_rows = inverse.d * np.asarray(sx) + inverse.e * np.asarray(sy) + inverse.f
    src_rows, src_cols = np.floor(src_rows).astype(int), np.floor(src_cols).astype(int)
    assert src_rows.min() >= 0 and src_cols.min() >= 0
    assert src_rows.max() < values.shape[0] and src_cols.max() < values.shape[1]
    assert (out[rows, cols] == values[src_rows, src_cols]).mean() > 0.98


def test_sentinel1_bilinear_matches_an_independent_warp_and_keeps_statistics(data: Path) -> None:
    values, georef, grid = s1_inputs(data)
    out = rectify({"db": values}, georef, grid, resampling="bilinear")["db"]
    expected = np.full(grid.shape, np.nan, np.float32)
    reproject(
        values, expected, src_transform=georef.transform, src_crs=georef.crs, src_nodata=np.nan,
        dst_transform=grid.transform, dst_crs=grid.crs, dst_nodata=np.nan, resampling=Resampling.bilinear,
    )  # fmt: skip
    np.testing.assert_allclose(out, expected, atol=1e-4, equal_nan=True)
    assert abs(np.nanmean(out) - np.nanmean(values)) < 0.2  # dB; the footprint is the same scene
    assert np.nanmin(out) >= np.nanmin(values) - 1e-4 and np.nanmax(out) <= np.nanmax(values) + 1e-4
    lazy = rectify({"db": da.from_array(values, chunks=64)}, georef, grid, max_source_pixels=5000)["db"]
    both = ~np.isnan(lazy) & ~np.isnan(out)
    assert both.sum() > 0.98 * (~np.isnan(out)).sum()
    assert np.abs(lazy[both] - out[both]).max() < 1.0


def test_scene_grid_covers_the_real_iceye_corners_and_rpcs_agree(data: Path) -> None:
    product = open_product(str(data / ICEYE))
    georef = product.georef
    assert len(georef.gcps) == 810
    grid = scene_grid(georef, CHART, 50.0)
    assert grid.resolution == 50.0 and grid.crs == CHART
    xmin, ymin, xmax, ymax = grid.bounds
    to_chart = Transformer.from_crs(WGS84, CHART, always_xy=True)
    for corner in product.metadata.corners.values():
        x, y = to_chart.transform(corner.lon, corner.lat)
        assert xmin <= x <= xmax and ymin <= y <= ymax
    # 5.9 x 5.4 km (11748 x 10779 pixels of 0.5 m) at 37.4 N, where the chart Mercator (true at 61.7 N)
    # shrinks distances to cos(61.67)/cos(37.45) = 0.60: 70 x 65 pixels, a few more for the rotation
    assert 70 < grid.width < 90 and 65 < grid.height < 85
    # the RPCs of the same scene, at the scene's mean height, give the same footprint within 2 pixels
    rpc_grid = scene_grid(georef, CHART, 50.0, shape=(10779, 11748), method="rpcs", rpc_height=110.0)
    assert rpc_grid.bounds == pytest.approx(grid.bounds, abs=100)


def test_scene_grid_needs_a_shape_without_gcps(data: Path) -> None:
    values, georef, grid = s1_inputs(data)
    with pytest.raises(InputError, match="image shape"):
        scene_grid(georef, CHART, 50.0)
    # 268 x 217 pixels of 20 m, in a Mercator that shrinks distances to cos(61.67)/cos(43.6) = 0.655 at
    # 43.6 N: 70.2 x 56.9 pixels of 50 m, one or two more once aligned on multiples of 50 m
    assert 71 <= grid.width <= 73 and 57 <= grid.height <= 60


def test_write_cog_is_a_valid_cog_with_overviews(tmp_path: Path) -> None:
    grid = Grid(CHART, Affine(50, 0, 1_000_000, 0, -50, 4_000_000), 1300, 1100)
    values = np.random.default_rng(0).normal(-15, 3, grid.shape).astype(np.float32)
    values[:20] = np.nan
    path = write_cog(tmp_path / "scene.tif", {"sigma0_db": values, "incidence": values * 0 + 30}, grid)
    with rasterio.open(path) as ds:
        assert ds.driver == "GTiff" and ds.count == 2 and ds.dtypes == ("float32", "float32")
        assert ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert ds.block_shapes[0] in {(512, 512), (256, 256)}
        assert ds.overviews(1) == [2, 4]
        assert ds.descriptions == ("sigma0_db", "incidence")
        assert math.isnan(ds.nodata)
        assert ds.crs == CHART and ds.transform == grid.transform
        np.testing.assert_array_equal(ds.read(1), values)
        overview = ds.read(1, out_shape=(grid.height // 4, grid.width // 4))
        assert abs(np.nanmean(overview) - np.nanmean(values)) < 0.1
    assert [p.name for p in tmp_path.iterdir()] == ["scene.tif"]  # no temporary files left


def test_write_cog_classes_keep_their_codes_in_overviews(tmp_path: Path) -> None:
    grid = Grid(CHART, Affine(50, 0, 0, 0, -50, 0), 1100, 1000)
    classes = np.random.default_rng(0).choice(np.array([0, 2, 4, 255], np.uint8), grid.shape)
    path = write_cog(tmp_path / "classes.tif", classes, grid, nodata=255, band_names=["ice_class"])
    with rasterio.open(path) as ds:
        assert ds.overviews(1) and ds.nodata == 255
        overview = ds.read(1, out_shape=(grid.height // 2, grid.width // 2), masked=False)
        assert set(np.unique(overview)) <= {0, 2, 4, 255}


def test_write_cog_is_atomic(tmp_path: Path) -> None:
    grid = Grid(CHART, Affine(50, 0, 0, 0, -50, 0), 600, 600)
    target = tmp_path / "out.tif"
    write_cog(target, np.zeros(grid.shape, np.float32), grid)
    before = target.read_bytes()
    with pytest.raises(InputError, match="one type"):
        write_cog(target, {"a": np.zeros(grid.shape, np.float32), "b": np.zeros(grid.shape, np.uint8)}, grid)
    with pytest.raises(InputError, match="does not fit the grid"):
        write_cog(target, np.zeros((10, 10), np.float32), grid)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.tif"]
