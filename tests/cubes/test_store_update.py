"""Updating a step the cube has: every store shows the new step, the others are untouched, and an update
interrupted after staging is finished by the next writer."""

import shutil
from datetime import datetime

import numpy as np
import pytest
from helpers import cli, daily_geotiffs, write_cube

from cubeport.config import CubeLayoutSettings
from cubeport.cubes.store import CubeStore
from cubeport.errors import InputError
from cubeport.storage import Storage

DAY = np.datetime64("2015-03-02T00:00:00", "ns")


@pytest.fixture()
def cube(data, tmp_path):
    """Four daily steps, with a pyramid and (from two steps on) the time-chunked twin; and a fifth file."""
    layout = CubeLayoutSettings(spatial_chunk=64, timeseries_min_steps=2)
    store = CubeStore(Storage(str(tmp_path / "root")), layout)
    files = daily_geotiffs(data, tmp_path / "in", 9, size=2)
    write_cube(store, files[:4], "s1")
    return store, files


def _values(store, level=0, timeseries=False, dask=True):
    return store.open("s1", level=level, timeseries=timeseries, dask=dask)["band_1"].values


def test_an_update_replaces_one_step_in_every_store(cube):
    store, files = cube
    before = store.pointer("s1")
    assert before.levels > 1 and before.timeseries
    old = [_values(store, level) for level in range(before.levels)]
    old_twin = _values(store, timeseries=True)
    old_fast = _values(store, dask=False)  # also fills the cache of decoded chunks, which must not go stale

    # the day-9 file, reprocessed as day 2
    write_cube(store, [files[8]], "s1", update=True, time=datetime(2015, 3, 2))

    after = store.pointer("s1")
    assert (after.version, after.steps, after.revision, after.staged_for) == (before.version, 4, 1, None)
    shift = np.where(old[0][1] == -99, 0, 7)  # day 9 is day 2 plus 7 where there is data
    for level in range(after.levels):
        new = _values(store, level)
        assert new.shape == old[level].shape
        np.testing.assert_array_equal(np.delete(new, 1, axis=0), np.delete(old[level], 1, axis=0))
        assert not np.array_equal(new[1], old[level][1])
    np.testing.assert_allclose(_values(store)[1], old[0][1] + shift)
    np.testing.assert_allclose(_values(store, timeseries=True)[1], old_twin[1] + shift)
    np.testing.assert_array_equal(np.delete(_values(store, timeseries=True), 1, 0), np.delete(old_twin, 1, 0))
    np.testing.assert_allclose(_values(store, dask=False)[1], old_fast[1] + shift)
    assert store.open("s1")["time"].values[1] == DAY

    # appending afterwards goes on from the four published steps
    write_cube(store, files[4:6], "s1", append=True)
    assert store.pointer("s1").steps == 6
    assert store.open("s1")["time"].dt.day.values.tolist() == [1, 2, 3, 4, 5, 6]


def test_an_update_needs_a_step_the_cube_has(cube):
    store, files = cube
    with pytest.raises(InputError, match="no step at 2015-03-07"), store.update("s1") as writer:
        writer.write(store.open("s1").isel(time=[0]).assign_coords(time=[np.datetime64("2015-03-07")]))
    with pytest.raises(InputError, match="one time step at a time"), store.update("s1") as writer:
        writer.write(store.open("s1").isel(time=[0, 1]))
    assert store.pointer("s1").revision == 0


def test_an_interrupted_update_is_finished_by_the_next_writer(cube, monkeypatch):
    store, files = cube
    old = _values(store)

    def crash(*args):
        raise SystemExit("killed after staging")

    with monkeypatch.context() as patch:
        patch.setattr(CubeStore, "_complete_update", crash)
        with pytest.raises(SystemExit):
            write_cube(store, [files[8]], "s1", update=True, time=datetime(2015, 3, 2))
    staged = store.pointer("s1")
    assert staged.staged_for == 1 and staged.steps == 4
    np.testing.assert_array_equal(_values(store), old)  # readers still see the old step

    write_cube(store, files[4:5], "s1", append=True)  # the next writer completes the update first
    done = store.pointer("s1")
    assert (done.steps, done.revision, done.staged_for) == (5, 1, None)
    new = _values(store)
    np.testing.assert_allclose(new[1], old[1] + np.where(old[1] == -99, 0, 7))
    np.testing.assert_array_equal(new[[0, 2, 3]], old[[0, 2, 3]])
    assert store.open("s1")["time"].dt.day.values.tolist() == [1, 2, 3, 4, 5]


def test_cli_update(cube, tmp_path):
    store, files = cube
    root = str(tmp_path / "root")
    old = _values(store)
    reprocessed = tmp_path / "v2" / "s1_20150302.tif"  # day 2 again, with day 9's values
    reprocessed.parent.mkdir()
    shutil.copy(files[8], reprocessed)
    done = cli("ingest", str(reprocessed), files[4], "--cube", "s1", "--update", "--data-root", root)
    assert done.returncode == 0, done.stderr
    assert "updated:    1 steps" in done.stdout and "new steps:  1" in done.stdout
    new = _values(store)
    assert new.shape[0] == 5
    np.testing.assert_allclose(new[1], old[1] + np.where(old[1] == -99, 0, 7))
    np.testing.assert_array_equal(new[[0, 2, 3]], old[[0, 2, 3]])

    with pytest.raises(InputError, match="exclude each other"):
        write_cube(store, files[:1], "s1", update=True, append=True)
    with pytest.raises(InputError, match="leave out --update"):
        write_cube(store, files[:1], "nope", update=True)
