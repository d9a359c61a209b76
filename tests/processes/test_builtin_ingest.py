"""The `ingest` process: product files at URLs (a real HTTP server) into a new cube private to the job's
owner, with its catalogue entry and the files as STAC items, as `cubeport ingest` makes it."""

from __future__ import annotations

import functools
import http.server
import threading

import numpy as np
import pytest
import xarray as xr
from jobkit import LEO, MIA, context_on, wait_done

from cubeport.auth.principal import ANONYMOUS
from cubeport.errors import ConflictError, InputError


@pytest.fixture(scope="module")
def products(data):
    """The OSTIA NetCDF samples served over HTTP: (base URL, file names)."""
    folder = data / "netcdf"

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", sorted(p.name for p in folder.glob("*OSTIA*.nc"))
    server.shutdown()


@pytest.fixture
def context(tmp_path):
    context = context_on(tmp_path / "root")
    dispatcher = context.start_dispatcher()
    yield context
    context.stop_dispatcher(dispatcher)
    context.close()


def test_files_at_urls_become_a_private_cube_with_its_products_in_stac(context, products, data):
    base, names = products
    job = context.processing.submit(
        LEO, "ingest", {"files": [f"{base}/{n}" for n in names], "cube_id": "sst-in"}
    )
    done = wait_done(context, job.id, timeout=120)
    assert done.status == "successful", (done.message, context.jobs.logs(job.id))
    assert done.results == {"result": {"kind": "cube", "id": "sst-in"}}

    cube = context.cubes.open("sst-in")
    expected = xr.open_mfdataset([str(data / "netcdf" / n) for n in names], combine="by_coords")
    assert cube.sizes["time"] == len(names)
    last = {"time": -1}
    np.testing.assert_allclose(
        cube["analysed_sst"].isel(last).sortby("lat").values,
        expected["analysed_sst"].isel(last).sortby("lat").values,
        rtol=1e-6,
    )
    assert context.catalogue.get("sst-in").time_steps == len(names)
    assert len(context.products.query(collections=["sst-in"])) == len(names)
    assert context.policy.allows(LEO, "read", "cube", "sst-in")
    assert not context.policy.allows(MIA, "read", "cube", "sst-in")
    assert not context.policy.allows(ANONYMOUS, "read", "cube", "sst-in")


def test_bad_requests_make_no_job_and_a_missing_file_fails_the_job_with_nothing_published(context, products):
    base, names = products
    with pytest.raises(InputError, match="http"):
        context.processing.submit(LEO, "ingest", {"files": ["/etc/passwd"]})
    with pytest.raises(InputError, match="cube_id"):
        context.processing.submit(LEO, "ingest", {"files": [f"{base}/{names[0]}"], "cube_id": "../x"})
    first = context.processing.submit(LEO, "ingest", {"files": [f"{base}/{names[0]}"], "cube_id": "taken"})
    assert wait_done(context, first.id, timeout=120).status == "successful"
    with pytest.raises(ConflictError, match="exists"):
        context.processing.submit(LEO, "ingest", {"files": [f"{base}/{names[0]}"], "cube_id": "taken"})

    job = context.processing.submit(LEO, "ingest", {"files": [f"{base}/no-such-file.nc"], "cube_id": "never"})
    failed = wait_done(context, job.id, timeout=120)
    assert failed.status == "failed" and "HTTP 404" in failed.message
    assert not context.cubes.exists("never")
