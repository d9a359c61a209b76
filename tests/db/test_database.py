"""The database layer and the catalogue, on SQLite and on PostgreSQL with the same cases."""

import numpy as np
import pytest
import xarray as xr

from cubeport.cubes.catalogue import Catalogue
from cubeport.cubes.store import CubeStore
from cubeport.errors import InputError, NotFoundError
from cubeport.storage import Storage


def test_migrations_create_schema_and_are_idempotent(database):
    assert {
        "cubes",
        "cube_variables",
        "users",
        "groups",
        "memberships",
        "api_keys",
        "sessions",
        "grants",
        "resource_access",
        "audit_log",
        "feature_collections",
        "cache_entries",
        "cache_counters",
        "jobs",
        "job_steps",
        "job_logs",
        "ops_suites",
        "ops_runs",
        "ops_nodes",
        "ops_watchers",
        "ops_files",
        "ops_targets",
        "ops_deliveries",
        "ops_leases",
        "news",
        "alembic_version",
    } <= set(database.tables())
    assert "cube_groups" not in database.tables()  # cube access moved to the policy tables in 0002
    database.upgrade()
    assert database.revision() == "0009"


@pytest.fixture
def small_cube(tmp_path) -> CubeStore:
    store = CubeStore(Storage(str(tmp_path / "root")))
    times = np.array(["2024-06-01", "2024-06-02"], dtype="datetime64[ns]")
    chl = np.linspace(0.5, 9.5, 2 * 4 * 5, dtype="float32").reshape(2, 4, 5)
    flags = np.arange(40, dtype="int16").reshape(2, 4, 5) % 3
    ds = xr.Dataset(
        {
            "chl": (("time", "lat", "lon"), chl, {"units": "mg m-3", "long_name": "chlorophyll"}),
            "flags": (("time", "lat", "lon"), flags, {"flag_values": [0, 1, 2], "flag_meanings": "a b c"}),
        },
        coords={"time": times, "lat": [60.0, 59.9, 59.8, 59.7], "lon": [20.0, 20.1, 20.2, 20.3, 20.4]},
        attrs={"title": "Tiny cube"},
    )
    with store.create("tiny") as writer:
        writer.write(ds)
    return store


def test_register_fills_styles_and_keeps_user_edits(database, small_cube):
    catalogue = Catalogue(database)
    entry = catalogue.register(small_cube.describe("tiny"), small_cube)
    assert entry.title == "Tiny cube"
    assert entry.bbox == pytest.approx((19.95, 59.65, 20.45, 60.05))
    assert entry.time_steps == 2 and entry.time_start.year == 2024
    chl = entry.variable("chl")
    assert chl.units == "mg m-3" and chl.style.colormap == "viridis"
    assert 0.5 <= chl.style.vmin < chl.style.vmax <= 10
    assert entry.variable("flags").style.norm == "cat"

    catalogue.update(
        "tiny", title="Edited", description="mine", tags=["b", "a", "a"], themes=["Water quality"]
    )
    catalogue.set_style("tiny", "chl", colormap="magma", vmin=1, vmax=20, norm="log")
    again = catalogue.register(small_cube.describe("tiny"), small_cube)
    assert again.title == "Edited" and again.description == "mine" and again.tags == ["a", "b"]
    assert again.variable("chl").style.colormap == "magma" and again.variable("chl").style.vmax == 20


def test_bad_edits_change_nothing(database, small_cube):
    catalogue = Catalogue(database)
    catalogue.register(small_cube.describe("tiny"), small_cube)
    with pytest.raises(InputError, match="vmin must be less"):
        catalogue.set_style("tiny", "chl", vmin=5, vmax=1)
    with pytest.raises(InputError, match="log norm"):
        catalogue.set_style("tiny", "chl", vmin=0, vmax=1, norm="log")
    with pytest.raises(NotFoundError):
        catalogue.set_style("tiny", "nope", colormap="viridis")
    with pytest.raises(NotFoundError):
        catalogue.get("nope")
    assert catalogue.get("tiny").variable("chl").style.vmin != 5  # nothing written by the failed edits
    catalogue.remove("tiny")
    assert catalogue.list() == []
