"""The CLI contract: help everywhere, JSON output, dry runs, the demo set."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr
from global_land_mask import globe

from cubeport.config import load_settings
from cubeport.context import Context


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cubeport", *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


@pytest.mark.parametrize("command", [[], ["serve"], ["demo"], ["ingest"], ["cubes"], ["cubes", "list"],
                                     ["cubes", "info"], ["cubes", "delete"], ["cubes", "style"], ["db", "upgrade"]])
def test_every_command_has_help(command):
    result = cli(*command, "--help")
    assert result.returncode == 0 and "Usage" in result.stdout and len(result.stdout) > 200


def test_ingest_dry_run_then_real_run_and_info(tmp_path, data):
    root = str(tmp_path / "root")
    source = str(data / "cubes/ostia-sst-baltic-3steps.zarr")
    dry = cli("ingest", source, "--cube", "sst", "--dry-run", "--data-root", root)
    assert dry.returncode == 0 and "new steps:  3" in dry.stdout and "nothing written" in dry.stdout
    assert json.loads(cli("cubes", "list", "--json", "--data-root", root).stdout) == []
    assert cli("ingest", source, "--cube", "sst", env={"CUBEPORT_DATA_ROOT": root}).returncode == 0
    info = json.loads(cli("cubes", "info", "sst", "--json", "--data-root", root).stdout)
    assert info["dims"] == {"time": 3, "lat": 54, "lon": 88} and info["crs"] == "EPSG:4326"
    assert info["levels"] == 1 and info["styles"]["analysed_sst"]["colormap"] == "RdYlBu_r"
    assert cli("cubes", "style", "sst", "analysed_sst", "--vmin", "5", "--vmax", "1", "--data-root", root).returncode == 2
    assert cli("cubes", "delete", "sst", "--data-root", root).returncode == 0
    assert cli("cubes", "info", "sst", "--data-root", root).returncode == 2


def test_demo_is_synthetic_baltic_with_land_masked(tmp_path):
    root = str(tmp_path / "root")
    result = cli("demo", "--days", "10", "--data-root", root)
    assert result.returncode == 0, result.stderr
    context = Context(load_settings(data_root=root))
    cube = context.cubes.open("baltic-demo")
    assert cube.sizes["time"] == 10 and cube.attrs["synthetic"] == "true"
    assert "synthetic" in cube["chl"].attrs["long_name"]
    day = cube.isel(time=0).compute()
    lon2, lat2 = np.meshgrid(day["lon"].values, day["lat"].values)
    land = globe.is_land(lat2, lon2)
    assert land.mean() > 0.3 and np.isnan(day["sst"].values[land]).all()
    sea = np.isfinite(day["chl"].values)
    assert 0.2 < sea.sum() / (~land).sum() < 0.95  # cloud gaps, but most of the sea is seen
    south = day["sst"].sel(lat=slice(56, 54)).mean()
    north = day["sst"].sel(lat=slice(66, 64)).mean()
    assert south > north  # SST falls towards the north
    stations = json.loads(context.storage.read_bytes("demo", "stations.geojson"))
    assert len(stations["features"]) >= 5
    entry = context.catalogue.get("baltic-demo")
    assert entry.variable("chl").style.norm == "log" and "Water quality" in entry.themes


def test_large_generator_grid_is_a_hundredth_of_a_degree():
    from cubeport.demo import _days, synthetic_slabs

    slab = next(synthetic_slabs(0.01, _days("2024-01-01", 365)[:1], slab_days=1))
    assert slab.sizes == {"time": 1, "lat": 1350, "lon": 2200}
    assert float(slab["lon"][1] - slab["lon"][0]) == pytest.approx(0.01)
    assert np.isfinite(slab["sst"].values).mean() > 0.2
