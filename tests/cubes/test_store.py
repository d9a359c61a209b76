"""Appending, idempotent re-ingestion, listing and deleting, on a local folder and on S3."""

import pytest
from helpers import daily_geotiffs, write_cube

from cubeport.cubes.ingest import plan_ingest
from cubeport.errors import ConflictError, InputError, NotFoundError


def test_append_adds_steps_without_rewriting_old_chunks(store, data, tmp_path):
    files = daily_geotiffs(data, tmp_path / "in", 5)
    write_cube(store, files[:3], "s1")
    version = store.pointer("s1").version
    first_chunk = store.storage.path("cubes", "s1", version, "0.zarr", "band_1", "0.0.0")
    before = store.storage.fs.info(first_chunk)
    info = write_cube(store, files[1:], "s1", append=True)  # days 2..3 again, plus 4..5
    assert info.dims["time"] == 5 and store.pointer("s1").version == version
    assert store.storage.fs.info(first_chunk).get("mtime", 0) == before.get("mtime", 0)
    assert store.storage.fs.info(first_chunk)["size"] == before["size"]
    cube = store.open("s1")
    days = cube["time"].dt.day.values.tolist()
    assert days == [1, 2, 3, 4, 5]
    diff = cube["band_1"].isel(time=4) - cube["band_1"].isel(time=0)
    assert float(diff.mean()) == pytest.approx(4.0, abs=1e-4)
    # the same step again changes nothing
    plan = plan_ingest(store, files[-1:], "s1", append=True)
    assert plan.new_times == [] and len(plan.skipped_times) == 1
    assert store.pointer("s1").steps == 5


def test_append_rejects_earlier_times_and_other_grids(store, data, tmp_path):
    files = daily_geotiffs(data, tmp_path / "in", 3, start_day=10)
    write_cube(store, files[1:], "s1")
    with pytest.raises(InputError, match="falls before the cube's last time"):
        plan_ingest(store, files[:1], "s1", append=True)
    with pytest.raises(InputError, match="grid does not match|CRS|dims"):
        plan_ingest(
            store,
            [str(data / "rasters/RGB.byte.tif")],
            "s1",
            append=True,
            time_pattern=None,
            time=__import__("datetime").datetime(2015, 3, 20),
        )
    assert store.pointer("s1").steps == 2


def test_create_conflicts_list_and_delete(store, data, tmp_path):
    files = daily_geotiffs(data, tmp_path / "in", 2)
    old = write_cube(store, files, "a").version
    write_cube(store, files[:1], "b")
    assert store.list() == ["a", "b"]
    with pytest.raises(ConflictError, match="--append"):
        plan_ingest(store, files, "a")
    info = write_cube(store, files[:1], "a", replace=True)
    assert info.dims["time"] == 1
    assert not store.storage.exists("cubes", "a", old, "0.zarr", ".zmetadata")  # old version removed
    assert store.storage.exists("cubes", "a", info.version, "0.zarr", ".zmetadata")
    store.delete("a")
    assert store.list() == ["b"]
    with pytest.raises(NotFoundError, match="^cube 'a' not found$"):  # no list of names: some may be hidden
        store.open("a")
    with pytest.raises(InputError, match="invalid cube id"):
        store.open("../etc")
