"""cubeport.ingestion: one ingest for the CLI and jobs, always with the catalogue entry and STAC products."""

from __future__ import annotations

import pytest
from helpers import context_with

from cubeport.errors import ConflictError


@pytest.fixture
def ostia(data):
    return sorted(str(p) for p in (data / "netcdf").glob("*OSTIA*.nc"))


def test_an_ingest_publishes_the_cube_catalogues_it_and_keeps_its_products(tmp_path, data, ostia):
    context = context_with(tmp_path, data, {})
    done = context.ingestion(ostia[:2], "sst", title="Baltic SST")
    assert done.info.dims["time"] == 2
    assert context.catalogue.get("sst").title == "Baltic SST"
    items = context.products.query(collections=["sst"])
    assert sorted(i["id"] for i in items) == sorted(done.products) and len(done.products) == 2
    assert "2 products in STAC" in done.summary()

    more = context.ingestion(ostia, "sst", append=True)
    assert more.info.dims["time"] == len(ostia) and len(more.products) == len(ostia) - 2


def test_a_plan_with_nothing_new_writes_nothing(tmp_path, data, ostia):
    context = context_with(tmp_path, data, {})
    first = context.ingestion(ostia[:1], "sst")
    again = context.ingestion(ostia[:1], "sst", append=True)
    assert again.products == [] and again.info.version == first.info.version


def test_an_existing_cube_is_not_overwritten_by_accident(tmp_path, data, ostia):
    context = context_with(tmp_path, data, {})
    context.ingestion(ostia[:1], "sst")
    with pytest.raises(ConflictError, match="--replace"):
        context.ingestion(ostia[1:2], "sst")
    assert context.cubes.describe("sst").dims["time"] == 1
