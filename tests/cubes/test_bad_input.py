"""Bad input gets a clear message naming the file and the problem, exit code 2, and nothing is published."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from helpers import daily_geotiffs, write_cube

from cubeport.errors import InputError


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cubeport", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def inputs(data, tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    good = sorted(str(p) for p in (data / "netcdf").glob("*.nc"))
    truncated = folder / "truncated.nc"
    truncated.write_bytes(Path(good[0]).read_bytes()[:100_000])
    unordered = folder / "unordered.nc"
    ds = xr.open_zarr(data / "cubes/ostia-sst-baltic-3steps.zarr").load()
    for var in ds.variables.values():
        var.encoding = {}
    ds.isel(time=[2, 0, 1]).to_netcdf(unordered)
    no_crs = folder / "no_crs.nc"
    xr.Dataset(
        {"v": (("time", "y", "x"), np.zeros((1, 3, 3), "float32"))},
        coords={"time": [np.datetime64("2020-01-01")], "y": [0.0, 1, 2], "x": [0.0, 1, 2]},
    ).to_netcdf(no_crs)
    return {
        "good": good,
        "truncated": str(truncated),
        "unordered": str(unordered),
        "no_crs": str(no_crs),
        "iceye": str(data / "sar/ICEYE_GRD_54549_20210427T215124_hollow_10x10pixels_fake_0.tif"),
        "olci": str(data / "cubes/olci-north-sea-chl-5steps.zarr"),
        "folder": folder,
    }


@pytest.mark.parametrize(
    "case, pattern",
    [
        (lambda i: [i["truncated"]], r"truncated\.nc: cannot read netcdf"),
        (lambda i: [i["no_crs"]], r"no_crs\.nc: no CRS"),
        (lambda i: [i["iceye"]], r"ICEYE.*radar geometry"),
        (lambda i: [i["unordered"]], r"unordered\.nc: times are not in increasing order"),
        (lambda i: [i["good"][0], i["good"][0]], r"time 2017-06-05T12:00:00 is also in"),
        (lambda i: [i["good"][0], i["olci"]], r"olci.*(grid does not match|variables)|unknown variable"),
        (lambda i: [str(i["folder"] / "missing.nc")], r"missing\.nc: no such file"),
    ],
)
def test_bad_inputs_publish_nothing(local_store, inputs, case, pattern):
    write_cube(local_store, inputs["good"][:1], "keep")  # an existing cube must stay as it was
    with pytest.raises(InputError, match=pattern):
        write_cube(local_store, case(inputs), "new")
    assert local_store.list() == ["keep"]
    assert local_store.storage.list_dirs("cubes", "new") == []


def test_unknown_variable_and_bad_pattern(local_store, inputs, data, tmp_path):
    with pytest.raises(InputError, match="unknown variable 'chl'; available: analysed_sst, sst_anomaly"):
        write_cube(local_store, inputs["good"], "x", variables=["chl"])
    tif = daily_geotiffs(data, tmp_path / "tif", 1)
    with pytest.raises(InputError, match="does not match the file name"):
        write_cube(local_store, tif, "x", time_pattern="%Y-%m-%d")
    assert local_store.list() == []


def test_cli_reports_one_line_and_exit_code_2(tmp_path, inputs):
    root = str(tmp_path / "root")
    result = run_cli("ingest", inputs["truncated"], "--cube", "t", "--data-root", root)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "truncated.nc: cannot read netcdf" in result.stderr
    assert "Traceback" not in result.stderr
    assert run_cli("cubes", "list", "--data-root", root, "--json").stdout.strip() == "[]"
    usage = run_cli("ingest", "--data-root", root)
    assert usage.returncode == 2 and "Missing" in usage.stderr


def test_cli_s3_unreachable_and_wrong_credentials(s3_server, inputs, tmp_path):
    base = {**s3_server.env("cli"), "CUBEPORT_DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}"}
    wrong = run_cli(
        "ingest",
        *inputs["good"][:1],
        "--cube",
        "c",
        env={**base, "CUBEPORT_S3__SECRET_ACCESS_KEY": "not-the-secret"},
    )
    assert (
        wrong.returncode == 1
        and "refused the credentials" in wrong.stderr
        and "Traceback" not in wrong.stderr
    )
    down = run_cli(
        "ingest",
        *inputs["good"][:1],
        "--cube",
        "c",
        env={**base, "CUBEPORT_S3__ENDPOINT_URL": "http://127.0.0.1:9"},
    )
    assert down.returncode == 1 and "unreachable" in down.stderr
    fs = s3_server.filesystem()
    assert not fs.exists(f"{s3_server.bucket}/cli/cubes/c")
