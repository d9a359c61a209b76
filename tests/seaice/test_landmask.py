"""Land mask: GSHHG full-resolution Baltic polygons rasterised on the chart grid (checked point by point
against the polygons with shapely), the coastal buffer, and the GLOBE fallback (checked against
global-land-mask's own lookup)."""

from __future__ import annotations

import math
from pathlib import Path

import dask.array as da
import numpy as np
import pyogrio
import pytest
import rasterio
import shapely
from pyproj import CRS, Transformer
from scipy import ndimage

from cubeport.errors import InputError
from cubeport.seaice.grid import CHART_MERCATOR, Grid, grid_covering
from cubeport.seaice.landmask import apply_land_mask, buffer_pixels, land_mask

GSHHG = "land/gshhg_full_baltic_9-31E_53-66.5N.gpkg"
CHART = CRS.from_user_input(CHART_MERCATOR)

# (lon, lat, is land): Helsinki city centre, Gotland's interior, the central Baltic, the Gulf of Bothnia
POINTS = [(24.94, 60.17, True), (18.5, 57.5, True), (20.0, 58.5, False), (20.5, 63.0, False)]


@pytest.fixture(scope="module")
def land(data: Path) -> shapely.STRtree:
    """The polygons themselves, for truth independent of rasterisation."""
    return shapely.STRtree(pyogrio.read_dataframe(data / GSHHG).geometry.values)


def on_land(tree: shapely.STRtree, lons: np.ndarray, lats: np.ndarray) -> np.ndarray:
    points = shapely.points(lons, lats)
    inside = np.zeros(len(points), bool)
    hits = tree.query(points, predicate="within")
    inside[hits[0]] = True
    return inside


def centres(grid: Grid, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """lon/lat of pixel centres."""
    xs = grid.transform.c + (cols + 0.5) * grid.transform.a
    ys = grid.transform.f + (rows + 0.5) * grid.transform.e
    lons, lats = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True).transform(xs, ys)
    return np.asarray(lons), np.asarray(lats)


@pytest.mark.parametrize(("lon", "lat", "is_land"), POINTS)
def test_known_places(data: Path, land: shapely.STRtree, lon: float, lat: float, is_land: bool) -> None:
    assert on_land(land, np.array([lon]), np.array([lat]))[0] == is_land  # the premise, from the polygons
    grid = grid_covering([lon - 0.02, lon + 0.02], [lat - 0.01, lat + 0.01], CHART, 25.0)
    mask = land_mask(grid, str(data / GSHHG))
    assert mask.dtype == np.bool_ and mask.shape == grid.shape
    x, y = Transformer.from_crs("EPSG:4326", CHART, always_xy=True).transform(lon, lat)
    col, row = ~grid.transform @ (x, y)
    assert mask[int(row), int(col)] == is_land
    # the pixel's centre (at most 18 m from the point) decides, by the polygons too
    lons, lats = centres(grid, np.array([int(row)]), np.array([int(col)]))
    assert on_land(land, lons, lats)[0] == is_land


def test_every_pixel_centre_agrees_with_the_polygons(data: Path, land: shapely.STRtree) -> None:
    """Helsinki's archipelago at 100 m: 3000 random pixels, land exactly where their centre is."""
    grid = grid_covering([24.5, 25.5], [59.95, 60.3], CHART, 100.0)
    mask = land_mask(grid, str(data / GSHHG))
    assert 0.2 < mask.mean() < 0.8  # coast: both land and sea
    rng = np.random.default_rng(0)
    rows, cols = rng.integers(0, grid.height, 3000), rng.integers(0, grid.width, 3000)
    lons, lats = centres(grid, rows, cols)
    agree = on_land(land, lons, lats) == mask[rows, cols]
    assert agree.mean() >= 0.999


def test_buffer_grows_land_by_about_buffer_over_resolution(data: Path) -> None:
    grid = grid_covering([24.5, 25.5], [59.95, 60.3], CHART, 50.0)
    bare = land_mask(grid, str(data / GSHHG))
    grown = land_mask(grid, str(data / GSHHG), buffer_m=200.0)
    # the chart Mercator is true at 61 40' N; at 60.1 N it shrinks ground distances by cos(61.67)/cos(60.1)
    radius = 200.0 * math.cos(math.radians(61 + 40 / 60)) / math.cos(math.radians(60.125)) / 50.0
    assert buffer_pixels(grid, 200.0) == pytest.approx(radius, rel=0.01)  # 3.8 pixels
    assert (grown >= bare).all()  # only grows
    # truth: pixels within the radius of a land pixel, land outside the grid included (10 pixels wider)
    wide = Grid(
        grid.crs, grid.transform @ grid.transform.translation(-10, -10), grid.width + 20, grid.height + 20
    )
    distance = ndimage.distance_transform_edt(~land_mask(wide, str(data / GSHHG)))[10:-10, 10:-10]
    assert (grown == (distance <= radius)).mean() > 0.9999
    added = distance[grown & ~bare]
    assert added.size > 1000 and 3 <= added.max() <= radius  # about 200 m / 52.5 m in pixels


def test_land_just_outside_the_grid_grows_into_it(data: Path) -> None:
    """A grid cut from a bigger one gets the same mask as the bigger grid has there, buffer included."""
    big = grid_covering([24.5, 25.5], [59.95, 60.3], CHART, 50.0)
    inner = Grid(big.crs, big.transform @ big.transform.translation(40, 30), big.width - 80, big.height - 60)
    whole = land_mask(big, str(data / GSHHG), buffer_m=300.0)
    part = land_mask(inner, str(data / GSHHG), buffer_m=300.0)
    assert (part == whole[30:-30, 40:-40]).mean() > 0.9999


def test_globe_fallback_matches_global_land_mask() -> None:
    """Without polygons: GLOBE 30'' sampled at pixel centres, as global-land-mask's own `is_land` says
    at those centres. (The GLOBE raster in the sample data sits half a cell off the package's lookup:
    it disagrees with `is_land` on 1.2 % of random Baltic points, so it is not the truth here.)"""
    from global_land_mask import globe  # decompresses the whole global mask: only here

    grid = grid_covering([17.0, 26.0], [57.0, 63.5], CHART, 1000.0)
    mask = land_mask(grid)
    rows, cols = np.mgrid[0 : grid.height, 0 : grid.width]
    lons, lats = centres(grid, rows.ravel(), cols.ravel())
    assert (mask.ravel() == globe.is_land(lats, lons)).all()
    for lon, lat, is_land in POINTS[1:]:  # Helsinki's centre is a peninsula finer than 1 km
        x, y = Transformer.from_crs("EPSG:4326", CHART, always_xy=True).transform(lon, lat)
        col, row = ~grid.transform @ (x, y)
        assert mask[int(row), int(col)] == is_land
    grown = land_mask(grid, buffer_m=2000.0)
    assert grown.sum() > mask.sum()


def test_apply_land_mask() -> None:
    values = np.arange(12, dtype=np.float32).reshape(3, 4)
    mask = np.zeros((3, 4), bool)
    mask[1, 2] = mask[0, 0] = True
    out = apply_land_mask(values, mask)
    assert np.isnan(out[1, 2]) and np.isnan(out[0, 0]) and out[2, 3] == 11 and values[1, 2] == 6
    lazy = apply_land_mask(da.from_array(values, chunks=2), mask)
    assert isinstance(lazy, da.Array)
    np.testing.assert_array_equal(lazy.compute(), out)
    classes = np.ones((3, 4), np.uint8)
    masked_classes = apply_land_mask(classes, mask)
    assert masked_classes[1, 2] == 255 and masked_classes.dtype == np.uint8
    with pytest.raises(InputError, match="does not fit"):
        apply_land_mask(values, mask[:2])


def test_unreadable_polygons_are_an_input_error(tmp_path: Path) -> None:
    grid = grid_covering([24.5, 25.0], [60.0, 60.2], CHART, 100.0)
    bad = tmp_path / "land.gpkg"
    bad.write_text("not a geopackage")
    with pytest.raises(InputError, match="land.gpkg"):
        land_mask(grid, str(bad))


def test_sentinel1_scene_rectified_and_masked(data: Path) -> None:
    """The real S-1 dB scene (43.6 N, outside the Baltic polygons: the GLOBE fallback) through rectify
    and the mask: land pixels become no-data, sea pixels keep their rectified value."""
    from cubeport.cubes.readers.base import Georeference
    from cubeport.seaice.rectify import rectify, scene_grid

    with rasterio.open(data / "sar/S1A__IW___A_20150309T173017_VV_grd_mli_geo_norm_db.tif") as ds:
        values = ds.read(1)
        values[values == ds.nodata] = np.nan
        georef = Georeference(crs=ds.crs, transform=ds.transform)
    grid = scene_grid(georef, CHART, 50.0, shape=values.shape)
    db = rectify({"db": values}, georef, grid)["db"]
    mask = land_mask(grid, buffer_m=200.0)
    assert mask.shape == grid.shape and mask.dtype == np.bool_
    masked = apply_land_mask(db, mask)
    assert np.isnan(masked[mask]).all()
    np.testing.assert_array_equal(masked[~mask], db[~mask])
