"""The xcube-compatible tile route over HTTP: PNG, caching headers, parameters, and a clear 4xx for every
bad request."""

import io

import numpy as np
import pytest
from helpers import context_with
from PIL import Image

TILE = "/tiles/olci/conc_chl/8/85/129"  # the Belgian coast at zoom 8: clear on the first and fourth step
STYLE = {"vmin": 0, "vmax": 20, "cmap": "viridis", "time": "2017-01-16T10:09:22Z"}


@pytest.fixture(scope="module")
def context(tmp_path_factory, data):
    context = context_with(tmp_path_factory.mktemp("tiles"), data, {"olci": "olci"})
    yield context
    context.close()


def rgba(response) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(response.content)).convert("RGBA"))


def test_tile_png_with_etag_and_cache(client, context):
    first = client.get(TILE, params=STYLE)
    assert first.status_code == 200 and first.headers["content-type"] == "image/png"
    assert first.headers["cache-control"].startswith("public") and first.headers["etag"]
    image = rgba(first)
    assert image.shape == (256, 256, 4) and 0 < (image[..., 3] == 0).mean() < 0.5  # land is transparent
    hits = context.tiles.cache.hits
    again = client.get(TILE, params=STYLE)
    assert again.content == first.content and context.tiles.cache.hits == hits + 1
    unchanged = client.get(TILE, params=STYLE, headers={"If-None-Match": first.headers["etag"]})
    assert unchanged.status_code == 304 and not unchanged.content
    other = client.get(TILE, params={**STYLE, "vmax": 5})
    assert other.headers["etag"] != first.headers["etag"] and other.content != first.content


def test_time_style_retina_and_empty_tiles(client):
    first, fourth, newest = (
        client.get(TILE, params={"time": t}).content
        for t in ("2017-01-16T10:09:22Z", "2017-01-28T09:58:11Z", "2017-01-30T10:46:34Z")
    )
    assert len({first, fourth, newest}) == 3
    assert client.get(TILE).content == newest  # without a time: the newest step (clouded here)
    assert client.get(TILE, params={"time": ""}).content == newest
    assert client.get(TILE, params={"time": "2017-01-27T23:00:00Z"}).content == fourth  # the nearest step
    log = client.get(
        TILE, params={"norm": "log", "vmin": 0.1, "vmax": 50, "cmap": "thermal_r", "time": "2017-01-28"}
    )
    assert log.status_code == 200 and log.content != fourth
    retina = rgba(client.get(TILE, params={"retina": 1, "time": "2017-01-16"}))
    assert retina.shape == (512, 512, 4) and (retina[..., 3] > 0).mean() > 0.5
    outside = client.get("/tiles/olci/conc_chl/8/200/10")
    assert outside.status_code == 200 and (rgba(outside)[..., 3] == 0).all()
    crs84 = client.get("/tiles/olci/conc_chl/7/27/129", params={"crs": "CRS84", "time": "2017-01-16"})
    assert crs84.status_code == 200 and (rgba(crs84)[..., 3] > 0).any()


@pytest.mark.parametrize(
    "url, params, status, says",
    [
        ("/tiles/nope/conc_chl/8/85/129", {}, 404, "nope"),
        ("/tiles/olci/chl/8/85/129", {}, 404, "conc_chl"),
        (TILE, {"cmap": "rainbowish"}, 400, "colour map"),
        (TILE, {"vmin": 5, "vmax": 1}, 400, "vmin must be less"),
        (TILE, {"norm": "log", "vmin": 0, "vmax": 1}, 400, "log norm"),
        (TILE, {"time": "yesterday-ish"}, 400, "ISO 8601"),
        (TILE, {"time": "3000-01-01"}, 400, "between 1678 and 2261"),
        (TILE, {"crs": "EPSG:9999"}, 400, "EPSG:3857 or CRS84"),
        ("/tiles/olci/conc_chl/8/300/129", {}, 400, "outside"),
        ("/tiles/olci/conc_chl/31/0/0", {}, 422, "z"),
        ("/tiles/olci/conc_chl/8/-1/129", {}, 422, "y"),
    ],
)
def test_bad_tile_requests_get_a_clear_4xx(client, url, params, status, says):
    response = client.get(url, params=params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert says in response.json()["detail"]


def test_legend(client):
    legend = client.get("/tiles/olci/conc_chl/legend", params={"cmap": "thermal", "width": 300, "height": 20})
    assert legend.status_code == 200 and rgba(legend).shape == (20, 300, 4)
    colours = rgba(legend)[0]
    assert (colours[0] != colours[-1]).any() and (rgba(legend)[:, 0] == colours[0]).all()
    # public: anonymous callers may read the cube (a restricted cube's is private: tests/api/test_access.py)
    assert legend.headers["cache-control"] == "public, max-age=3600"
    assert client.get("/tiles/olci/conc_chl/legend", params={"cmap": "nope"}).status_code == 400
