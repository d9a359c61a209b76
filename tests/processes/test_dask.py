"""Jobs on a real Dask distributed cluster (`LocalCluster`, two worker processes): a cube job computed on
the workers, and a worker killed mid-job, after which Dask runs the job again elsewhere and the runner
decides whether that second try may go on."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import context_with
from jobkit import LEO, MIA, assert_scaled, context_on, copy_root, kill, log_text, wait_done, wait_for

from cubeport.context import Context

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=40
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def sample_root(tmp_path_factory, data) -> Path:
    root: Path = tmp_path_factory.mktemp("sample") / "root"
    context_with(root, data, {"sst": "sst"}).close()
    return root


@pytest.fixture
def context(tmp_path, sample_root, cluster) -> Iterator[Context]:
    cluster.wait_for_workers(2, timeout=60)  # a worker killed by the test before is back
    context = context_on(
        copy_root(sample_root, tmp_path / "root"), scheduler=cluster.scheduler_info()["address"]
    )
    context.start_dispatcher()
    yield context
    context.close()


def worker_of(context: Context, job_id: str, cluster: Any) -> str:
    """The address of the worker running a job's try, once its process function has begun."""
    workers = set(cluster.scheduler_info()["workers"])

    def running() -> str | None:
        job = context.jobs.get(job_id)
        assert not job.done, f"job {job_id} ended early: {job.status} {job.message}"
        address = job.runner.removeprefix("dask:")
        started = {s.name: s.status for s in job.steps}["processing"] == "running"
        return address if started and address in workers else None

    return str(wait_for(running, 90, f"job {job_id} processing on a worker"))


def test_a_cube_job_is_computed_on_the_cluster_and_published(context, cluster):
    job = context.processing.submit(LEO, "scaled", {"cube": "sst", "factor": 0.5, "offset": -2})
    done = wait_done(context, job.id, timeout=90)

    assert done.status == "successful", done.message
    assert done.runner.removeprefix("dask:") in cluster.scheduler_info()["workers"]
    cube_id = done.results["result"]["id"]
    assert context.catalogue.get(cube_id).id == cube_id
    context.policy.refresh()
    assert context.policy.allows(LEO, "read", "cube", cube_id)
    assert not context.policy.allows(MIA, "read", "cube", cube_id)
    assert_scaled(context, cube_id, "sst", 0.5, -2)
    assert done.meters["wall_seconds"] > 0 and done.meters["peak_memory_bytes"] > 0
    assert [s.status for s in done.steps] == ["successful"] * 4


@pytest.mark.parametrize("process_id", ["sleepy", "fragile"])
def test_a_worker_killed_mid_job(context, cluster, process_id):
    """Dask runs the task again on another worker: a job safe to run again succeeds on its second try, one
    that is not fails saying why."""
    job = context.processing.submit(LEO, process_id, {"seconds": 3})
    address = worker_of(context, job.id, cluster)
    pids = cluster.run(os.getpid)
    kill(pids[address])
    done = wait_done(context, job.id, timeout=90)

    if process_id == "sleepy":
        assert (done.status, done.attempt) == ("successful", 2), done.message
        assert done.runner != f"dask:{address}"
        assert "try 2" in log_text(context, job.id)
    else:
        assert (done.status, done.attempt) == ("failed", 2)
        assert "worker" in done.message and "not safe to run again" in done.message


def test_a_job_dismissed_on_the_cluster_stops_within_seconds(context, cluster):
    job = context.processing.submit(LEO, "sleepy", {"seconds": 60})
    worker_of(context, job.id, cluster)
    asked = time.monotonic()
    context.jobs.dismiss(job.id)
    done = wait_done(context, job.id, timeout=15)
    assert done.status == "dismissed"
    assert time.monotonic() - asked < 5
    wait_for(lambda: not cluster.processing()[done.runner.removeprefix("dask:")], 10, "the worker is free")
