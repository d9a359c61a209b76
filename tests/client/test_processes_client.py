"""`cubeport.client.Processes` against a running server that runs its jobs: list and describe processes,
submit jobs, wait with a progress bar, read status, logs and results, open each kind of output (a cube as
xarray, a collection as a GeoDataFrame, a file downloaded), refuse bad input without a job, keep a job and
its outputs private, and dismiss."""

import json
import warnings

import numpy as np
import pytest
import xarray as xr
from helpers import SAMPLE_CUBES
from services import AppServer

from cubeport.api.app import create_app
from cubeport.client import JobFailed, ProcessClientError, Processes, open_cube

# two boxes of sea in the SST sample: Bothnian Sea and Baltic Proper (pixel centres lie off whole degrees)
BOXES = {"bothnian": (19.0, 61.0, 21.0, 62.5), "proper": (17.0, 55.5, 19.0, 57.0)}


@pytest.fixture(scope="module")
def served(tmp_path_factory, data):
    from cubeport.config import load_settings
    from cubeport.context import Context
    from cubeport.features.importer import import_file

    root = tmp_path_factory.mktemp("processes-client")
    context = Context(
        load_settings(
            data_root=str(root / "root"),
            # three jobs at once; a worker sees a dismissal within 0.2 s (a job takes longer than that)
            processing={"workers": 3, "max_jobs_per_user": 3, "heartbeat_seconds": 0.2},
        )
    )
    context.ingestion([str(data / "cubes" / SAMPLE_CUBES["sst"])], "sst")
    path = root / "boxes.geojson"
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"name": name},
                        "geometry": {
                            "type": "Polygon",
                            "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]],
                        },
                    }
                    for name, (w, s, e, n) in BOXES.items()
                ],
            }
        )
    )
    spec, _ = import_file(context.features, path, "baltic", "boxes")
    context.policy.set_access("collection", spec.id, public=True)
    for name in ("mia", "leo"):
        context.auth.directory.create_user(name)
    keys = {name: context.auth.create_key(name)[1] for name in ("mia", "leo")}
    server = AppServer(create_app(context))
    yield context, server.url, keys
    server.stop()
    context.close()


def test_list_and_describe(served):
    _, url, keys = served
    with Processes(url, api_key=keys["mia"]) as processes:
        listed = {p["id"]: p for p in processes.list()}
        assert {"band-math", "temporal-aggregate", "export-cube", "zonal-statistics"} <= set(listed)
        assert listed["band-math"]["title"] == "Band maths"
        described = processes.describe("band-math")
        assert set(described["inputs"]) == {"cube", "expression", "name", "keep_inputs"}
        assert described["outputs"]["result"]["schema"]["contentMediaType"] == "application/vnd+zarr"
        with pytest.raises(ProcessClientError, match="process 'nope' not found") as error:
            processes.describe("nope")
        assert error.value.status == 404


def test_jobs_run_and_their_outputs_open(served, tmp_path, capsys):
    context, url, keys = served
    processes = Processes(url, api_key=keys["mia"])
    cube = processes.submit("band-math", cube="sst", expression="analysed_sst - 273.15", name="celsius")
    file = processes.submit("export-cube", cube="sst", format="netcdf", variables=["analysed_sst"])
    table = processes.submit("zonal-statistics", cube="sst", features="baltic.boxes", variable="analysed_sst")
    assert cube.info["status"] in ("accepted", "running") and cube.info["processID"] == "band-math"

    assert cube.wait() is cube  # with a progress bar (tqdm, on stderr here)
    assert "100%" in capsys.readouterr().err
    for job in (file, table):
        job.wait(progress=False, timeout=120)

    status = cube.status()
    assert (status["status"], status["progress"], status["owner"]) == ("successful", 100, "mia")
    assert [s["status"] for s in status["steps"]] == ["successful"] * 4
    assert status["meters"]["wall_seconds"] > 0
    log = cube.logs()
    assert log.splitlines()[0].endswith("submitted by mia: band-math 1.0.0") and "successful in" in log
    assert cube.id in [j.id for j in processes.jobs(status="successful")]

    sst = context.cubes.open("sst")["analysed_sst"].load()
    celsius = cube.open()
    assert isinstance(celsius, xr.Dataset) and list(celsius.data_vars) == ["celsius"]
    np.testing.assert_allclose(celsius["celsius"].values, sst.values - 273.15, rtol=1e-6)

    path = file.open()  # downloaded into a temporary folder
    assert path.suffix == ".nc"
    with xr.open_dataset(path) as exported:
        np.testing.assert_array_equal(exported["analysed_sst"].values, sst.values)
    saved = file.download(tmp_path)
    assert saved.parent == tmp_path and saved.read_bytes() == path.read_bytes()

    frame = table.open()
    assert len(frame) == 2 * 3  # two boxes, three days
    box = BOXES["proper"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        inside = sst.sel(lon=slice(box[0], box[2]), lat=slice(box[1], box[3]))
        expected = np.nanmean(inside.values.reshape(3, -1), axis=1)
    proper = frame[frame["feature_id"] == frame["feature_id"].iloc[-1]].sort_values("time")
    assert proper["count"].tolist() == np.isfinite(inside.values).reshape(3, -1).sum(axis=1).tolist()
    np.testing.assert_allclose(proper["mean"].to_numpy(dtype=float), expected, rtol=1e-5)

    # private to mia: another user sees neither the job nor its cube
    other = Processes(url, api_key=keys["leo"])
    with pytest.raises(ProcessClientError) as error:
        other.job(cube.id)
    assert error.value.status == 404 and cube.id not in [j.id for j in other.jobs()]
    with pytest.raises(LookupError):
        open_cube(url, cube.results()["result"]["cube"], api_key=keys["leo"])


def test_bad_input_makes_no_job(served):
    _, url, keys = served
    processes = Processes(url, api_key=keys["mia"])
    before = len(processes.jobs())
    with pytest.raises(ProcessClientError, match="'__import__' is not allowed") as error:
        processes.submit("band-math", cube="sst", expression="__import__('os')", name="x")
    assert error.value.status == 400
    with pytest.raises(ProcessClientError, match="no input 'colour'"):
        processes.submit("band-math", cube="sst", expression="analysed_sst", name="x", colour="red")
    with pytest.raises(ProcessClientError, match="cube 'nope' not found") as error:
        processes.submit("band-math", cube="nope", expression="1", name="x")
    assert error.value.status == 404
    with pytest.raises(ProcessClientError, match="needs a signed-in user") as error:
        Processes(url).submit("band-math", cube="sst", expression="analysed_sst", name="x")
    assert error.value.status == 401
    assert len(processes.jobs()) == before


def test_dismiss(served):
    _, url, keys = served
    processes = Processes(url, api_key=keys["mia"])
    job = processes.submit("temporal-aggregate", cube="sst", period="year")
    answer = job.dismiss()
    assert answer["status"] == "dismissed" or answer["message"] == "dismissing"
    with pytest.raises(JobFailed, match=f"job {job.id} dismissed") as error:
        job.wait(progress=False, timeout=60)
    assert error.value.job["status"] == "dismissed"
    with pytest.raises(ProcessClientError, match="no results") as error:
        job.results()
    assert error.value.status == 404
