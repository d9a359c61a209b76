"""A writer killed mid-way leaves the previous version intact and readable; the next write recovers."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
from helpers import daily_geotiffs, write_cube

from cubeport.cubes.store import CubeStore
from cubeport.storage import Storage


def _start_cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "cubeport", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _kill_when(process: subprocess.Popen, ready, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if ready():
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return
        time.sleep(0.05)
    raise AssertionError("the writer finished before it could be interrupted")


def _chunk_count(root, cube_id, version) -> int:
    folder = root / "cubes" / cube_id / version / "0.zarr" / "band_1"
    return len([p for p in folder.glob("*.*.*")]) if folder.exists() else 0


def test_killed_replace_and_append_leave_old_version(data, tmp_path):
    root = tmp_path / "root"
    store = CubeStore(Storage(str(root)))
    files = daily_geotiffs(data, tmp_path / "in", 30, size=3)
    info = write_cube(store, files[:4], "s1")
    old = store.open("s1").load()

    # a replacement killed while it writes its new version
    writer = _start_cli("ingest", *files, "--cube", "s1", "--replace", "--data-root", str(root))

    def versions() -> list[str]:
        return [p.name for p in (root / "cubes" / "s1").iterdir() if p.is_dir() and p.name != info.version]

    _kill_when(writer, lambda: any(_chunk_count(root, "s1", v) >= 10 for v in versions()))
    assert store.pointer("s1").version == info.version
    np.testing.assert_array_equal(store.open("s1")["band_1"].values, old["band_1"].values)

    # an append killed half-way: the cube still shows its 4 steps, then a new append completes cleanly
    writer = _start_cli("ingest", *files[4:], "--cube", "s1", "--append", "--data-root", str(root))
    _kill_when(writer, lambda: _chunk_count(root, "s1", info.version) >= 4 * 9 + 5 * 9)
    assert store.pointer("s1").steps == 4
    reopened = store.open("s1")
    assert reopened.sizes["time"] == 4
    np.testing.assert_array_equal(reopened["band_1"].values, old["band_1"].values)

    done = write_cube(store, files[4:8], "s1", append=True)
    assert done.dims["time"] == 8 and done.version == info.version
    cube = store.open("s1")
    assert cube["time"].dt.day.values.tolist() == list(range(1, 9))
    assert float((cube["band_1"].isel(time=7) - cube["band_1"].isel(time=0)).mean()) == np.float32(7.0)
    assert [p.name for p in (root / "cubes" / "s1").iterdir() if p.is_dir()] == [info.version]
