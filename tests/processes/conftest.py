"""Fixtures of the process tests: the sample cubes opened lazily as the runner opens cubes (dask), a local
job in a temporary folder, and `publish`, which writes a result cube and ingests it as the runner will."""

from pathlib import Path

import pytest
import xarray as xr
from helpers import SAMPLE_CUBES

from cubeport.cubes.ingest import plan_ingest, run_ingest
from cubeport.cubes.store import CubeStore
from cubeport.processes import LocalJob
from cubeport.storage import Storage


def open_sample(data: Path, name: str) -> xr.Dataset:
    return xr.open_zarr(data / "cubes" / SAMPLE_CUBES[name], chunks={})


@pytest.fixture(scope="session")
def olci(data) -> xr.Dataset:
    """OLCI chlorophyll, North Sea: lat/lon (lat descending), 5 steps, 2000 x 1000 px."""
    return open_sample(data, "olci")


@pytest.fixture(scope="session")
def ndvi(data) -> xr.Dataset:
    """Sentinel-2 NDVI, Slovenia: UTM 33N y/x, 68 steps 2015-07..2017-12, 100 x 101 px."""
    return open_sample(data, "ndvi")


@pytest.fixture(scope="session")
def sst(data) -> xr.Dataset:
    """OSTIA SST, Baltic: lat/lon (lat ascending), 3 daily steps, NaN over land."""
    return open_sample(data, "sst")


@pytest.fixture
def job(tmp_path) -> LocalJob:
    workdir = tmp_path / "job"
    workdir.mkdir()
    return LocalJob(workdir)


@pytest.fixture
def publish(tmp_path):
    """`publish(result, cube_id)`: write a result cube to a Zarr and ingest it into a fresh cube store, as the
    runner publishes one; returns the published cube as the store opens it."""
    store = CubeStore(Storage(str(tmp_path / "published")))

    def write_and_ingest(result: xr.Dataset, cube_id: str = "result") -> xr.Dataset:
        path = tmp_path / f"{cube_id}-staging.zarr"
        result.to_zarr(path, mode="w", zarr_format=2, consolidated=True)
        run_ingest(store, plan_ingest(store, [str(path)], cube_id))
        return store.open(cube_id)

    return write_and_ingest
