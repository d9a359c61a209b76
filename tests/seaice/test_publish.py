"""Processed scenes into the platform: a step of the ice cube per day, mosaicking the day's scenes (through
the normal append and update paths), each scene's files as assets of its STAC item, the chart in the feature
store, tiles and WMTS at once."""

from __future__ import annotations

import io
from datetime import datetime

import numpy as np
import pytest
import rasterio
from fastapi.testclient import TestClient
from frames import OULU, write_frame
from helpers import context_with
from PIL import Image

from cubeport.config import SeaIceSettings
from cubeport.seaice.chain import process_delivery
from cubeport.seaice.classify import CLASS_NODATA
from cubeport.seaice.publish import CHARTS, DATABASE, cube_grid, cube_slab


@pytest.fixture(scope="module")
def published(tmp_path_factory, data):
    root = tmp_path_factory.mktemp("published")
    gshhg = str(data / "land" / "gshhg_full_baltic_9-31E_53-66.5N.gpkg")
    context = context_with(root / "data", data, {})
    settings = SeaIceSettings(resolution=40.0, land_polygons=gshhg, cube_resolution=1000.0)
    context.settings.seaice = settings
    acquisitions = [  # the afternoon scene, further east, is published before the morning one
        (datetime(2026, 2, 14, 16, 20), (OULU[0] + 0.2, OULU[1])),
        (datetime(2026, 2, 14, 4, 50), OULU),
        (datetime(2026, 2, 15, 5, 2), OULU),
    ]
    scenes, results, tiles = [], [], []
    for i, (start, center) in enumerate(acquisitions):
        frame = write_frame(
            root / f"d{i}", gshhg, shape=(600, 600), seed=i + 3, start=start, center=center, image_id=f"77{i}"
        )
        scene = process_delivery(frame.delivery, root / "out", settings)
        scenes.append(scene)
        results.append(context.seaice.scene(scene))
        context.open_cubes.refresh()
        tiles.append(
            context.tiles.tile("baltic-ice", "sigma0_db", tms_name="WebMercatorQuad", z=7, x=72, y=33)
        )
    return context, scenes, results, tiles


def test_the_ice_cube_has_a_step_a_day(published):
    context, scenes, results, _ = published
    assert {r.cube for r in results} == {"baltic-ice"}
    ds = context.cubes.open("baltic-ice", dask=False)
    assert ds.sizes["time"] == 2 and {"sigma0_db", "incidence", "ice_class"} <= set(ds.data_vars)
    assert [str(t)[:19] for t in ds["time"].values] == ["2026-02-14T00:00:00", "2026-02-15T00:00:00"]
    grid = cube_grid(context.settings.seaice)
    assert (ds.sizes["y"], ds.sizes["x"]) == grid.shape
    classes = ds["ice_class"].isel(time=0).values
    seen = classes[(classes != CLASS_NODATA) & ~np.isnan(classes.astype(float))]
    assert seen.size > 100 and set(np.unique(seen)) <= {0, 1, 2, 3, 4}


def test_a_day_is_the_mosaic_of_its_scenes_the_later_on_top(published):
    context, scenes, _, tiles = published
    grid = cube_grid(context.settings.seaice)
    afternoon, morning = (cube_slab(s, grid) for s in scenes[:2])
    day = context.cubes.open("baltic-ice", dask=False).isel(time=0)
    seen_pm = np.isfinite(afternoon["sigma0_db"].values[0])
    seen_am = np.isfinite(morning["sigma0_db"].values[0])
    both, am_only = seen_pm & seen_am, seen_am & ~seen_pm
    assert both.sum() > 100 and am_only.sum() > 100 and (seen_pm & ~seen_am).sum() > 100
    mosaic = day["sigma0_db"].values
    np.testing.assert_allclose(mosaic[seen_pm], afternoon["sigma0_db"].values[0][seen_pm], rtol=1e-6)
    np.testing.assert_allclose(mosaic[am_only], morning["sigma0_db"].values[0][am_only], rtol=1e-6)
    assert np.isnan(mosaic[~(seen_am | seen_pm)]).all()
    hours = day["observation_hour"].values
    assert np.allclose(hours[seen_pm], 16 + 20 / 60) and np.allclose(hours[am_only], 4 + 50 / 60)
    classes = day["ice_class"].values
    np.testing.assert_array_equal(classes[am_only], morning["ice_class"].values[0][am_only])
    # each publication shows on the map: the tile changed when the morning scene joined the day
    assert tiles[0].etag != tiles[1].etag and tiles[0].content != tiles[1].content


def test_the_cube_step_is_the_scene_resampled(published):
    context, scenes, _, _ = published
    slab = cube_slab(scenes[0], cube_grid(context.settings.seaice))
    with rasterio.open(scenes[0].path("backscatter")) as src:
        full = src.read(1)
    values = slab["sigma0_db"].values[0]
    assert np.isfinite(values).sum() > 50

    def power_mean_db(db):
        return 10 * np.log10(np.nanmean(10 ** (db / 10)))

    # averaged down as linear power: the same mean power as the scene (a dB average would fall short)
    assert abs(power_mean_db(values) - power_mean_db(full)) < 0.3


def test_the_scene_files_are_assets_of_the_step_item(published):
    context, scenes, results, _ = published
    assert len({r.item for r in results}) == 3  # an item per scene, two of them in one day
    item = context.products.item("baltic-ice", results[0].item)
    hrefs = {a["href"] for a in item["assets"].values()}
    assert {
        scenes[0].files["backscatter"],
        scenes[0].files["classes"],
        scenes[0].files["chart_gpkg"],
    } <= hrefs
    assert any(h.endswith(".shp.zip") for h in hrefs)
    assert (
        item["properties"]["sar:polarizations"] == ["VV"] and item["properties"]["constellation"] == "ICEYE"
    )
    for href in hrefs:  # every asset is a kept file
        assert context.storage.exists(*context.products.asset("baltic-ice", results[0].item, href))


def test_the_charts_are_in_the_feature_store(published):
    context, scenes, results, _ = published
    spec = context.features.get(DATABASE, CHARTS)
    assert spec.crs == 4326 and spec.time_property == "time"
    total = context.features.count(DATABASE, CHARTS)
    assert total == sum(r.features[CHARTS] for r in results) > 0


def test_the_new_steps_show_on_the_map_at_once(published):
    from cubeport.api.app import create_app

    context, _, _, _ = published
    with TestClient(create_app(context.settings)) as client:
        capabilities = client.get("/wmts/1.0.0/WMTSCapabilities.xml")
        assert capabilities.status_code == 200 and "baltic-ice" in capabilities.text
        assert client.get("/datasets/baltic-ice").status_code == 200
        for time in ("2026-02-14T00:00:00Z", "2026-02-15T00:00:00Z"):  # the tile over Oulu at zoom 7
            tile = client.get("/tiles/baltic-ice/ice_class/7/33/72", params={"time": time})
            assert tile.status_code == 200 and tile.headers["content-type"] == "image/png"
            alpha = np.asarray(Image.open(io.BytesIO(tile.content)).convert("RGBA"))[..., 3]
            assert (alpha > 0).sum() > 20  # the scene is drawn
