"""OWSLib's OGC API - Processes client lists, describes and executes processes on a running server."""

from __future__ import annotations

import time

import numpy as np
import pystac
import pytest
import xarray as xr
from helpers import add_users, context_with
from owslib.ogcapi.processes import Processes
from services import AppServer
from stac_offline import offline_schemas

from cubeport.api.app import create_app


@pytest.fixture(scope="module")
def server(tmp_path_factory, data):
    context = context_with(tmp_path_factory.mktemp("owslib"), data, {"sst": "sst"})
    add_users(context)
    server = AppServer(create_app(context))
    server.key = context.auth.create_key("leo")[1]
    server.context = context
    yield server
    server.stop()
    context.close()


def test_owslib_lists_describes_and_executes(server, data):
    client = Processes(server.url, headers={"X-API-Key": server.key})
    ids = [p["id"] for p in client.processes()]
    assert {"temporal-aggregate", "band-math", "subset", "zonal-statistics"} <= set(ids)

    description = client.process("temporal-aggregate")
    assert description["inputs"]["cube"]["minOccurs"] == 1
    assert "month" in str(description["inputs"]["period"]["schema"])

    results = client.execute("temporal-aggregate", {"cube": "sst", "period": "year", "method": "max"})
    cube = results["result"]["cube"]
    published = server.context.cubes.open(cube)
    source = xr.open_zarr(data / "cubes/ostia-sst-baltic-3steps.zarr")
    np.testing.assert_allclose(
        published["analysed_sst"].isel(time=0).values, source["analysed_sst"].max("time").values, rtol=1e-6
    )

    status = client.execute("temporal-aggregate", {"cube": "sst", "period": "month"}, async_=True)
    assert status["status"] in ("accepted", "running", "successful")
    job_url = f"{server.url}/jobs/{status['jobID']}"
    for _ in range(150):
        job = client._request(path=f"jobs/{status['jobID']}")
        if job["status"] == "successful":
            break
        time.sleep(0.2)
    assert job["status"] == "successful", job
    assert [s["status"] for s in job["steps"]] == ["successful"] * 4
    assert any(link["href"] == f"{job_url}/results" for link in job["links"])

    # the outputs as a STAC item linked from the job: the cube's footprint and its Zarr store
    item_url = next(link["href"] for link in job["links"] if link["rel"] == "item")
    item = client._request(path=item_url.removeprefix(f"{server.url}/"))
    cube = client._request(path=f"jobs/{status['jobID']}/results")["result"]["cube"]
    assert item["id"] == status["jobID"] and item["properties"]["cubeport:process"] == "temporal-aggregate"
    assert item["assets"]["result"]["href"] == f"{server.url}/zarr/{cube}/0.zarr"
    assert item["bbox"] == list(server.context.catalogue.get(cube).bbox)
    with offline_schemas():
        pystac.Item.from_dict(item).validate()
