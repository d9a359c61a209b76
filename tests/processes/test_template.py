"""`cubeport processes new`: the package it writes passes its own tests, declares its entry point right, is
found by the folder loader, and its process runs as a job on a real cube, all without installing it into
the test environment (its metadata is built into a temporary folder instead, as `pip install -e` would)."""

import importlib
import os
import subprocess
import sys
from importlib.metadata import PathDistribution
from pathlib import Path

import numpy as np
import pytest
from helpers import context_with

from cubeport.errors import ConflictError, InputError
from cubeport.processes.registry import ENTRY_POINT_GROUP, load_folder, processes_in
from cubeport.processes.runner import run_job
from cubeport.processes.template import create_package


@pytest.fixture
def package(tmp_path):
    created = create_package("baltic-tools", tmp_path / "work")
    yield created
    for name in [m for m in sys.modules if m == created.package or m.startswith(f"{created.package}.")]:
        del sys.modules[name]


def build_metadata(folder: Path, into: Path) -> Path:
    """The package's metadata as setuptools builds it from pyproject.toml (the step of `pip install -e`
    that declares the entry point), written into `into`; no files of the environment change."""
    into.mkdir(parents=True, exist_ok=True)
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            "from setuptools import setup; setup()",
            "-q",
            "egg_info",
            "--egg-base",
            str(into),
        ],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    (info,) = into.glob("*.egg-info")
    return info


def test_the_generated_tests_pass(package):
    assert [p.relative_to(package.folder).as_posix() for p in package.files] == [
        "pyproject.toml",
        "README.md",
        ".gitignore",
        "src/baltic_tools/__init__.py",
        "src/baltic_tools/processes.py",
        "tests/test_baltic_tools.py",
    ]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=package.folder,
        capture_output=True,
        text=True,
        timeout=300,
        env={k: v for k, v in os.environ.items() if not k.startswith("PYTEST")},
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "4 passed" in run.stdout
    readme = (package.folder / "README.md").read_text()
    for command in ('pip install -e ".[test]"', "pytest", "cubeport processes list"):
        assert command in readme


def test_the_entry_point_and_the_folder_loader_find_the_process(package, tmp_path):
    source = package.folder / "src"
    info = build_metadata(package.folder, tmp_path / "meta")
    (entry,) = PathDistribution(info).entry_points.select(group=ENTRY_POINT_GROUP)
    assert (entry.name, entry.value) == ("baltic_tools", "baltic_tools.processes")
    sys.path.insert(0, str(source))
    try:
        found = processes_in(entry.load())
        assert [p.id for p in found] == ["baltic-tools-scale"]
        assert importlib.import_module("baltic_tools").scale is found[0]
    finally:
        sys.path.remove(str(source))
    (loaded,) = load_folder(source / package.package)  # processing.user_processes pointed at the module
    assert loaded.id == "baltic-tools-scale" and loaded.title == "Scale a variable"
    inputs = loaded.description_document()["inputs"]
    assert inputs["factor"]["description"] == "the factor every value is multiplied by"
    assert inputs["factor"]["schema"]["exclusiveMinimum"] == 0


def test_the_installed_package_runs_as_a_job(package, tmp_path, data, monkeypatch):
    """As after `pip install -e`: with the package and its metadata on the path, the platform finds the
    process by its entry point, and a job runs it on the SST sample and publishes the result (the runner
    in this process, as a worker runs it)."""
    source = package.folder / "src"
    build_metadata(package.folder, source)
    monkeypatch.syspath_prepend(str(source))
    context = context_with(tmp_path / "root", data, {"sst": "sst"})
    try:
        assert "baltic-tools-scale" in context.processes.ids()
        context.auth.directory.create_user("mia")
        mia = context.auth.directory.principal("mia", "password")
        inputs = {"cube": "sst", "variable": "analysed_sst", "factor": 10}
        job = context.processing.submit(mia, "baltic-tools-scale", inputs)
        assert context.jobs.claim("test", max_per_owner=1, only={job.id}).id == job.id
        run_job(job.id, context, runner="test")
        job = context.jobs.get(job.id)
        assert (job.status, job.message) == ("successful", "done")
        result = context.cubes.open(job.results["result"]["id"])
        sst = context.cubes.open("sst")["analysed_sst"]
        np.testing.assert_allclose(result["analysed_sst_scaled"].values, sst.values * 10, rtol=1e-6)
        assert result["analysed_sst_scaled"].attrs["units"] == sst.attrs["units"]
    finally:
        context.close()


@pytest.mark.parametrize("name", ["Sea-Ice", "9tools", "sea_ice", "sea--ice", "sea-", "x" * 41, "numpy"])
def test_bad_names_are_refused(tmp_path, name):
    with pytest.raises(InputError, match="package name"):
        create_package(name, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_an_existing_folder_is_not_overwritten(tmp_path):
    (tmp_path / "sea-ice").mkdir()
    (tmp_path / "sea-ice" / "notes.txt").write_text("mine")
    with pytest.raises(ConflictError, match="exists already"):
        create_package("sea-ice", tmp_path)
    assert [p.name for p in (tmp_path / "sea-ice").iterdir()] == ["notes.txt"]
