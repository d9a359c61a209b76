"""Ice-chart polygons from a truth class raster on the chart Mercator: SIGRID-3 codes per class, areas equal to
the pixels' true areas, GeoPackage and Shapefile written atomically and read back by pyogrio, and the
GeoPackage imported into a SQLite feature store."""

from __future__ import annotations

import numpy as np
import pyogrio
import pytest
import shapely
from affine import Affine
from pyproj import CRS, Proj, Transformer
from scenes import FAST, truth_scene

from cubeport.db import Database
from cubeport.errors import InputError
from cubeport.features.backends import feature_store
from cubeport.features.importer import import_file
from cubeport.seaice.charts import chart_polygons, write_chart
from cubeport.seaice.classify import CLASS_NAMES, CLASS_NODATA
from cubeport.seaice.grid import CHART_MERCATOR, Grid

RES = 50.0
SHAPE = (1200, 1200)
# The codes each class must carry, written out from the SIGRID-3 tables (not read from charts.py):
# (POLY_TYPE, CT, CA, SA, FA).
EXPECTED = {
    "open_water": ("W", "01", "-9", "-9", "-9"),
    "new_ice": ("I", "92", "92", "81", "99"),
    "level_ice": ("I", "92", "92", "86", "21"),
    "deformed_ice": ("I", "92", "92", "86", "99"),
    "fast_ice": ("I", "92", "92", "86", "08"),
}
FIELDS = ["POLY_TYPE", "CT", "CA", "SA", "FA", "CB", "SB", "FB", "CC", "SC", "FC", "CN", "CD", "CF"]
FIELDS += ["AREA", "PERIMETER", "ice_class", "class_id"]


@pytest.fixture(scope="module")
def grid():
    """A 60 x 60 km grid of 50 m pixels in the Bothnian Sea (63 deg N, where the chart Mercator's pixels
    are 9 % smaller in true area than at its true-scale latitude)."""
    x, y = Transformer.from_crs("EPSG:4326", CHART_MERCATOR, always_xy=True).transform(21.0, 63.0)
    return Grid(CRS.from_user_input(CHART_MERCATOR), Affine(RES, 0, x, 0, -RES, y), SHAPE[1], SHAPE[0])


@pytest.fixture(scope="module")
def scene():
    return truth_scene(SHAPE, seed=7)


@pytest.fixture(scope="module")
def chart(scene, grid):
    return chart_polygons(scene.classes, grid, min_area_km2=0.1)


def true_areas(classes, grid):
    """km^2 of every class from pixel counts and the Mercator's areal scale at each row's latitude."""
    to_lonlat = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True)
    rows = np.arange(grid.height)
    lon, lat = to_lonlat.transform(
        np.full(grid.height, grid.transform.c), grid.transform.f - (rows + 0.5) * RES
    )
    pixel_km2 = RES * RES / Proj(grid.crs).get_factors(lon, lat).areal_scale / 1e6
    return {
        CLASS_NAMES[code]: float(((classes == code).sum(axis=1) * pixel_km2).sum()) for code in CLASS_NAMES
    }


def test_every_class_has_polygons_with_its_sigrid3_codes(chart, scene):
    assert list(chart.columns[:-1]) == FIELDS and chart.geometry.name == "geometry"
    assert set(chart.ice_class) == set(EXPECTED)  # all five classes, no land or no-data polygons
    for name, codes in EXPECTED.items():
        rows = chart[chart.ice_class == name]
        assert len(rows) > 0
        assert set(map(tuple, rows[["POLY_TYPE", "CT", "CA", "SA", "FA"]].to_numpy())) == {codes}
        assert set(rows.class_id) == {next(c for c, n in CLASS_NAMES.items() if n == name)}
    assert set(chart[["CB", "SB", "FB", "CC", "SC", "FC", "CN", "CD", "CF"]].to_numpy().ravel()) == {"-9"}
    assert chart.geometry.is_valid.all() and (chart.geometry.geom_type == "Polygon").all()
    assert chart.crs.equals(CRS.from_user_input(CHART_MERCATOR))


def test_areas_equal_the_pixels_true_areas(chart, scene, grid):
    exact = chart_polygons(scene.classes, grid, min_area_km2=0)
    truth = true_areas(scene.classes, grid)
    for name, area in exact.groupby("ice_class").AREA.sum().items():
        assert area == pytest.approx(truth[name], rel=2e-3)  # no sieve: the same pixels
    for name, area in chart.groupby("ice_class").AREA.sum().items():
        assert area == pytest.approx(truth[name], rel=0.03)  # sieved: a few percent move between classes
    assert len(chart) < len(exact)
    # Nothing lands on land or no-data: polygons cover exactly the classified pixels' extent.
    covered = shapely.area(shapely.union_all(chart.geometry.to_numpy())) / RES**2
    assert covered == pytest.approx((scene.classes != CLASS_NODATA).sum(), rel=1e-9)
    # PERIMETER: a polygon's boundary, in km on the ground (about 10 % shorter than the Mercator's metres).
    one = chart.iloc[int(np.argmax(chart.AREA))]
    assert pytest.approx(one.geometry.length / 1e3 / 1.0453, rel=0.02) == one.PERIMETER


def test_speckle_is_sieved_into_its_neighbours(grid):
    classes = np.full(SHAPE, 2, np.uint8)
    rng = np.random.default_rng(0)
    classes[rng.random(SHAPE) < 0.01] = 0  # single-pixel speckle: 1 % of the pixels
    classes[100:300, 100:300] = FAST
    classes[:, :50] = CLASS_NODATA
    classes[600, 20] = 1  # a speck in no-data cannot merge: it is dropped
    chart = chart_polygons(classes, grid, min_area_km2=0.1)
    assert sorted(chart.ice_class) == ["fast_ice", "level_ice"]
    raw = chart_polygons(classes, grid, min_area_km2=0)
    assert len(raw) > 10_000


@pytest.mark.parametrize("suffix", [".gpkg", ".shp"])
def test_files_round_trip_with_their_fields(tmp_path, chart, suffix):
    path = write_chart(chart, tmp_path / f"chart{suffix}")
    info = pyogrio.read_info(path)
    assert list(info["fields"]) == FIELDS
    assert info["features"] == len(chart)
    back = pyogrio.read_dataframe(path)
    assert CRS.from_user_input(back.crs).equals(chart.crs)
    for field in ("POLY_TYPE", "CT", "CA", "SA", "FA", "CF", "ice_class"):
        assert list(back[field]) == list(chart[field])
    assert np.allclose(back.AREA, chart.AREA) and list(back.class_id) == list(chart.class_id)
    assert np.allclose(shapely.area(back.geometry.to_numpy()), shapely.area(chart.geometry.to_numpy()))
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporary left


def test_rewriting_a_shapefile_replaces_the_whole_set(tmp_path, chart):
    path = tmp_path / "chart.shp"
    write_chart(chart, path)
    (tmp_path / "chart.qix").write_bytes(b"an old spatial index")  # a sidecar of the old version
    write_chart(chart.iloc[:5], path)
    assert pyogrio.read_info(path)["features"] == 5
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".cpg", ".dbf", ".prj", ".shp", ".shx"]
    with pytest.raises(InputError, match=r"\.gpkg .* \.shp"):
        write_chart(chart, tmp_path / "chart.geojson")
    with pytest.raises(InputError, match="10 characters"):
        write_chart(chart.rename(columns={"ice_class": "ice_class_name"}), path)
    assert pyogrio.read_info(path)["features"] == 5  # the refused write changed nothing


def test_an_empty_chart_is_a_valid_file(tmp_path, grid):
    chart = chart_polygons(np.full(SHAPE, CLASS_NODATA, np.uint8), grid)
    assert len(chart) == 0
    path = write_chart(chart, tmp_path / "empty.gpkg")
    assert pyogrio.read_info(path)["features"] == 0


def test_the_feature_store_imports_the_geopackage(tmp_path, chart):
    path = write_chart(chart, tmp_path / "ice_chart.gpkg", crs="EPSG:4326")  # the store takes EPSG CRSs
    db = Database(f"sqlite:///{tmp_path / 'cubeport.db'}")
    db.upgrade()
    try:
        store = feature_store(db)
        spec, count = import_file(store, path, "seaice", "chart")
        assert count == len(chart) and spec.crs == 4326 and spec.geometry_type == "Polygon"
        assert {p: spec.properties[p] for p in ("poly_type", "ct", "sa", "fa", "area", "class_id")} == {
            "poly_type": "string",
            "ct": "string",
            "sa": "string",
            "fa": "string",
            "area": "number",
            "class_id": "integer",
        }
        features = list(store.query("seaice", "chart"))
        assert sum(f["properties"]["area"] for f in features) == pytest.approx(chart.AREA.sum())
        fast = [f for f in features if f["properties"]["ice_class"] == "fast_ice"]
        assert fast and {f["properties"]["fa"] for f in fast} == {"08"}
    finally:
        db.dispose()
