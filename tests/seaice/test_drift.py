"""Drift against a known displacement field: accuracy in pixels, outliers where the ice decorrelates, no
vectors over no-data, speed and direction from u/v and the time, files that read back, clear errors; and a
real Sentinel-1 scene moved by a known sub-pixel shift."""

from __future__ import annotations

import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import rasterio
import xarray as xr
from affine import Affine
from motion import Motion, pair, speckle, texture
from pyproj import CRS, Proj, Transformer
from scipy.ndimage import map_coordinates, shift

from cubeport.cubes.cf import crs_of
from cubeport.errors import InputError
from cubeport.seaice.drift import DriftField, estimate_drift, write_grid, write_vectors
from cubeport.seaice.grid import CHART_MERCATOR, Grid

RES = 50.0
SIX_HOURS = 6 * 3600.0
MOTION = Motion(shift_x=25, shift_y=-12, rotation_deg=1.0, shear=0.005, wave_px=3)
S1 = "sar/S1A__IW___A_20150309T173017_VV_grd_mli_geo_norm_db.tif"


def chart_grid(n: int, lon: float = 21.0, lat: float = 63.0) -> Grid:
    """A north-up n x n chart-Mercator grid of 50 m whose top-left corner is at (lon, lat)."""
    crs = CRS.from_user_input(CHART_MERCATOR)
    x0, y0 = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(lon, lat)
    return Grid(crs, Affine(RES, 0, round(x0), 0, -RES, round(y0)), n, n)


def pixel_errors(drift: DriftField, grid: Grid, truth_u: np.ndarray, truth_v: np.ndarray) -> np.ndarray:
    """Distance in pixels between each vector and the truth at its start (truth interpolated at the vector's
    position in index coordinates)."""
    vec = drift.vectors
    col = (vec.geometry.x.to_numpy() - grid.transform.c) / RES - 0.5
    row = (grid.transform.f - vec.geometry.y.to_numpy()) / RES - 0.5
    tu = map_coordinates(truth_u, [row, col], order=1)
    tv = map_coordinates(truth_v, [row, col], order=1)
    return np.asarray(np.hypot(vec["u"].to_numpy() / RES - tu, -vec["v"].to_numpy() / RES - tv))


@pytest.fixture(scope="module")
def moved() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return pair((2000, 2000), 1, MOTION)


@pytest.fixture(scope="module")
def drift(moved) -> DriftField:
    first, second, _, _ = moved
    return estimate_drift(first, second, chart_grid(2000), SIX_HOURS)


def test_vectors_follow_the_truth_within_a_pixel(drift, moved):
    _, _, truth_u, truth_v = moved
    errors = pixel_errors(drift, chart_grid(2000), truth_u, truth_v)
    # 62 x 62 grid points; the outer ring lies partly outside the moved scene
    assert len(errors) > 0.7 * 62 * 62
    assert np.median(errors) < 0.5
    assert np.percentile(errors, 90) < 1.0
    assert (errors > 3).mean() < 0.002
    # the truth has 10-40 px of motion: a zero or first-guess-only answer would fail the above
    assert np.percentile(np.hypot(truth_u, truth_v), 5) > 10


def test_grid_holds_the_same_vectors(drift):
    ds, vec = drift.grid, drift.vectors
    assert ds["u"].dims == ("y", "x") and ds.sizes == {"y": 62, "x": 62}
    assert crs_of(ds).equals(CRS.from_user_input(CHART_MERCATOR))
    for name in ("u", "v", "speed", "direction", "quality"):
        np.testing.assert_allclose(ds[name].values[vec["row"], vec["col"]], vec[name], rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(ds["x"].values[vec["col"]], vec.geometry.x, atol=1e-6)
    np.testing.assert_allclose(ds["y"].values[vec["row"]], vec.geometry.y, atol=1e-6)
    np.testing.assert_allclose(ds["lat"].values[vec["row"], vec["col"]], vec["lat"], atol=1e-9)
    assert np.isnan(ds["u"].values).sum() == 62 * 62 - len(vec)
    assert np.all(np.diff(ds["x"].values) == 32 * RES) and np.all(np.diff(ds["y"].values) == -32 * RES)


def test_a_decorrelated_patch_gives_no_vectors(moved):
    first, second, truth_u, truth_v = moved
    changed = second.copy()
    # the ice in this block is replaced by other ice: nothing there can be followed
    changed[700:1300, 700:1300] = speckle(
        texture((600, 600), np.random.default_rng(99)), np.random.default_rng(98), 4
    )
    grid = chart_grid(2000)
    result = estimate_drift(first, changed, grid, SIX_HOURS)
    errors = pixel_errors(result, grid, truth_u, truth_v)
    vec = result.vectors
    col = (vec.geometry.x.to_numpy() - grid.transform.c) / RES - 0.5
    row = (grid.transform.f - vec.geometry.y.to_numpy()) / RES - 0.5
    end_col = col + map_coordinates(truth_u, [row, col], order=1)
    end_row = row + map_coordinates(truth_v, [row, col], order=1)
    inside = (end_col > 716) & (end_col < 1284) & (end_row > 716) & (end_row < 1284)
    # about 17 x 17 grid points end inside the block: nearly all are dropped, none that remain are wrong
    assert inside.sum() <= 3
    assert np.all(errors[inside] < 2)
    assert result.rejected.get("incoherent", 0) + result.rejected.get("quality", 0) > 200
    assert np.median(errors[~inside]) < 0.5


def test_no_data_gives_no_vectors():
    first, second, _, _ = pair((1000, 1000), 2, Motion(shift_x=15, shift_y=10))
    first[100:400, 100:400] = np.nan  # land in the first scene
    second[600:900, 500:900] = np.nan  # outside the second scene's swath
    grid = chart_grid(1000)
    result = estimate_drift(first, second, grid, SIX_HOURS)
    vec = result.vectors
    col = (vec.geometry.x.to_numpy() - grid.transform.c) / RES - 0.5
    row = (grid.transform.f - vec.geometry.y.to_numpy()) / RES - 0.5
    # no template (32 px around the start) touches the first hole
    assert not np.any((col > 100 - 16) & (col < 400 + 16) & (row > 100 - 16) & (row < 400 + 16))
    # no match lands in the second hole (the end of each vector lies at least 13 px inside data)
    end_col, end_row = col + vec["u"] / RES, row - vec["v"] / RES
    assert not np.any(
        (end_col > 500 - 13) & (end_col < 900 + 13) & (end_row > 600 - 13) & (end_row < 900 + 13)
    )
    assert result.rejected["nodata"] >= 81 + 100
    assert len(vec) > 500
    ds = result.grid
    assert np.isnan(ds["u"].isel(x=slice(4, 11), y=slice(4, 11))).all()


@pytest.mark.parametrize(
    ("shift_x", "shift_y", "heading"), [(12, 0, 90), (0, -12, 0), (-12, 0, 270), (0, 12, 180)]
)
def test_speed_and_direction_follow_u_v_and_time(shift_x, shift_y, heading):
    first, second, _, _ = pair((500, 500), 5, Motion(shift_x=shift_x, shift_y=shift_y))
    grid = chart_grid(500)
    result = estimate_drift(first, second, grid, 3600.0)
    vec = result.vectors
    assert len(vec) > 100
    # a pure shift of 12 px = 600 grid metres east (north, ...)
    np.testing.assert_allclose(np.median(vec["u"]), shift_x * RES, atol=0.1 * RES)
    np.testing.assert_allclose(np.median(vec["v"]), -shift_y * RES, atol=0.1 * RES)
    mean_heading = math.degrees(
        math.atan2(
            np.mean(np.sin(np.radians(vec["direction"]))), np.mean(np.cos(np.radians(vec["direction"])))
        )
    )
    assert abs((mean_heading - heading + 180) % 360 - 180) < 0.5
    # grid north is true north in the chart Mercator: direction is the bearing of (u, v) itself
    bearing = np.degrees(np.arctan2(vec["u"], vec["v"])) % 360
    assert np.all(np.abs((vec["direction"] - bearing + 180) % 360 - 180) < 0.02)
    # speed is ground metres per second: grid metres over the Mercator scale k(lat), true at 61 deg 40 min
    e2 = CRS.from_user_input(CHART_MERCATOR).get_geod().es

    def radius_of_parallel(lat_deg: np.ndarray | float) -> np.ndarray:
        lat = np.radians(lat_deg)
        return np.cos(lat) / np.sqrt(1 - e2 * np.sin(lat) ** 2)

    k = radius_of_parallel(61 + 40 / 60) / radius_of_parallel(vec["lat"].to_numpy())
    np.testing.assert_allclose(vec["speed"], np.hypot(vec["u"], vec["v"]) / k / 3600.0, rtol=2e-4)


def test_speed_limit_drops_fast_vectors(moved):
    first, second, _, _ = moved
    grid = chart_grid(2000)
    unlimited = estimate_drift(first, second, grid, SIX_HOURS)
    limit = float(np.median(unlimited.vectors["speed"]))
    limited = estimate_drift(first, second, grid, SIX_HOURS, max_speed_m_s=limit)
    assert limited.vectors["speed"].max() <= limit
    assert limited.rejected["speed"] >= 0.4 * len(unlimited.vectors)


def test_files_read_back_with_the_same_values(drift, tmp_path: Path):
    vec = drift.vectors
    gpkg = write_vectors(drift, tmp_path / "drift.gpkg")
    parquet = write_vectors(drift, tmp_path / "drift.parquet")
    lines = write_vectors(drift, tmp_path / "lines.gpkg", lines=True)
    netcdf = write_grid(drift, tmp_path / "drift.nc")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "drift.gpkg",
        "drift.nc",
        "drift.parquet",
        "lines.gpkg",
    ]

    for back in (pyogrio.read_dataframe(gpkg), gpd.read_parquet(parquet)):
        assert back.crs.equals(vec.crs)
        assert len(back) == len(vec)
        for name in ("u", "v", "speed", "direction", "quality", "lon", "lat", "row", "col"):
            np.testing.assert_allclose(back[name], vec[name], rtol=1e-12)
        np.testing.assert_allclose(back.geometry.x, vec.geometry.x)
        np.testing.assert_allclose(back.geometry.y, vec.geometry.y)

    arrows = pyogrio.read_dataframe(lines)
    ends = np.array([line.coords[-1] for line in arrows.geometry])
    np.testing.assert_allclose(ends[:, 0], vec.geometry.x + vec["u"], atol=1e-6)
    np.testing.assert_allclose(ends[:, 1], vec.geometry.y + vec["v"], atol=1e-6)
    # the end of the arrow in lon/lat is the vector's lon_end/lat_end
    lon, lat = Transformer.from_crs(vec.crs, "EPSG:4326", always_xy=True).transform(ends[:, 0], ends[:, 1])
    np.testing.assert_allclose(lon, vec["lon_end"], atol=1e-9)
    np.testing.assert_allclose(lat, vec["lat_end"], atol=1e-9)

    with xr.open_dataset(netcdf) as ds:
        assert crs_of(ds).equals(vec.crs)
        assert ds.attrs["time_difference_seconds"] == SIX_HOURS
        assert ds["speed"].attrs["units"] == "m s-1"
        for name in ("u", "v", "speed", "direction", "quality"):
            np.testing.assert_array_equal(ds[name].values, drift.grid[name].values)
        np.testing.assert_array_equal(ds["x"].values, drift.grid["x"].values)


def test_unknown_vector_format_is_refused(drift, tmp_path: Path):
    with pytest.raises(InputError, match=r"\.gpkg.*\.parquet"):
        write_vectors(drift, tmp_path / "drift.shp")
    assert list(tmp_path.iterdir()) == []


def test_scenes_that_do_not_overlap_are_refused():
    first, second, _, _ = pair((600, 600), 3, Motion(shift_x=5))
    first[:, 300:] = np.nan
    second[:, :300] = np.nan
    with pytest.raises(InputError, match="do not overlap"):
        estimate_drift(first, second, chart_grid(600), SIX_HOURS, names=("a.tif", "b.tif"))


def test_scenes_of_different_ice_are_refused():
    first, _, _, _ = pair((600, 600), 3, Motion())
    other, _, _, _ = pair((600, 600), 4, Motion())
    with pytest.raises(InputError, match="a.tif / b.tif"):
        estimate_drift(first, other, chart_grid(600), SIX_HOURS, names=("a.tif", "b.tif"))


def test_scenes_off_the_grid_are_refused():
    first, second, _, _ = pair((600, 600), 3, Motion())
    with pytest.raises(InputError, match="b.tif: shape .* rectify both scenes to the same Grid"):
        estimate_drift(first, second[:500], chart_grid(600), SIX_HOURS, names=("a.tif", "b.tif"))
    with pytest.raises(InputError, match="positive seconds"):
        estimate_drift(first, second, chart_grid(600), 0.0)


def test_real_scene_moved_by_a_sub_pixel_shift(data: Path):
    """The Sentinel-1 dB scene (UTM 31N, 20 m) and the same moved 3.4 px east and 2.7 px north, each with
    its own noise: real texture, and a grid whose north is not true north."""
    with rasterio.open(data / S1) as src:
        values = src.read(1)
        grid = Grid(CRS.from_user_input(src.crs.to_wkt()), src.transform, src.width, src.height)
    first = np.where(values == src.nodata, np.nan, values).astype(np.float32)
    moved = shift(first, (-2.7, 3.4), order=3, mode="constant", cval=np.nan).astype(np.float32)
    rng = np.random.default_rng(3)
    first += rng.normal(0, 0.5, first.shape).astype(np.float32)
    moved += rng.normal(0, 0.5, first.shape).astype(np.float32)
    result = estimate_drift(first, moved, grid, 3600.0, step_px=16, patch_px=32, search_px=8)
    vec = result.vectors
    assert len(vec) > 150
    errors = np.hypot(vec["u"] / 20 - 3.4, vec["v"] / 20 - 2.7)
    assert np.median(errors) < 0.1 and errors.max() < 0.5
    # east of the central meridian, grid north points east of true north by the meridian convergence
    convergence = (
        Proj(grid.crs).get_factors(vec["lon"].to_numpy(), vec["lat"].to_numpy()).meridian_convergence
    )
    bearing = np.degrees(np.arctan2(vec["u"], vec["v"]))
    assert np.min(convergence) > 0.9 and np.max(convergence) < 1.2
    np.testing.assert_allclose(vec["direction"], bearing + convergence, atol=0.02)
