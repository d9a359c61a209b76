"""The chain's steps as processes: found through the entry point, runnable directly, and as a real job on
delivery files at URLs, with the ice chart published as a collection private to the job's owner."""

from __future__ import annotations

import functools
import http.server
import json
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import rasterio
from frames import write_frame
from shapely import unary_union
from shapely.geometry import shape

from cubeport.processes import LocalJob
from cubeport.processes.registry import ProcessRegistry
from cubeport.seaice.chain import STEPS
from cubeport.seaice.processes import seaice_classify, seaice_validate, steps_to

sys.path.insert(0, str(Path(__file__).parents[1] / "processes"))
from jobkit import LEO, MIA, context_on, wait_done  # noqa: E402


@pytest.fixture(scope="module")
def gshhg(data):
    return str(data / "land" / "gshhg_full_baltic_9-31E_53-66.5N.gpkg")


@pytest.fixture
def seaice_env(monkeypatch, gshhg):
    monkeypatch.setenv("CUBEPORT_SEAICE__LAND_POLYGONS", gshhg)
    monkeypatch.setenv("CUBEPORT_SEAICE__RESOLUTION", "40")


def test_every_step_is_a_process():
    registry = ProcessRegistry.discover()
    ids = set(registry.ids())
    assert {f"seaice-{step}" for step in STEPS} | {"seaice-drift"} <= ids
    description = registry.get("seaice-chart").description_document()
    assert description["outputs"]["result"]["schema"]["contentMediaType"] == "application/geo+json"
    assert steps_to("classify") == ["validate", "calibrate", "correct", "rectify", "mask", "classify"]


def test_validate_and_classify_as_plain_calls(tmp_path, gshhg, seaice_env):
    frame = write_frame(tmp_path / "d", gshhg, shape=(300, 300))
    files = [frame.delivery, frame.delivery.with_suffix(".xml")]
    report = seaice_validate(LocalJob(tmp_path / "v"), files)
    assert report["valid"] and report["problems"] == [] and report["metadata"]["mode"] == "scan"

    frame = write_frame(tmp_path / "d2", gshhg, shape=(300, 300))
    job = LocalJob(tmp_path / "c")
    classes = seaice_classify(job, [frame.delivery, frame.delivery.with_suffix(".xml")])
    assert any("step classify" in line for line in job.lines) and job.fractions == sorted(job.fractions)
    with rasterio.open(classes) as src:
        values = src.read(1)
    assert set(np.unique(values)) <= {0, 1, 2, 3, 4, 255} and (values != 255).mean() > 0.3


@pytest.fixture
def served(tmp_path, gshhg):
    frame = write_frame(tmp_path / "served", gshhg, shape=(400, 400))

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(frame.delivery.parent))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    yield [f"{base}/{frame.delivery.name}", f"{base}/{frame.delivery.with_suffix('.xml').name}"]
    server.shutdown()


def test_a_chart_job_publishes_a_private_collection(tmp_path, served, seaice_env):
    context = context_on(tmp_path / "root")
    dispatcher = context.start_dispatcher()
    try:
        job = context.processing.submit(LEO, "seaice-chart", {"delivery": served})
        done = wait_done(context, job.id, timeout=300)
        assert done.status == "successful", (done.message, context.jobs.logs(job.id))
        collection = done.results["result"]["id"]
        database, name = collection.split(".")
        assert context.features.count(database, name) > 0
        spec = context.features.get(database, name)
        assert "poly_type" in spec.properties and spec.crs == 4326
        # the chart came in the chart Mercator: reprojected, not its metres taken for degrees
        shapes = [shape(json.loads(text)["geometry"]) for text in context.features.geojson(database, name)]
        west, south, east, north = unary_union(shapes).bounds
        assert 24.5 < west < east < 25.6 and 64.8 < south < north < 65.3  # off Oulu
        assert context.policy.allows(LEO, "read", "collection", collection)
        assert not context.policy.allows(MIA, "read", "collection", collection)
    finally:
        context.stop_dispatcher(dispatcher)
        context.close()
