"""What the job-machinery tests share: a data root with the SST sample ingested once and copied per test,
contexts whose processing settings point at the test processes, waiting on jobs, and the traces an
output leaves (so a test can say that nothing of it is left)."""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import select

from cubeport.auth.principal import Principal
from cubeport.config import Settings, load_settings
from cubeport.context import Context
from cubeport.db.models import GrantRecord, ResourceAccessRecord
from cubeport.errors import NotFoundError
from cubeport.processes.jobs import Job

USER_PROCESSES = Path(__file__).resolve().parent / "user_processes"
LEO = Principal("leo", role="editor", via="password")
MIA = Principal("mia", role="editor", via="password")


def processing(work: Path, **overrides: Any) -> dict[str, Any]:
    """Processing settings of the tests: the test processes, a scratch folder of the test's own, quick
    heartbeats (a dismissal is seen within a fraction of a second)."""
    return {
        "user_processes": str(USER_PROCESSES),
        "work_dir": str(work),
        "heartbeat_seconds": 0.3,
        "workers": 2,
        **overrides,
    }


def settings_for(root: Path, **processing_overrides: Any) -> Settings:
    return load_settings(
        data_root=str(root), processing=processing(root.parent / "work", **processing_overrides)
    )


def copy_root(template: Path, target: Path) -> Path:
    """A fresh data root with the template's cubes and database (the sample ingested once per module)."""
    shutil.copytree(template, target)
    return target


def context_on(root: Path, **processing_overrides: Any) -> Context:
    return Context(settings_for(root, **processing_overrides))


def platform_that_cannot_open() -> Context:
    """An `OpenPlatform` for a job process that dies before it begins its job."""
    raise RuntimeError("the platform cannot be opened here")


def wait_for(
    condition: Callable[[], Any], timeout: float, what: str | Callable[[], str], every: float = 0.05
) -> Any:
    """Poll until `condition()` is truthy and return it; fail saying `what` did not happen."""
    end = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"not within {timeout} s: {what if isinstance(what, str) else what()}")
        time.sleep(every)


def wait_done(context: Context, job_id: str, timeout: float = 60) -> Job:
    def ended() -> Job | None:
        job = context.jobs.get(job_id)
        return job if job.done else None

    def state() -> str:
        job = context.jobs.get(job_id)
        return f"job {job_id} ended (it is {job.status}: {job.message})"

    job: Job = wait_for(ended, timeout, state, every=0.1)
    return job


def local_pid(job: Job) -> int | None:
    """The pid of the local process running a job ("local:host:pid"), once its try has started."""
    kind, _, where = job.runner.partition(":")
    pid = where.rpartition(":")[2]
    return int(pid) if kind == "local" and pid.isdigit() else None


def wait_running_pid(context: Context, job_id: str, timeout: float = 30) -> int:
    """The pid of a job's process once the process function has begun (its first progress or log line)."""

    def started() -> int | None:
        job = context.jobs.get(job_id)
        assert not job.done, f"job {job_id} ended early: {job.status} {job.message}"
        pid = local_pid(job)
        begun = {s.name: s.status for s in job.steps}["processing"] == "running"
        return pid if pid is not None and begun else None

    return int(wait_for(started, timeout, f"job {job_id} processing in a local process"))


def alive(pid: int) -> bool:
    """A process that still runs (a zombie has ended, whoever has not reaped it yet)."""
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def gone(pid: int) -> bool:
    return not alive(pid)


def kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)


def log_text(context: Context, job_id: str) -> str:
    return "\n".join(text for _, _, text in context.jobs.logs(job_id))


def rules(context: Context, kind: str, resource_id: str) -> list[tuple[str, ...]]:
    """Access rows stored for a resource (its access rule and grants)."""
    with context.db.session() as session:
        access = session.execute(
            select(ResourceAccessRecord.kind, ResourceAccessRecord.resource_id).where(
                ResourceAccessRecord.kind == kind, ResourceAccessRecord.resource_id == resource_id
            )
        ).all()
        grants = session.execute(
            select(GrantRecord.kind, GrantRecord.resource_id, GrantRecord.subject).where(
                GrantRecord.kind == kind, GrantRecord.resource_id == resource_id
            )
        ).all()
    return [tuple(row) for row in [*access, *grants]]


def cube_traces(context: Context, cube_id: str) -> dict[str, bool]:
    """Which traces of a cube exist: its data in storage, its catalogue entry, its access rules."""
    try:
        context.catalogue.get(cube_id)
        catalogued = True
    except NotFoundError:
        catalogued = False
    return {
        "pointer": context.cubes.exists(cube_id),
        "data": context.storage.exists("cubes", cube_id),
        "catalogue": catalogued,
        "rules": bool(rules(context, "cube", cube_id)),
    }


NO_TRACES = {"pointer": False, "data": False, "catalogue": False, "rules": False}


def assert_scaled(context: Context, cube_id: str, source: str, factor: float, offset: float) -> None:
    """The published cube holds `source * factor + offset`, computed here with plain xarray."""
    import numpy as np

    published = context.cubes.open(cube_id, dask=False)
    expected = context.cubes.open(source, dask=False) * factor + offset
    assert sorted(map(str, published.data_vars)) == sorted(map(str, expected.data_vars))
    for name in expected.data_vars:
        assert published[name].dims == expected[name].dims
        np.testing.assert_allclose(published[name].values, expected[name].values, rtol=1e-6, equal_nan=True)
    for dim in ("time", *expected[next(iter(expected.data_vars))].dims[1:]):
        np.testing.assert_array_equal(published[dim].values, expected[dim].values)
