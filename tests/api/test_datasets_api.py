"""The xcube-compatible dataset routes, with the fields the real xcube viewer needs
(../shared/design/xcube-viewer-compat.md)."""

import base64

import numpy as np
import pytest
import xarray as xr
from fastapi.testclient import TestClient
from helpers import context_with

from cubeport.api.app import create_app


@pytest.fixture(scope="module")
def client(tmp_path_factory, data):
    context = context_with(tmp_path_factory.mktemp("datasets"), data, {"olci": "olci", "ndvi": "ndvi"})
    context.catalogue.update("olci", title="OLCI North Sea")
    with TestClient(create_app(context), raise_server_exceptions=False) as client:
        yield client
    context.close()


def test_dataset_list_and_details_have_what_the_viewer_needs(client, data):
    brief = client.get("/datasets").json()["datasets"]
    assert [(d["id"], d["title"]) for d in brief] == [("ndvi", "ndvi"), ("olci", "OLCI North Sea")]
    assert "variables" not in brief[0]
    detailed = {d["id"]: d for d in client.get("/datasets", params={"details": 1}).json()["datasets"]}
    olci = detailed["olci"]
    for key in ("id", "bbox", "dimensions", "attrs", "resolutions", "variables"):
        assert key in olci
    west, south, east, north = olci["bbox"]
    assert (west, south, east, north) == pytest.approx((0, 50, 5, 52.5), abs=1e-6)
    source = xr.open_zarr(data / "cubes/olci-north-sea-chl-5steps.zarr")
    time = next(d for d in olci["dimensions"] if d["name"] == "time")
    assert time["size"] == 5 and all(isinstance(t, str) and t.endswith("Z") for t in time["coordinates"])
    assert time["coordinates"][0] == source.time[0].dt.floor("s").dt.strftime("%Y-%m-%dT%H:%M:%SZ").item()
    chl = next(v for v in olci["variables"] if v["name"] == "conc_chl")
    assert chl["dims"] == ["time", "lat", "lon"] and chl["shape"] == [5, 1000, 2000]
    assert chl["colorBarMin"] < chl["colorBarMax"] and chl["colorBarName"] and isinstance(chl["attrs"], dict)
    # the zoom of a 256 px, 180 degree geographic tile grid at which tiles are as fine as 0.0025 degrees
    assert chl["tileLevelMax"] == 9 and len(olci["resolutions"]) == 4 and olci["spatialUnits"] == "degrees"
    assert olci["resolutions"][0] == pytest.approx(0.0025) and olci["resolutions"][1] == pytest.approx(0.005)
    assert (
        detailed["ndvi"]["spatialRef"] == "EPSG:32633"
        and detailed["ndvi"]["variables"][1]["timeChunkSize"] == 128
    )
    assert client.get("/datasets/olci").json() == olci


def test_coordinates_colorbars_and_errors(client):
    lat = client.get("/datasets/olci/coords/lat").json()
    assert lat["size"] == 1000 and lat["coordinates"][0] > lat["coordinates"][-1]
    missing = client.get("/datasets/olci/coords/depth")
    assert missing.status_code == 404 and "time, lat, lon" in missing.json()["error"]["message"]
    assert client.get("/datasets/nope").status_code == 404
    bars = client.get("/colorbars").json()
    names = {name for _, _, entries in bars for name, _ in entries}
    assert {"viridis", "thermal", "tab20", "RdYlBu"} <= names
    preview = base64.b64decode(bars[0][2][0][1])
    assert preview.startswith(b"\x89PNG")


def test_attributes_are_plain_json():
    from cubeport.cubes.cf import json_attrs

    attrs = json_attrs(
        {"valid_range": np.array([0.0, np.nan]), "scale": np.float32(2), "flags": (1, 2)}, nan="NaN"
    )
    assert attrs == {"valid_range": [0.0, "NaN"], "scale": 2.0, "flags": [1, 2]}
