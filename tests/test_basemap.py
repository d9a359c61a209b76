"""The offline base map: `cubeport basemap` turns the Natural Earth and GSHHG land samples into simplified
polygons that the server hands to the viewer; they agree with the independent GLOBE land mask."""

from __future__ import annotations

import numpy as np
import shapely
from fastapi.testclient import TestClient
from global_land_mask import globe
from helpers import cli
from shapely.geometry import shape

from cubeport.api.app import create_app
from cubeport.config import load_settings
from cubeport.context import Context


def test_basemap_from_natural_earth_and_gshhg_agrees_with_globe(tmp_path, data):
    root = str(tmp_path / "root")
    land = data / "land"
    made = cli(
        "basemap",
        str(land / "naturalearth_lowres/naturalearth_lowres.shp"),
        str(land / "gshhg_full_baltic_9-31E_53-66.5N.gpkg"),
        "--data-root",
        root,
    )
    assert made.returncode == 0, made.stderr
    assert "base map land:" in made.stdout
    context = Context(load_settings(data_root=root))
    try:
        response = TestClient(create_app(context)).get("/basemaps/land.geojson")
        assert response.status_code == 200 and response.headers["content-type"] == "application/geo+json"
        assert len(response.content) < 3_000_000  # small enough for a browser
        polygons = shapely.union_all([shape(f["geometry"]) for f in response.json()["features"]])
        rng = np.random.default_rng(1)
        lon, lat = rng.uniform(10, 30, 4000), rng.uniform(54, 66, 4000)
        ours = shapely.contains_xy(polygons, lon, lat)
        theirs = globe.is_land(lat, lon)
        assert ours.sum() > 1000 and (~ours).sum() > 1000
        assert (ours == theirs).mean() > 0.97
        missing = TestClient(create_app(context)).get("/basemaps/sea.geojson")
        assert missing.status_code == 404 and "base maps: land" in missing.json()["detail"]
    finally:
        context.close()


def test_basemap_refuses_what_it_cannot_read(tmp_path, data):
    root = str(tmp_path / "root")
    for source, says in (
        (str(tmp_path / "nothing.gpkg"), "no such file"),
        (str(data / "rasters/RGB.byte.tif"), "not a vector file"),
    ):
        result = cli("basemap", source, "--data-root", root)
        assert (
            result.returncode == 2
            and says in result.stderr + result.stdout
            and "Traceback" not in result.stderr
        )
