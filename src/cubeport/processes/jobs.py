"""Jobs in the database: their state, steps, logs and metering, so every server and worker sees the same.

The table is also the queue: a job waits in `accepted` until an executor claims it (one atomic UPDATE), so
several server processes can share the work and a restart loses nothing.
"""

from __future__ import annotations

import builtins
import datetime as dt
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from sqlalchemy import ColumnElement, Connection, CursorResult, and_, func, select, update

from cubeport.db import Database
from cubeport.db.models import JobLogRecord, JobRecord, JobStepRecord
from cubeport.errors import NotFoundError

Status = Literal["accepted", "running", "successful", "failed", "dismissed"]
STATUSES: tuple[Status, ...] = ("accepted", "running", "successful", "failed", "dismissed")
FINAL: frozenset[str] = frozenset({"successful", "failed", "dismissed"})
STEPS = ("scheduling", "fetching", "processing", "ingesting")  # Insula's steps, in order
METERS = ("cpu_seconds", "wall_seconds", "peak_memory_bytes", "bytes_read", "bytes_written")


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Step:
    name: str
    status: str
    progress: int
    started: dt.datetime | None
    finished: dt.datetime | None
    message: str


@dataclass(frozen=True)
class Job:
    """A job as stored; `meters` are what it consumed (CPU seconds, wall time, peak memory, bytes)."""

    id: str
    process_id: str
    process_version: str
    owner: str
    status: str
    message: str
    inputs: dict[str, Any]
    results: dict[str, Any]
    progress: int
    created: dt.datetime
    started: dt.datetime | None
    finished: dt.datetime | None
    updated: dt.datetime
    heartbeat: dt.datetime | None
    runner: str
    attempt: int
    retry_safe: bool
    dismiss_requested: bool
    meters: dict[str, float] = field(default_factory=dict)
    steps: tuple[Step, ...] = ()

    @property
    def done(self) -> bool:
        return self.status in FINAL


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands back naive datetimes: they were written in UTC."""
    return value.replace(tzinfo=dt.UTC) if value is not None and value.tzinfo is None else value


def _job(record: JobRecord, steps: Sequence[JobStepRecord] = ()) -> Job:
    return Job(
        id=record.id,
        process_id=record.process_id,
        process_version=record.process_version,
        owner=record.owner,
        status=record.status,
        message=record.message,
        inputs=dict(record.inputs or {}),
        results=dict(record.results or {}),
        progress=record.progress,
        created=_utc(record.created) or now(),
        started=_utc(record.started),
        finished=_utc(record.finished),
        updated=_utc(record.updated) or now(),
        heartbeat=_utc(record.heartbeat),
        runner=record.runner,
        attempt=record.attempt,
        retry_safe=record.retry_safe,
        dismiss_requested=record.dismiss_requested,
        meters={m: getattr(record, m) for m in METERS},
        steps=tuple(
            Step(s.name, s.status, s.progress, _utc(s.started), _utc(s.finished), s.message) for s in steps
        ),
    )


class JobStore:
    """Create, claim, update, list and recover jobs."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # ------------------------------------------------------------------ creating and reading

    def create(
        self,
        process_id: str,
        version: str,
        owner: str,
        inputs: Mapping[str, Any],
        *,
        retry_safe: bool,
        on_create: Callable[[Connection, str], None] | None = None,
    ) -> Job:
        """A new job in `accepted`; `on_create(connection, job_id)` runs in the same transaction (the job's
        private access rule, so it is never seen without one)."""
        job_id = uuid.uuid4().hex
        stamp = now()
        with self.db.session() as session:
            session.add(
                JobRecord(
                    id=job_id,
                    process_id=process_id,
                    process_version=version,
                    owner=owner,
                    status="accepted",
                    message="waiting for a worker",
                    inputs=dict(inputs),
                    results={},
                    created=stamp,
                    updated=stamp,
                    retry_safe=retry_safe,
                )
            )
            for position, name in enumerate(STEPS):
                session.add(JobStepRecord(job_id=job_id, position=position, name=name, status="waiting"))
            session.flush()
            if on_create is not None:
                on_create(session.connection(), job_id)
            session.execute(
                update(JobStepRecord)
                .where(JobStepRecord.job_id == job_id, JobStepRecord.name == "scheduling")
                .values(status="running", started=stamp)
            )
        return self.get(job_id)

    def get(self, job_id: str) -> Job:
        with self.db.session() as session:
            record = session.get(JobRecord, job_id)
            if record is None:
                # worded as the HTTP guard words a job the caller may not see: the two must not differ
                raise NotFoundError(f"job {job_id!r} not found")
            steps = session.scalars(
                select(JobStepRecord).where(JobStepRecord.job_id == job_id).order_by(JobStepRecord.position)
            ).all()
            return _job(record, steps)

    def list(
        self,
        *,
        owner: str | None = None,
        status: Sequence[str] = (),
        process_id: Sequence[str] = (),
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[builtins.list[Job], int]:
        """Newest first, with their steps; `owner` None lists everyone's (admins). Returns the page and the
        number matched."""
        query = select(JobRecord)
        if owner is not None:
            query = query.where(JobRecord.owner == owner)
        if status:
            query = query.where(JobRecord.status.in_(list(status)))
        if process_id:
            query = query.where(JobRecord.process_id.in_(list(process_id)))
        with self.db.session() as session:
            matched = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            records = session.scalars(
                query.order_by(JobRecord.created.desc(), JobRecord.id).limit(limit).offset(offset)
            ).all()
            steps: dict[str, builtins.list[JobStepRecord]] = {r.id: [] for r in records}
            for step in session.scalars(
                select(JobStepRecord)
                .where(JobStepRecord.job_id.in_(list(steps)))
                .order_by(JobStepRecord.job_id, JobStepRecord.position)
            ):
                steps[step.job_id].append(step)
            return [_job(r, steps[r.id]) for r in records], matched

    def logs(
        self, job_id: str, after: int = 0, limit: int = 10_000
    ) -> builtins.list[tuple[int, dt.datetime, str]]:
        """Log lines after line id `after`, oldest first: (id, time, text)."""
        with self.db.session() as session:
            rows = session.execute(
                select(JobLogRecord.id, JobLogRecord.time, JobLogRecord.text)
                .where(JobLogRecord.job_id == job_id, JobLogRecord.id > after)
                .order_by(JobLogRecord.id)
                .limit(limit)
            ).all()
            return [(i, _utc(t) or now(), text) for i, t, text in rows]

    # ------------------------------------------------------------------ the queue

    def claim(self, runner: str, *, max_per_owner: int, only: Collection[str] | None = None) -> Job | None:
        """Take the oldest accepted job (of `only`, if given) whose owner runs fewer than `max_per_owner`
        jobs, or None."""
        with self.db.session() as session:
            running = dict(
                session.execute(
                    select(JobRecord.owner, func.count())
                    .where(JobRecord.status == "running")
                    .group_by(JobRecord.owner)
                ).all()
            )
            candidates = session.execute(
                select(JobRecord.id, JobRecord.owner)
                .where(JobRecord.status == "accepted")
                .order_by(JobRecord.created, JobRecord.id)
                .limit(200)
            ).all()
        for job_id, owner in candidates:
            if running.get(owner, 0) >= max_per_owner or (only is not None and job_id not in only):
                continue
            stamp = now()
            with self.db.session() as session:
                taken = _rowcount(
                    session.execute(
                        update(JobRecord)
                        .where(JobRecord.id == job_id, JobRecord.status == "accepted")
                        .values(
                            status="running",
                            runner=runner,
                            started=func.coalesce(JobRecord.started, stamp),
                            heartbeat=stamp,
                            updated=stamp,
                            message="starting",
                        )
                    )
                )
            if taken:
                return self.get(job_id)
        return None

    def start_try(self, job_id: str, runner: str) -> Job | None:
        """A worker begins running a claimed job: count the try (a Dask cluster may run a job again by itself
        when a worker dies). None if the job has ended meanwhile."""
        with self.db.session() as session:
            started = _rowcount(
                session.execute(
                    update(JobRecord)
                    .where(JobRecord.id == job_id, JobRecord.status == "running")
                    .values(attempt=JobRecord.attempt + 1, runner=runner, heartbeat=now(), updated=now())
                )
            )
        return self.get(job_id) if started else None

    def set_results(self, job_id: str, results: Mapping[str, Any]) -> None:
        """Record outputs as they are published, so a failed try can find and remove them."""
        self._set(job_id, results=dict(results))

    def requeue(self, job_id: str, reason: str, *, attempt: int | None = None) -> None:
        """Put a running job back in the queue (its worker died and the process may run again); `attempt`
        counts a try that died before `start_try` counted it."""
        values: dict[str, Any] = {} if attempt is None else {"attempt": attempt}
        self._set(job_id, status="accepted", runner="", heartbeat=None, message=reason, **values)
        self._reset_steps(job_id)
        self.log(job_id, f"requeued: {reason}")

    # ------------------------------------------------------------------ while running

    def step(
        self, job_id: str, name: str, status: str, *, progress: int | None = None, message: str = ""
    ) -> None:
        """Move a step on; a running step marks the job's progress and message too."""
        stamp = now()
        values: dict[str, Any] = {"status": status, "message": message}
        if status == "running":
            values["started"] = func.coalesce(JobStepRecord.started, stamp)
        if status in ("successful", "failed"):
            values["finished"] = stamp
            values["progress"] = 100 if status == "successful" else progress or 0
        if progress is not None:
            values["progress"] = progress
        with self.db.session() as session:
            session.execute(
                update(JobStepRecord)
                .where(JobStepRecord.job_id == job_id, JobStepRecord.name == name)
                .values(**values)
            )
            if status == "running" or progress is not None:
                overall = _overall(name, progress or 0)
                session.execute(
                    update(JobRecord)
                    .where(JobRecord.id == job_id)
                    .values(progress=overall, updated=stamp, message=message or f"{name}")
                )

    def log(self, job_id: str, text: str) -> None:
        with self.db.session() as session:
            session.add(JobLogRecord(job_id=job_id, time=now(), text=text))

    def beat(self, job_id: str, meters: Mapping[str, float]) -> bool:
        """Record that the job lives and what it has consumed so far; True if it was asked to stop."""
        with self.db.session() as session:
            session.execute(
                update(JobRecord)
                .where(JobRecord.id == job_id, JobRecord.status == "running")
                .values(heartbeat=now(), **{k: v for k, v in meters.items() if k in METERS})
            )
            return bool(session.scalar(select(JobRecord.dismiss_requested).where(JobRecord.id == job_id)))

    def finish(
        self,
        job_id: str,
        status: Status,
        message: str,
        *,
        results: Mapping[str, Any] | None = None,
        meters: Mapping[str, float] | None = None,
    ) -> bool:
        """End a job that is not ended yet (False if it was: e.g. dismissed meanwhile)."""
        stamp = now()
        values: dict[str, Any] = {"status": status, "message": message, "finished": stamp, "updated": stamp}
        if results is not None:
            values["results"] = dict(results)
        if status == "successful":
            values["progress"] = 100
        values.update({k: v for k, v in (meters or {}).items() if k in METERS})
        unfinished: ColumnElement[bool] = JobRecord.status.in_(["accepted", "running"])
        if status == "successful":  # a dismissal that came while the job ended wins: its outputs go
            unfinished = and_(unfinished, JobRecord.dismiss_requested.is_(False))
        with self.db.session() as session:
            ended = _rowcount(
                session.execute(update(JobRecord).where(JobRecord.id == job_id, unfinished).values(**values))
            )
            if ended:
                session.execute(
                    update(JobStepRecord)
                    .where(JobStepRecord.job_id == job_id, JobStepRecord.status.in_(["waiting", "running"]))
                    .values(
                        status="successful" if status == "successful" else "failed",
                        progress=100 if status == "successful" else JobStepRecord.progress,
                        finished=stamp,
                        message="" if status == "successful" else status,
                    )
                )
        return bool(ended)

    def dismiss(self, job_id: str) -> Job:
        """Ask a job to stop: a waiting one is dismissed at once, a running one by its executor within
        seconds (it checks at every progress report and heartbeat)."""
        if self._status(job_id) == "accepted":
            self.finish(job_id, "dismissed", "dismissed before it started")
        with self.db.session() as session:
            session.execute(
                update(JobRecord)
                .where(JobRecord.id == job_id, JobRecord.status == "running")
                .values(dismiss_requested=True, message="dismissing", updated=now())
            )
        return self.get(job_id)

    def running(self, runner_prefix: str = "") -> builtins.list[Job]:
        with self.db.session() as session:
            records = session.scalars(
                select(JobRecord).where(
                    JobRecord.status == "running", JobRecord.runner.startswith(runner_prefix)
                )
            ).all()
            return [_job(r) for r in records]

    def delete(self, job_id: str) -> None:
        with self.db.session() as session:
            record = session.get(JobRecord, job_id)
            if record is not None:
                session.delete(record)

    def _status(self, job_id: str) -> str:
        with self.db.session() as session:
            status = session.scalar(select(JobRecord.status).where(JobRecord.id == job_id))
        if status is None:
            raise NotFoundError(f"job {job_id!r} not found")
        return status

    def _set(self, job_id: str, **values: Any) -> None:
        with self.db.session() as session:
            session.execute(update(JobRecord).where(JobRecord.id == job_id).values(updated=now(), **values))

    def _reset_steps(self, job_id: str) -> None:
        with self.db.session() as session:
            session.execute(
                update(JobStepRecord)
                .where(JobStepRecord.job_id == job_id)
                .values(status="waiting", progress=0, started=None, finished=None, message="")
            )
            session.execute(
                update(JobStepRecord)
                .where(JobStepRecord.job_id == job_id, JobStepRecord.name == "scheduling")
                .values(status="running", started=now())
            )


def _rowcount(result: Any) -> int:
    """Rows an UPDATE changed (Session.execute is typed as Result; an UPDATE returns a CursorResult)."""
    return int(cast(CursorResult[Any], result).rowcount)


def _overall(step: str, progress: int) -> int:
    """The job's progress from its current step: fetching 0-10, processing 10-90, ingesting 90-100."""
    low, high = {"scheduling": (0, 0), "fetching": (0, 10), "processing": (10, 90), "ingesting": (90, 100)}[
        step
    ]
    return low + (high - low) * max(0, min(progress, 100)) // 100
