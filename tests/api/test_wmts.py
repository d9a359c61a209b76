"""WMTS 1.0.0 read by a real client (OWSLib): capabilities with a time dimension and three tile matrix
sets, KVP and RESTful GetTile, access on both."""

import io

import httpx
import morecantile
import numpy as np
import pytest
from helpers import context_with
from owslib.wmts import WebMapTileService
from PIL import Image
from services import AppServer

from cubeport.api.app import create_app


@pytest.fixture(scope="module")
def server(tmp_path_factory, data):
    context = context_with(tmp_path_factory.mktemp("wmts"), data, {"sst": "sst", "secret": "sst"})
    context.policy.set_access("cube", "secret", public=False, groups=["fmi"])
    server = AppServer(create_app(context))
    yield server
    server.stop()
    context.close()


def opaque(content: bytes) -> float:
    return float((np.asarray(Image.open(io.BytesIO(content)).convert("RGBA"))[..., 3] > 0).mean())


def test_owslib_reads_capabilities_and_tiles(server):
    wmts = WebMapTileService(f"{server.url}/wmts/1.0.0/WMTSCapabilities.xml")
    assert set(wmts.contents) == {"sst.analysed_sst", "sst.sst_anomaly"}  # not the restricted cube
    layer = wmts.contents["sst.analysed_sst"]
    assert set(layer.tilematrixsetlinks) == {"WebMercatorQuad", "WorldCRS84Quad", "TM35FIN"}
    assert layer.dimensions["Time"]["values"] == [
        "2017-06-05T12:00:00Z",
        "2017-06-06T12:00:00Z",
        "2017-06-07T12:00:00Z",
    ]
    for name in ("WebMercatorQuad", "TM35FIN"):
        matrix = wmts.tilematrixsets[name].tilematrix["3"]
        expected = morecantile.tms.get(name).matrix(3) if name != "TM35FIN" else None
        if expected:
            assert (matrix.matrixwidth, matrix.matrixheight) == (expected.matrixWidth, expected.matrixHeight)
    assert wmts.tilematrixsets["TM35FIN"].tilematrix["0"].matrixwidth == 1
    tile = morecantile.tms.get("WebMercatorQuad").tile(20.0, 58.5, 5)
    first = wmts.gettile(
        layer="sst.analysed_sst",
        tilematrixset="WebMercatorQuad",
        tilematrix=str(tile.z),
        row=tile.y,
        column=tile.x,
        format="image/png",
        Time="2017-06-05T12:00:00Z",
    ).read()  # a dimension, sent as a KVP parameter
    last = wmts.gettile(
        layer="sst.analysed_sst",
        tilematrixset="WebMercatorQuad",
        tilematrix=str(tile.z),
        row=tile.y,
        column=tile.x,
        format="image/png",
    ).read()
    assert opaque(first) > 0.3 and first != last
    template = layer.resourceURLs[0]["template"]
    url = (
        template.replace("{Time}", "2017-06-05T12:00:00Z")
        .replace("{TileMatrixSet}", "WebMercatorQuad")
        .replace("{TileMatrix}", str(tile.z))
        .replace("{TileRow}", str(tile.y))
        .replace("{TileCol}", str(tile.x))
    )
    assert httpx.get(url).content == first


def test_tm35fin_tiles_cover_finland(server):
    # TM35FIN zoom 2: 4 x 4 tiles of 524 km; the column 1, row 2 tile holds the Gulf of Bothnia
    response = httpx.get(f"{server.url}/wmts/1.0.0/tile/sst.analysed_sst/default/current/TM35FIN/2/2/1.png")
    assert response.status_code == 200 and 0.1 < opaque(response.content) < 1.0  # sea drawn, land transparent


def test_access_and_bad_requests(server):
    hidden = httpx.get(
        f"{server.url}/wmts/kvp",
        params={
            "Service": "WMTS",
            "Request": "GetTile",
            "Layer": "secret.analysed_sst",
            "TileMatrixSet": "WebMercatorQuad",
            "TileMatrix": 5,
            "TileRow": 9,
            "TileCol": 17,
        },
    )
    assert hidden.status_code == 404
    rest = httpx.get(
        f"{server.url}/wmts/1.0.0/tile/secret.analysed_sst/default/current/WebMercatorQuad/5/9/17.png"
    )
    assert rest.status_code == 404
    # the layer list depends on the caller: no shared cache may answer one caller with another's list
    for capabilities in (
        httpx.get(f"{server.url}/wmts/1.0.0/WMTSCapabilities.xml"),
        httpx.get(f"{server.url}/wmts/kvp", params={"Service": "WMTS", "Request": "GetCapabilities"}),
    ):
        assert (
            "secret." not in capabilities.text
            and capabilities.headers["cache-control"] == "private, no-cache"
        )
        assert "X-API-Key" in capabilities.headers["vary"] and "Authorization" in capabilities.headers["vary"]
    for params, says in (
        ({"Request": "GetMap"}, "unknown"),
        ({"Request": "GetTile", "Layer": "sst.analysed_sst"}, "GetTile needs"),
        (
            {
                "Request": "GetTile",
                "Layer": "sst.analysed_sst",
                "TileMatrixSet": "Nope",
                "TileMatrix": 1,
                "TileRow": 0,
                "TileCol": 0,
            },
            "tile matrix set",
        ),
    ):
        response = httpx.get(f"{server.url}/wmts/kvp", params={"Service": "WMTS", **params})
        assert response.status_code in (400, 404) and says in response.json()["detail"], response.text
