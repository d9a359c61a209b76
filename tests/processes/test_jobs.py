"""The job table as the queue (`JobStore`), on a real database: states, the per-owner limit, claims that
never hand one job out twice, finishing once, dismissal and logs."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Connection

from cubeport.db import Database
from cubeport.errors import NotFoundError
from cubeport.processes.jobs import STEPS, JobStore


@pytest.fixture
def jobs(tmp_path) -> Iterator[JobStore]:
    """SQLite in a temporary folder; the claim race runs on PostgreSQL too (`database`)."""
    db = Database(f"sqlite:///{tmp_path / 'cubeport.db'}")
    db.upgrade()
    yield JobStore(db)
    db.dispose()


def new(jobs: JobStore, owner: str = "leo", process_id: str = "sleepy", **options: Any) -> str:
    return jobs.create(process_id, "1.0.0", owner, {"seconds": 1}, retry_safe=True, **options).id


def steps(jobs: JobStore, job_id: str) -> dict[str, str]:
    return {s.name: s.status for s in jobs.get(job_id).steps}


def test_a_new_job_waits_in_accepted_scheduling_its_four_steps(jobs):
    job = jobs.create("sleepy", "1.0.0", "leo", {"seconds": 2}, retry_safe=False)
    assert (job.status, job.owner, job.inputs, job.retry_safe) == ("accepted", "leo", {"seconds": 2}, False)
    assert not job.done and job.attempt == 0 and job.progress == 0 and job.started is None
    assert [s.name for s in job.steps] == ["scheduling", "fetching", "processing", "ingesting"] == list(STEPS)
    assert [s.status for s in job.steps] == ["running", "waiting", "waiting", "waiting"]
    assert job.steps[0].started is not None and job.steps[0].started.tzinfo is not None
    assert ([j.id for j in jobs.list(owner="leo")[0]], jobs.list(owner="mia")[1]) == ([job.id], 0)
    assert jobs.list(owner="leo")[0][0].steps == job.steps  # listed with their steps, as GET /jobs shows them
    with pytest.raises(NotFoundError):
        jobs.get("0" * 32)


def test_a_job_is_created_with_what_on_create_writes_or_not_at_all(jobs):
    """The job's private access rule is written in the transaction that creates the job."""

    def fails(connection: Connection, job_id: str) -> None:
        raise RuntimeError("no rule")

    with pytest.raises(RuntimeError):
        new(jobs, on_create=fails)
    assert jobs.list() == ([], 0)
    seen: list[str] = []
    job_id = new(jobs, on_create=lambda connection, created: seen.append(created))
    assert seen == [job_id]


def test_claim_takes_the_oldest_job_of_an_owner_below_the_limit(jobs):
    leo1, leo2, mia1 = new(jobs, "leo"), new(jobs, "leo"), new(jobs, "mia")

    first = jobs.claim("local", max_per_owner=1)
    assert first is not None and first.id == leo1
    assert (first.status, first.runner) == ("running", "local") and first.started is not None
    second = jobs.claim("local", max_per_owner=1)  # leo runs one already: his second job waits
    assert second is not None and second.id == mia1
    assert jobs.claim("local", max_per_owner=1) is None
    assert jobs.get(leo2).status == "accepted"
    assert steps(jobs, leo2)["scheduling"] == "running"

    assert jobs.finish(leo1, "successful", "done")
    third = jobs.claim("local", max_per_owner=1)
    assert third is not None and third.id == leo2


def test_a_higher_limit_runs_more_jobs_of_one_owner(jobs):
    ids = {new(jobs, "leo") for _ in range(3)}
    claimed = {job.id for _ in range(3) if (job := jobs.claim("local", max_per_owner=2)) is not None}
    assert len(claimed) == 2 and claimed < ids


def test_claim_only_takes_the_jobs_it_is_given(jobs):
    leo1, mia1 = new(jobs, "leo"), new(jobs, "mia")
    assert jobs.claim("local", max_per_owner=5, only=set()) is None
    taken = jobs.claim("local", max_per_owner=5, only={mia1})
    assert taken is not None and taken.id == mia1
    assert jobs.claim("local", max_per_owner=5, only={mia1}) is None
    assert jobs.get(leo1).status == "accepted"


def test_claims_at_the_same_time_never_take_one_job_twice(database):
    """Several servers share the queue: each job goes to exactly one of them."""
    jobs = JobStore(database)
    ids = {new(jobs, f"user{i}") for i in range(16)}
    taken: list[str] = []
    lock = threading.Lock()

    def server(number: int) -> None:
        store = JobStore(database)
        while (job := store.claim(f"server{number}", max_per_owner=1)) is not None:
            with lock:
                taken.append(job.id)

    threads = [threading.Thread(target=server, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(taken) == sorted(ids)
    job = jobs.get(taken[0])
    assert job.status == "running" and job.started is not None and job.started.tzinfo is not None


def test_a_job_ends_once(jobs):
    job_id = new(jobs)
    assert jobs.claim("local", max_per_owner=1) is not None
    meters = {"cpu_seconds": 1.5, "wall_seconds": 2.0, "peak_memory_bytes": 2**20, "unknown": 7.0}
    assert jobs.finish(job_id, "successful", "done", results={"result": {"kind": "value"}}, meters=meters)
    assert not jobs.finish(job_id, "failed", "too late")
    assert not jobs.finish(job_id, "dismissed", "too late")
    job = jobs.get(job_id)
    assert (job.status, job.message, job.progress) == ("successful", "done", 100)
    assert job.results == {"result": {"kind": "value"}}
    assert job.meters["cpu_seconds"] == 1.5 and job.meters["peak_memory_bytes"] == 2**20
    assert job.finished is not None and job.finished >= job.created
    assert set(steps(jobs, job_id).values()) == {"successful"}


def test_a_failed_job_fails_its_unfinished_steps(jobs):
    job_id = new(jobs)
    jobs.claim("local", max_per_owner=1)
    jobs.step(job_id, "scheduling", "successful")
    jobs.step(job_id, "fetching", "running")
    assert jobs.finish(job_id, "failed", "ValueError: bad thing")
    assert steps(jobs, job_id) == {
        "scheduling": "successful",
        "fetching": "failed",
        "processing": "failed",
        "ingesting": "failed",
    }
    assert jobs.get(job_id).status == "failed" and jobs.list(status=["failed"])[1] == 1


def test_progress_follows_the_steps(jobs):
    job_id = new(jobs)
    jobs.claim("local", max_per_owner=1)
    seen = []
    for step, progress in (("fetching", 50), ("processing", 0), ("processing", 50), ("ingesting", 50)):
        jobs.step(job_id, step, "running", progress=progress)
        seen.append(jobs.get(job_id).progress)
    assert seen == [5, 10, 50, 95]
    assert {s.name: s.progress for s in jobs.get(job_id).steps}["processing"] == 50


def test_dismissing_a_waiting_job_ends_it_at_once(jobs):
    job_id = new(jobs)
    job = jobs.dismiss(job_id)
    assert job.status == "dismissed" and job.finished is not None
    assert jobs.claim("local", max_per_owner=1) is None


def test_dismissing_a_running_job_asks_its_worker(jobs):
    job_id = new(jobs)
    jobs.claim("local", max_per_owner=1)
    assert not jobs.beat(job_id, {"cpu_seconds": 0.5})
    job = jobs.dismiss(job_id)
    assert job.status == "running" and job.dismiss_requested
    assert jobs.beat(job_id, {"cpu_seconds": 0.7})  # the next heartbeat tells the worker to stop
    assert jobs.finish(job_id, "dismissed", "dismissed while running")
    assert jobs.get(job_id).meters["cpu_seconds"] == 0.7


def test_a_requeued_job_is_claimed_again_and_counts_its_tries(jobs):
    job_id = new(jobs)
    jobs.claim("local", max_per_owner=1)
    started = jobs.start_try(job_id, "local:host:1")
    assert started is not None and (started.attempt, started.runner) == (1, "local:host:1")
    jobs.step(job_id, "scheduling", "successful")
    jobs.step(job_id, "processing", "running", progress=40)

    jobs.requeue(job_id, "its worker died")
    job = jobs.get(job_id)
    assert (job.status, job.message, job.runner) == ("accepted", "its worker died", "")
    assert [s.status for s in job.steps] == ["running", "waiting", "waiting", "waiting"]
    assert jobs.claim("local", max_per_owner=1) is not None
    again = jobs.start_try(job_id, "local:host:2")
    assert again is not None and again.attempt == 2

    jobs.finish(job_id, "successful", "done")
    assert jobs.start_try(job_id, "local:host:3") is None  # an ended job is not run again


def test_logs_come_in_order_and_after_a_given_line(jobs):
    job_id, other = new(jobs), new(jobs)
    for n in range(5):
        jobs.log(job_id, f"line {n}")
        jobs.log(other, f"other {n}")
    lines = jobs.logs(job_id)
    assert [text for _, _, text in lines] == [f"line {n}" for n in range(5)]
    ids = [line_id for line_id, _, _ in lines]
    assert ids == sorted(ids)
    assert [text for _, _, text in jobs.logs(job_id, after=ids[1])] == ["line 2", "line 3", "line 4"]
    assert jobs.logs(job_id, after=ids[-1]) == []
    assert [text for _, _, text in jobs.logs(job_id, after=ids[1], limit=1)] == ["line 2"]
