"""The built-in package: every process is found the way the registry finds them (the module behind the
`builtin` entry point) and describes itself fully for OGC API - Processes."""

import importlib
import json

import pytest

from cubeport.processes.registry import processes_in

EXPECTED = {
    "subset": "cube",
    "resample": "cube",
    "band-math": "cube",
    "temporal-aggregate": "cube",
    "anomalies": "cube",
    "zonal-statistics": "collection",
    "export-cube": "file",
    "export-collection": "file",
    "ingest": "ingest",
}


@pytest.fixture(scope="module")
def processes():
    return {p.id: p for p in processes_in(importlib.import_module("cubeport.processes.builtin"))}


def test_every_builtin_process_is_exposed(processes):
    assert {pid: p.output for pid, p in processes.items()} == EXPECTED


@pytest.mark.parametrize("process_id", sorted(EXPECTED))
def test_each_describes_itself(processes, process_id):
    process = processes[process_id]
    document = json.loads(json.dumps(process.description_document()))
    assert document["version"] == "1.0.0"
    assert document["title"] and len(document["description"]) > 80
    assert document["keywords"]
    assert process.wants_job
    for name, described in document["inputs"].items():
        assert described["description"], f"{process_id}: input {name} has no description"
        assert "$ref" not in json.dumps(described["schema"])
