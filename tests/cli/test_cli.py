"""The CLI contract: help everywhere, JSON output, dry runs, the demo set."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest
from global_land_mask import globe
from helpers import cli

from cubeport.config import load_settings
from cubeport.context import Context


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["serve"],
        ["demo"],
        ["ingest"],
        ["cubes"],
        ["cubes", "list"],
        ["cubes", "info"],
        ["cubes", "delete"],
        ["cubes", "style"],
        ["db", "upgrade"],
        ["users", "create"],
        ["users", "set"],
        ["groups", "create"],
        ["groups", "add"],
        ["keys", "create"],
        ["keys", "revoke"],
        ["access", "set"],
        ["access", "grant"],
        ["audit"],
        ["places", "add"],
        ["sources"],
        ["sources", "add"],
        ["sources", "list"],
    ],
)
def test_every_command_has_help(command):
    from typer.testing import CliRunner

    from cubeport.cli import app

    result = CliRunner().invoke(app, [*command, "--help"], prog_name="cubeport")
    assert result.exit_code == 0 and "Usage: cubeport" in result.output and len(result.output) > 200


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
    assert (
        cli(
            "cubes", "style", "sst", "analysed_sst", "--vmin", "5", "--vmax", "1", "--data-root", root
        ).returncode
        == 2
    )
    assert cli("cubes", "delete", "sst", "--data-root", root).returncode == 0
    assert cli("cubes", "info", "sst", "--data-root", root).returncode == 2


def test_demo_is_synthetic_baltic_with_land_masked(tmp_path):
    root = str(tmp_path / "root")
    result = cli("demo", "--days", "10", "--data-root", root)
    assert result.returncode == 0, result.stderr
    password = re.search(r"user admin, password (\S+) \(shown once", " ".join(result.stdout.split())).group(1)
    context = Context(load_settings(data_root=root))
    assert context.auth.sign_in("admin", password, None).is_admin
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
    stations = context.places.get("stations")
    assert len(stations["features"]) >= 5 and context.places.ids() == ["stations", "water-bodies"]
    entry = context.catalogue.get("baltic-demo")
    assert entry.variable("chl").style.norm == "log" and "Water quality" in entry.themes


def test_large_generator_grid_is_a_hundredth_of_a_degree():
    from cubeport.demo import _days, synthetic_slabs

    slab = next(synthetic_slabs(0.01, _days("2024-01-01", 365)[:1], slab_days=1))
    assert slab.sizes == {"time": 1, "lat": 1350, "lon": 2200}
    assert float(slab["lon"][1] - slab["lon"][0]) == pytest.approx(0.01)
    assert np.isfinite(slab["sst"].values).mean() > 0.2


def test_identity_commands(tmp_path, data):
    from fastapi.testclient import TestClient

    from cubeport.api.app import create_app

    root = ["--data-root", str(tmp_path / "root")]
    source = str(data / "cubes/ostia-sst-baltic-3steps.zarr")
    assert cli("ingest", source, "--cube", "sst", *root).returncode == 0
    created = subprocess.run(
        [sys.executable, "-m", "cubeport", "users", "create", "mia", "--password-stdin", *root],
        input="a long enough password\n",
        capture_output=True,
        text=True,
    )
    assert created.returncode == 0 and "password" not in created.stdout
    generated = cli("users", "create", "root", "--admin", *root)
    assert generated.returncode == 0 and generated.stdout.startswith("password: ")
    assert cli("users", "create", "mia", *root).returncode == 2  # exists
    assert cli("groups", "create", "syke", *root).returncode == 0
    assert cli("groups", "add", "syke", "mia", *root).returncode == 0
    assert cli("groups", "add", "nope", "mia", *root).returncode == 2
    restricted = cli("access", "set", "cube", "sst", "--groups", "syke,fmi", *root)
    assert restricted.returncode == 0 and "restricted" in restricted.stdout and "'fmi'" in restricted.stderr
    assert cli("access", "set", "cube", "sst", *root).returncode == 2  # neither --public nor --groups
    assert cli("access", "set", "cube", "nope", "--public", *root).returncode == 2
    assert cli("access", "set", "table", "sst", "--public", *root).returncode == 2
    key = cli("keys", "create", "mia", "--expires-days", "30", *root)
    assert key.returncode == 0 and re.fullmatch(
        r"cpk_[0-9a-f]{12}_\S{43}\n", key.stdout
    )  # the key, alone, once
    assert "expires" in key.stderr
    listed = json.loads(cli("keys", "list", "--json", *root).stdout)
    assert (
        len(listed) == 1 and key.stdout.strip() not in json.dumps(listed) and listed[0]["status"] == "active"
    )

    context = Context(load_settings(data_root=root[1]))
    with TestClient(create_app(context)) as client:
        assert client.get("/cubes/sst").status_code == 404
        assert client.get("/cubes/sst", headers={"X-API-Key": key.stdout.strip()}).status_code == 200
        assert cli("keys", "revoke", listed[0]["id"], *root).returncode == 0
        context.refresh()  # another process changed keys and rules; this one caches them for a few seconds
        assert client.get("/cubes/sst", headers={"X-API-Key": key.stdout.strip()}).status_code == 401
        assert cli("access", "set", "cube", "sst", "--public", *root).returncode == 0
        context.refresh()
        assert client.get("/cubes/sst").status_code == 200
    context.close()
    events = json.loads(cli("audit", "--json", *root).stdout)
    assert {"key-created", "key-revoked", "access-changed"} <= {e["event"] for e in events}
