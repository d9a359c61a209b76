"""Jobs run by the local executor end to end: real job processes (forkserver), a real SQLite database and
a data root with the SST sample. What a user sees of a job that succeeds, fails, is dismissed, loses its
process (killed, or its server killed) and what each leaves published."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from helpers import context_with
from jobkit import (
    LEO,
    MIA,
    NO_TRACES,
    alive,
    assert_scaled,
    context_on,
    copy_root,
    cube_traces,
    gone,
    kill,
    local_pid,
    log_text,
    platform_that_cannot_open,
    processing,
    wait_done,
    wait_for,
    wait_running_pid,
)

from cubeport.auth.principal import ANONYMOUS
from cubeport.context import Context
from cubeport.processes.executors import Dispatcher, LocalExecutor
from cubeport.processes.jobs import STEPS
from cubeport.processes.runner import output_name


@pytest.fixture(scope="module")
def sample_root(tmp_path_factory, data) -> Path:
    """A data root with the SST and NDVI samples ingested as cubes `sst` and `ndvi`, copied for each test."""
    root: Path = tmp_path_factory.mktemp("sample") / "root"
    context_with(root, data, {"sst": "sst", "ndvi": "ndvi"}).close()
    return root


@pytest.fixture
def context(tmp_path, sample_root) -> Iterator[Context]:
    context = context_on(copy_root(sample_root, tmp_path / "root"))
    yield context
    context.close()


def test_a_job_runs_through_its_steps_in_a_process_of_its_own_metered_and_logged(context):
    job = context.processing.submit(LEO, "sleepy", {"seconds": 1.5})
    context.start_dispatcher()
    midway = wait_for(
        lambda: 10 < (p := context.jobs.get(job.id).progress) < 90 and p, 30, "progress between 10 and 90"
    )
    done = wait_done(context, job.id)

    assert (done.status, done.message, done.attempt) == ("successful", "done", 1), done.message
    assert done.results == {"result": {"kind": "value", "value": {"slept": 1.5}}}
    assert done.progress == 100 > midway
    assert [(s.name, s.status, s.progress) for s in done.steps] == [(n, "successful", 100) for n in STEPS]
    times = [t for s in done.steps for t in (s.started, s.finished)]
    assert None not in times and times == sorted(times)  # type: ignore[type-var]
    assert done.created <= done.started <= done.finished  # type: ignore[operator]
    pid = local_pid(done)
    assert pid is not None and pid != os.getpid()
    assert done.meters["cpu_seconds"] > 0
    assert 1.5 <= done.meters["wall_seconds"] < 30
    assert done.meters["peak_memory_bytes"] > 20 * 2**20
    log = log_text(context, job.id)
    assert (
        log.index("submitted by leo")
        < log.index("sleeping 1.5 s")
        < log.index("awake")
        < log.index("successful")
    )


def test_a_cube_job_publishes_a_cube_private_to_its_owner(context):
    job = context.processing.submit(LEO, "scaled", {"cube": "sst", "factor": 3, "offset": 1})
    context.start_dispatcher()
    done = wait_done(context, job.id)

    assert done.status == "successful", done.message
    cube_id = done.results["result"]["id"]
    assert done.results == {"result": {"kind": "cube", "id": cube_id}}
    assert context.catalogue.get(cube_id).id == cube_id
    context.policy.refresh()
    assert context.policy.allows(LEO, "read", "cube", cube_id)
    assert context.policy.allows(LEO, "write", "cube", cube_id)
    assert not context.policy.allows(MIA, "read", "cube", cube_id)
    assert not context.policy.allows(ANONYMOUS, "read", "cube", cube_id)
    assert not context.policy.allows(MIA, "read", "job", job.id)
    assert_scaled(context, cube_id, "sst", 3, 1)
    assert done.meters["bytes_written"] > 0 and done.meters["bytes_read"] > 0
    assert "opened cube sst" in log_text(context, job.id)


def test_collections_and_files_are_published_for_their_owner_only(context):
    points = context.processing.submit(LEO, "points", {"count": 4})
    report = context.processing.submit(LEO, "report", {"text": "all fine"})
    context.start_dispatcher()
    points_done, report_done = wait_done(context, points.id), wait_done(context, report.id)

    assert points_done.status == "successful", points_done.message
    collection = points_done.results["result"]
    assert collection["kind"] == "collection"
    database, _, name = collection["id"].partition(".")
    assert context.features.get(database, name).id == collection["id"]
    context.policy.refresh()
    assert context.policy.allows(LEO, "read", "collection", collection["id"])
    assert not context.policy.allows(MIA, "read", "collection", collection["id"])
    assert not context.policy.allows(ANONYMOUS, "read", "collection", collection["id"])

    assert report_done.status == "successful", report_done.message
    assert report_done.results["result"] == {"kind": "file", "name": "report.txt", "size": 8}
    assert context.storage.read_bytes("jobs", report.id, "report.txt") == b"all fine"
    assert not context.policy.allows(MIA, "read", "job", report.id)


def test_a_failing_process_fails_its_job_with_the_message_and_logs_the_traceback(context, tmp_path):
    job = context.processing.submit(LEO, "broken", {"what": "bad thing"})
    context.start_dispatcher()
    done = wait_done(context, job.id)

    assert done.status == "failed"
    assert "bad thing" in done.message
    assert "Traceback" not in done.message and "\n" not in done.message and "deep_inside" not in done.message
    assert {s.name: s.status for s in done.steps}["processing"] == "failed"
    assert done.results == {}
    log = log_text(context, job.id)
    assert "about to fail" in log
    assert (
        "Traceback (most recent call last)" in log and "deep_inside" in log and "ValueError: bad thing" in log
    )
    assert not (tmp_path / "work" / job.id).exists()


def test_a_job_that_fails_while_publishing_leaves_nothing_published(context, tmp_path):
    job = context.processing.submit(LEO, "broken-cube", {"cube": "sst"})
    context.start_dispatcher()
    done = wait_done(context, job.id)

    assert done.status == "failed"
    assert "no spatial dimensions" in done.message
    assert str(tmp_path) not in done.message, "the message names a folder of the server"
    assert {s.name: s.status for s in done.steps}["ingesting"] == "failed"
    assert done.results == {}
    assert cube_traces(context, output_name(done)) == NO_TRACES
    assert not (tmp_path / "work" / job.id).exists()


def test_a_user_runs_at_most_max_jobs_per_user_at_once_and_the_next_waits(tmp_path):
    context = context_on(tmp_path / "root", max_jobs_per_user=1)
    try:
        first = context.processing.submit(LEO, "sleepy", {"seconds": 30})
        second = context.processing.submit(LEO, "sleepy", {"seconds": 0.1})
        other = context.processing.submit(MIA, "sleepy", {"seconds": 0.1})
        context.start_dispatcher()  # two workers: one for leo, one for anybody else
        wait_running_pid(context, first.id)
        assert wait_done(context, other.id).status == "successful"
        assert context.jobs.get(first.id).status == "running"
        assert context.jobs.get(second.id).status == "accepted"
        context.jobs.dismiss(first.id)
        done = wait_done(context, second.id)
        assert done.status == "successful", done.message
        ended = context.jobs.get(first.id)
        assert ended.status == "dismissed" and ended.finished is not None and done.started is not None
        assert done.started >= ended.finished
    finally:
        context.close()


@pytest.mark.parametrize(
    "process_id",
    [
        "sleepy",  # stops itself at its next progress report
        "fragile",  # never reports: stopped from outside after a grace period
    ],
)
def test_dismissing_a_running_job_stops_it_within_seconds(context, tmp_path, process_id):
    job = context.processing.submit(LEO, process_id, {"seconds": 60})
    context.start_dispatcher()
    pid = wait_running_pid(context, job.id)
    asked = time.monotonic()
    context.jobs.dismiss(job.id)
    done = wait_done(context, job.id, timeout=15)
    assert done.status == "dismissed"
    assert time.monotonic() - asked < 5
    wait_for(lambda: not alive(pid), 5, f"process {pid} of the dismissed job ended")
    assert done.results == {}
    assert done.finished is not None
    assert not (tmp_path / "work" / job.id).exists()


def test_a_job_whose_process_is_killed_runs_again_when_it_is_safe_to(context):
    job = context.processing.submit(LEO, "sleepy", {"seconds": 2})
    context.start_dispatcher()
    pid = wait_running_pid(context, job.id)
    kill(pid)
    done = wait_done(context, job.id)

    assert (done.status, done.attempt) == ("successful", 2), done.message
    assert done.results == {"result": {"kind": "value", "value": {"slept": 2}}}
    assert local_pid(done) != pid
    log = log_text(context, job.id)
    assert "SIGKILL" in log and "try 2" in log
    assert log.count("awake") == 1


def test_a_job_whose_process_is_killed_fails_when_it_is_not_safe_to_run_again(context, tmp_path):
    job = context.processing.submit(LEO, "fragile", {"seconds": 30})
    context.start_dispatcher()
    pid = wait_running_pid(context, job.id)
    kill(pid)
    done = wait_done(context, job.id, timeout=20)

    assert (done.status, done.attempt) == ("failed", 1)
    assert "worker" in done.message and "SIGKILL" in done.message
    assert not (tmp_path / "work" / job.id).exists()


@pytest.mark.parametrize("process_id", ["scaled", "scaled-fragile"])
def test_a_try_killed_while_publishing_leaves_nothing_of_its_output(context, tmp_path, process_id):
    """The process is frozen while its output cube is being written (its private rule and data are there, its
    pointer is not), then killed: a job safe to run again publishes its cube afresh, one that is not fails
    and leaves nothing."""
    job = context.processing.submit(LEO, process_id, {"cube": "ndvi", "factor": 2, "offset": 0.5, "delay": 1})
    cube_id = output_name(job)
    context.start_dispatcher()
    pid = wait_running_pid(context, job.id)
    data = Path(context.storage.path("cubes", cube_id))
    wait_for(data.exists, 60, f"job {job.id} writing {cube_id}", every=0.001)
    os.kill(pid, signal.SIGSTOP)
    try:
        caught = context.jobs.get(job.id)
        assert caught.status == "running", "the job ended before it could be stopped mid-publishing"
        assert {s.name: s.status for s in caught.steps}["ingesting"] == "running"
        assert cube_traces(context, cube_id) == {
            "pointer": False,
            "data": True,
            "catalogue": False,
            "rules": True,
        }
    finally:
        kill(pid)
    done = wait_done(context, job.id)

    if process_id == "scaled":
        assert (done.status, done.attempt) == ("successful", 2), done.message
        assert done.results == {"result": {"kind": "cube", "id": cube_id}}
        context.policy.refresh()
        assert context.policy.allows(LEO, "read", "cube", cube_id)
        assert not context.policy.allows(MIA, "read", "cube", cube_id)
        assert_scaled(context, cube_id, "ndvi", 2, 0.5)
        # the killed try's half-written version is gone, only the published one is left
        assert context.storage.list_dirs("cubes", cube_id) == [context.cubes.pointer(cube_id).version]
    else:
        assert (done.status, done.attempt) == ("failed", 1)
        assert "worker" in done.message
        assert done.results == {}
        assert cube_traces(context, cube_id) == NO_TRACES
        assert not (tmp_path / "work" / job.id).exists()


def test_a_job_whose_worker_cannot_start_fails_after_its_tries(context):
    """A worker process that dies before it begins the job (here: it cannot open the platform) counts as a
    try: the job is tried `max_attempts` times and fails, it is not requeued forever."""
    job = context.processing.submit(LEO, "sleepy", {"seconds": 0.1})
    dispatcher = Dispatcher(context, LocalExecutor(platform_that_cannot_open, workers=1))
    dispatcher.start()
    try:
        done = wait_done(context, job.id, timeout=60)
    finally:
        dispatcher.close()
    assert done.status == "failed"
    assert "worker process ended with code 1" in done.message
    assert log_text(context, job.id).count("taken by local") == context.settings.processing.max_attempts


SERVER = """
import json, sys, time
from cubeport.config import load_settings
from cubeport.context import Context

context = Context(load_settings(data_root=sys.argv[1], processing=json.loads(sys.argv[2])))
context.start_dispatcher()
while True:
    time.sleep(1)
"""


def test_jobs_running_when_their_server_is_killed_are_recovered_by_the_next_server(tmp_path):
    """The server runs in a process of its own and is killed with a job safe to run again and one that is not
    running. Their processes leave by themselves; the next server runs the first again and fails the other."""
    root = tmp_path / "root"
    context = context_on(root)
    try:
        safe = context.processing.submit(LEO, "sleepy", {"seconds": 3})
        unsafe = context.processing.submit(LEO, "fragile", {"seconds": 3})
        server = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(root), json.dumps(processing(tmp_path / "work"))]
        )
        try:
            pids = [wait_running_pid(context, job.id, timeout=90) for job in (safe, unsafe)]
        finally:
            server.kill()
            server.wait(10)
        for pid in pids:
            wait_for(partial(gone, pid), 10, f"job process {pid} left after its server was killed")
        assert [context.jobs.get(job.id).status for job in (safe, unsafe)] == ["running", "running"]

        context.start_dispatcher()  # the server started again
        done = wait_done(context, safe.id, timeout=60)
        assert (done.status, done.attempt) == ("successful", 2), done.message
        assert "requeued: its worker process is gone" in log_text(context, safe.id)
        assert local_pid(done) not in pids
        failed = wait_done(context, unsafe.id, timeout=10)
        assert (failed.status, failed.attempt) == ("failed", 1)
        assert "worker process is gone" in failed.message
        assert not (tmp_path / "work" / unsafe.id).exists()
    finally:
        context.close()
