"""Remote cubes for notebooks: `cubeport.client.open_cube` over HTTP equals the local cube, keeps to the
published steps, and the server checks access on every object."""

import dataclasses

import httpx
import numpy as np
import pytest
import xarray as xr
from helpers import context_with
from services import AppServer

from cubeport.api.app import create_app
from cubeport.client import open_cube


@pytest.fixture(scope="module")
def served(tmp_path_factory, data):
    context = context_with(tmp_path_factory.mktemp("client"), data, {"olci": "olci", "ndvi": "ndvi"})
    context.policy.set_access("cube", "ndvi", public=False, groups=["syke"])
    context.auth.directory.create_user("mia")
    context.auth.directory.create_group("syke")
    context.auth.directory.add_member("syke", "mia")
    key = context.auth.create_key("mia")[1]
    server = AppServer(create_app(context))
    yield context, server.url, key
    server.stop()
    context.close()


def test_a_remote_cube_equals_the_local_one(served):
    context, url, _ = served
    for level in (0, 2):
        remote, local = open_cube(url, "olci", level=level), context.cubes.open("olci", level=level)
        assert remote.sizes == local.sizes and list(remote.data_vars) == list(local.data_vars)
        xr.testing.assert_identical(
            remote["conc_chl"].isel(time=0).load(), local["conc_chl"].isel(time=0).load()
        )


def test_restricted_cubes_need_credentials_and_the_twin_is_served(served):
    context, url, key = served
    with pytest.raises(LookupError, match="credentials"):
        open_cube(url, "ndvi")
    series = open_cube(url, "ndvi", api_key=key, timeseries=True)["ndvi"]
    assert series.chunks[0] == (68,)  # one request per pixel block for the whole year
    local = context.cubes.open("ndvi", timeseries=True)["ndvi"]
    np.testing.assert_array_equal(series.isel(x=50, y=50).values, local.isel(x=50, y=50).values)
    assert httpx.get(f"{url}/zarr/ndvi/0.zarr/ndvi/0.0.0").status_code == 404
    chunk = httpx.get(f"{url}/zarr/ndvi/0.zarr/ndvi/0.0.0", headers={"X-API-Key": key})
    assert chunk.status_code == 200
    # HEAD: the same guard and headers, no body
    assert httpx.head(f"{url}/zarr/ndvi/0.zarr/ndvi/0.0.0").status_code == 404
    head = httpx.head(f"{url}/zarr/ndvi/0.zarr/ndvi/0.0.0", headers={"X-API-Key": key})
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == len(chunk.content) > 0
    assert head.headers["cache-control"] == chunk.headers["cache-control"] == "private, max-age=3600"


def test_only_published_steps_are_visible(served):
    context, url, _ = served
    pointer = context.cubes.pointer("olci")
    context.cubes._publish("olci", dataclasses.replace(pointer, steps=3))  # as after an interrupted append
    context.refresh()  # the server re-reads pointers every 2 s; do not wait
    try:
        remote = open_cube(url, "olci")
        assert remote.sizes["time"] == 3 == context.cubes.open("olci").sizes["time"]
        np.testing.assert_array_equal(remote["time"].values, context.cubes.open("olci")["time"].values)
    finally:
        context.cubes._publish("olci", pointer)
        context.refresh()


@pytest.mark.parametrize(
    "path, status",
    [
        ("/zarr/olci/0.zarr/..%2F..%2Fcube.json", 400),
        ("/zarr/olci/9.zarr/.zmetadata", 404),
        ("/zarr/olci/0.zarr/conc_chl/99.0.0", 404),
        ("/zarr/olci/cube.json/.zmetadata", 404),
        ("/zarr/olci/0.zarr/" + "0" * 300, 400),  # found by schemathesis: a 500
        ("/zarr/olci/0.zarr/conc_chl%00/.zarray", 400),  # NUL: was a 500
        ("/zarr/olci/0.zarr/" + "é" * 200, 400),  # 400 bytes in one name
        ("/zarr/olci/0.zarr/conc_chl", 404),
    ],
)  # a folder, not an object
def test_no_way_out_of_the_stores(served, path, status):
    _, url, _ = served
    response = httpx.get(url + path)
    assert response.status_code == status and "version" not in response.text
