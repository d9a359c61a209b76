"""The whole chain on a synthetic delivery off the Oulu coast, checked against the truth it was made from."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from frames import write_frame
from pyproj import Transformer
from scenes import CLASS_NODATA

from cubeport.config import SeaIceSettings
from cubeport.errors import InputError
from cubeport.seaice.chain import DeliveryRejected, check_steps, process_delivery
from cubeport.seaice.classify import IceClass


@pytest.fixture(scope="module")
def gshhg(data):
    return str(data / "land" / "gshhg_full_baltic_9-31E_53-66.5N.gpkg")


@pytest.fixture(scope="module")
def settings(gshhg):
    return SeaIceSettings(resolution=40.0, land_polygons=gshhg, coastal_buffer_m=0.0)


@pytest.fixture(scope="module")
def processed(tmp_path_factory, gshhg, settings):
    folder = tmp_path_factory.mktemp("chain")
    frame = write_frame(folder / "delivery", gshhg)
    scene = process_delivery(frame.delivery, folder / "out", settings)
    return frame, scene


def _at_truth_positions(path, frame, band=1, step=5):
    """The raster's values at the true positions of every `step`-th pixel of the frame, with the pixels."""
    rows, cols = np.mgrid[0 : frame.geometry.height : step, 0 : frame.geometry.width : step]
    lon, lat = frame.geometry.lonlat(rows, cols)
    with rasterio.open(path) as src:
        x, y = Transformer.from_crs("EPSG:4326", src.crs, always_xy=True).transform(lon, lat)
        values = np.array([v[0] for v in src.sample(zip(x.ravel(), y.ravel(), strict=True), indexes=band)])
    return values.reshape(rows.shape), rows, cols


def test_the_chain_writes_every_product_and_nothing_else(processed):
    _, scene = processed
    assert sorted(scene.files) == ["backscatter", "chart_gpkg", "chart_shp", "classes", "record"]
    assert all(scene.path(role).is_file() for role in scene.files)
    assert not list(scene.folder.parent.glob(".*.part"))
    record = json.loads(scene.path("record").read_text())
    assert record["scene_id"] == scene.scene_id and set(record["steps_seconds"]) == set(check_steps(None))
    with rasterio.open(scene.path("backscatter")) as src:
        assert src.descriptions == ("sigma0_db", "incidence") and src.res == (40.0, 40.0)
        assert src.overviews(1) and "lat_ts=61.66" in src.crs.to_proj4()


def test_classes_agree_with_the_truth_at_the_true_positions(processed):
    frame, scene = processed
    classes, rows, cols = _at_truth_positions(scene.path("classes"), frame)
    truth = frame.truth.classes[rows, cols]
    both = (classes != CLASS_NODATA) & (truth != CLASS_NODATA)
    assert both.mean() > 0.5  # most of the frame is sea with data
    accuracy = (classes[both] == truth[both]).mean()
    assert accuracy >= 0.9, f"accuracy {accuracy:.3f}"
    assert (classes[frame.truth.land[rows, cols]] == CLASS_NODATA).mean() > 0.97  # land is masked
    present = set(np.unique(classes[both]))
    assert {IceClass.OPEN_WATER, IceClass.LEVEL_ICE, IceClass.DEFORMED_ICE, IceClass.FAST_ICE} <= present


def test_incidence_and_corrected_backscatter_at_the_true_positions(processed, settings):
    frame, scene = processed
    incidence, rows, cols = _at_truth_positions(scene.path("backscatter"), frame, band=2)
    sea = np.isfinite(incidence)
    assert np.nanmax(np.abs(incidence - frame.truth.incidence[cols])[sea]) < 0.05
    sigma0, _, _ = _at_truth_positions(scene.path("backscatter"), frame, band=1)
    truth = frame.truth.classes[rows, cols]
    # corrected to 25 degrees: the ramp is gone, so a class is as bright in the near range as in the far
    level = (truth == IceClass.LEVEL_ICE) & np.isfinite(sigma0)
    near, far = level & (cols < cols.max() / 3), level & (cols > 2 * cols.max() / 3)
    if near.sum() > 100 and far.sum() > 100:
        assert abs(np.median(sigma0[near]) - np.median(sigma0[far])) < 0.5


def test_the_chart_has_sigrid3_polygons_of_the_classes(processed):
    import geopandas as gpd

    _, scene = processed
    chart = gpd.read_file(scene.path("chart_gpkg"))
    assert {"CT", "CA", "SA", "FA", "POLY_TYPE", "AREA"} <= set(chart.columns)
    assert set(chart["POLY_TYPE"]) <= {"I", "W"} and (chart["POLY_TYPE"] == "I").any()
    shp = gpd.read_file(scene.path("chart_shp"))
    assert len(shp) == len(chart)


def test_a_rejected_delivery_leaves_nothing(tmp_path, gshhg, settings):
    frame = write_frame(tmp_path / "delivery", gshhg, shape=(200, 200))
    frame.delivery.with_suffix(".xml").unlink()  # the image without its metadata
    with pytest.raises(DeliveryRejected) as rejected:
        process_delivery(frame.delivery, tmp_path / "out", settings)
    assert rejected.value.validation.problems
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_steps_are_checked_and_run_alone(tmp_path, gshhg, settings):
    with pytest.raises(InputError, match="chart needs classify"):
        check_steps(["validate", "calibrate", "rectify", "chart"])
    with pytest.raises(InputError, match="unknown step"):
        check_steps(["validate", "bake"])
    frame = write_frame(tmp_path / "delivery", gshhg, shape=(200, 300))
    scene = process_delivery(frame.delivery, tmp_path / "out", settings, steps=["validate", "calibrate"])
    assert sorted(scene.files) == ["record", "sigma0_db"]
    with rasterio.open(scene.path("sigma0_db")) as src:
        assert src.shape == (200, 300) and len(src.gcps[0]) > 4
        values = src.read(1)
    # GRD: sigma0 = CF * DN^2, no sine term
    from deliveries import SAMPLE_CF
    from scenes import to_dn

    dn = to_dn(frame.truth, SAMPLE_CF).astype(np.float64)
    expected = 10 * np.log10(SAMPLE_CF * dn**2, where=dn > 0, out=np.full(dn.shape, np.nan))
    assert np.allclose(values, expected, equal_nan=True, atol=1e-4)


def test_a_crash_mid_chain_publishes_no_half_scene(tmp_path, gshhg, settings, monkeypatch):
    import cubeport.seaice.chain as chain

    frame = write_frame(tmp_path / "delivery", gshhg, shape=(200, 200))

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(chain, "chart_polygons", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        process_delivery(frame.delivery, tmp_path / "out", settings)
    assert list((tmp_path / "out").iterdir()) == []


def test_the_sentinel1_scene_runs_through_rectify_mask_and_classify(data):
    """Robustness on real imagery: a calibrated S1 dB scene (EPSG:32631) on the chart grid, masked, classed."""
    from cubeport.cubes.readers.base import Georeference
    from cubeport.seaice.charts import chart_polygons
    from cubeport.seaice.classify import classify
    from cubeport.seaice.landmask import land_mask
    from cubeport.seaice.rectify import rectify, scene_grid

    with rasterio.open(data / "sar" / "S1A__IW___A_20150309T173017_VV_grd_mli_geo_norm_db.tif") as src:
        db = src.read(1).astype(np.float32)
        db[db == src.nodata] = np.nan
        georef = Georeference(crs=src.crs, transform=src.transform)
    grid = scene_grid(georef, resolution=20.0, shape=db.shape)
    rectified = rectify({"sigma0_db": db}, georef, grid)["sigma0_db"]
    assert np.isfinite(rectified).mean() > 0.5
    # the scene is the Camargue (43.6 N 4.5 E): classes of its backscatter as if it were sea...
    classes = classify(rectified)
    data_pixels = np.isfinite(rectified)
    assert (classes[data_pixels] != CLASS_NODATA).mean() > 0.9 and len(np.unique(classes[data_pixels])) >= 2
    assert len(chart_polygons(classes, grid)) > 0
    # ...and with the land mask (GLOBE fallback) no land pixel has a class
    land = land_mask(grid, None, 200.0)
    masked = rectified.copy()
    masked[land] = np.nan
    classes = classify(masked, land=land)
    assert land.any() and (classes[land] == CLASS_NODATA).all()


def test_class_slopes_correct_each_class_with_its_own_slope():
    from cubeport.seaice.chain import _class_corrected

    incidence = np.array([[20.0, 30.0, 27.0]], np.float32)
    raw = np.array([[-20.0, -22.0, -15.0]], np.float32)  # as calibrated, before any correction
    settings = SeaIceSettings(class_slopes={"open_water": -0.5, "deformed_ice": -0.1})
    single = raw + 0.2 * (incidence - 25)  # the chain's first pass with the one slope (-0.2)
    classes = np.array([[IceClass.OPEN_WATER, IceClass.LEVEL_ICE, IceClass.DEFORMED_ICE]], np.uint8)
    out = _class_corrected({"sigma0_db": single, "incidence": incidence}, classes, settings)
    assert np.allclose(out, [[-20.0 - 2.5, -22.0 + 1.0, -15.0 + 0.2]])
