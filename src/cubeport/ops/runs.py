"""Suites and their runs in the database: the state of every node, and the operator's actions on them.

The database is the runner's memory: a runner killed at any moment and started again finds every run, every
queued task and every task that was active (it then checks whether that task's process is still there, see
`runner.py`). Families keep no state of their own: theirs is their children's most significant one, and
their `suspended` flag holds everything below them.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from cubeport.db import Database
from cubeport.db.models import OpsNodeRecord, OpsRunRecord, OpsSuiteRecord, OpsWatcherRecord
from cubeport.errors import ConflictError, InputError, NotFoundError
from cubeport.ops.suites import NodeState, Suite, load_suite, most_significant

Action = Literal["requeue", "rerun", "run", "suspend", "resume", "kill", "complete"]
ACTIONS: tuple[Action, ...] = ("requeue", "rerun", "run", "suspend", "resume", "kill", "complete")
BUSY = (NodeState.submitted, NodeState.active)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def utc(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite gives naive datetimes back; they were written in UTC."""
    return value.replace(tzinfo=dt.UTC) if value is not None and value.tzinfo is None else value


@dataclass
class NodeView:
    """A node of a run as operators see it (families with their children's most significant state)."""

    path: str
    kind: Literal["family", "task"]
    state: NodeState
    suspended: bool = False
    try_no: int = 0
    tries: int = 1
    started: dt.datetime | None = None
    ended: dt.datetime | None = None
    reason: str = ""
    children: list[NodeView] = field(default_factory=list)

    @property
    def seconds(self) -> float | None:
        if self.started is None:
            return None
        return ((self.ended or now()) - self.started).total_seconds()

    def to_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "kind": self.kind,
            "state": self.state.value,
            "suspended": self.suspended,
            "try": self.try_no,
            "tries": self.tries,
            "started": self.started.isoformat() if self.started else None,
            "ended": self.ended.isoformat() if self.ended else None,
            "seconds": self.seconds,
            "reason": self.reason,
            "children": [c.to_dict() for c in self.children],
        }


@dataclass(frozen=True)
class Run:
    id: str
    suite: str
    variables: dict[str, str]
    cause: str
    state: NodeState
    created: dt.datetime
    finished: dt.datetime | None


@dataclass(frozen=True)
class TaskRecord:
    """What the runner needs of a task of a run."""

    run_id: str
    path: str
    state: NodeState
    try_no: int
    pid: int | None
    started: dt.datetime | None
    run_now: bool
    suspended: bool


class Runs:
    """Suites, runs and node states (the runner and the operators' actions share it)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._suites: dict[str, tuple[str, Suite]] = {}

    # -- suites ----------------------------------------------------------------------------------------
    def save_suite(self, definition: str) -> Suite:
        """Add or replace a suite from its YAML; runs already started keep their tree."""
        suite = load_suite(definition)
        with self.db.session() as session:
            record = session.get(OpsSuiteRecord, suite.name)
            if record is None:
                session.add(OpsSuiteRecord(name=suite.name, definition=definition, updated=now()))
            else:
                record.definition, record.updated = definition, now()
        return suite

    def suite(self, name: str) -> Suite:
        with self.db.session() as session:
            record = session.get(OpsSuiteRecord, name)
            if record is None:
                raise NotFoundError(f"suite {name!r} not found")
            definition = record.definition
        cached = self._suites.get(name)
        if cached is None or cached[0] != definition:
            cached = (definition, load_suite(definition))
            self._suites[name] = cached
        return cached[1]

    def suite_names(self) -> list[str]:
        with self.db.session() as session:
            return list(session.scalars(select(OpsSuiteRecord.name).order_by(OpsSuiteRecord.name)))

    def delete_suite(self, name: str) -> None:
        self.suite(name)
        with self.db.session() as session:
            watcher = session.scalar(select(OpsWatcherRecord.name).where(OpsWatcherRecord.suite == name))
            if watcher is not None:
                raise ConflictError(f"watcher {watcher!r} starts runs of suite {name!r}; remove it first")
            if session.scalar(
                select(OpsRunRecord.id).where(OpsRunRecord.suite == name, OpsRunRecord.finished.is_(None))
            ):
                raise ConflictError(f"suite {name!r} has runs that are not finished; wait or kill them first")
            session.execute(delete(OpsSuiteRecord).where(OpsSuiteRecord.name == name))

    def due_suites(self, when: dt.datetime) -> list[tuple[str, dt.datetime | None]]:
        """Suites with a schedule whose next run is due (or not yet planned), and that time."""
        with self.db.session() as session:
            rows = session.execute(
                select(OpsSuiteRecord.name, OpsSuiteRecord.next_run).where(
                    OpsSuiteRecord.suspended.is_(False)
                )
            ).all()
        return [(name, utc(at)) for name, at in rows if at is None or utc(at) <= when]  # type: ignore[operator]

    def plan_next(self, name: str, at: dt.datetime | None) -> None:
        with self.db.session() as session:
            session.execute(update(OpsSuiteRecord).where(OpsSuiteRecord.name == name).values(next_run=at))

    # -- runs ------------------------------------------------------------------------------------------
    def start(
        self,
        suite_name: str,
        variables: Mapping[str, str] = {},
        cause: str = "operator",
        session: Session | None = None,
    ) -> Run:
        """A new run: every task queued. Given a `session`, the run is part of the caller's transaction (a
        watcher records a file and starts its run at once, or neither)."""
        suite = self.suite(suite_name)
        run = Run(str(uuid.uuid4()), suite.name, dict(variables), cause[:256], NodeState.queued, now(), None)
        if session is None:
            with self.db.session() as own:
                _add_run(own, suite, run)
        else:
            _add_run(session, suite, run)
        return run

    def run(self, run_id: str) -> Run:
        with self.db.session() as session:
            record = session.get(OpsRunRecord, run_id)
            if record is None:
                raise NotFoundError(f"run {run_id!r} not found")
            return _run(record)

    def runs(self, suite: str | None = None, *, unfinished: bool = False, limit: int = 50) -> list[Run]:
        query = select(OpsRunRecord).order_by(OpsRunRecord.created.desc()).limit(limit)
        if suite is not None:
            query = query.where(OpsRunRecord.suite == suite)
        if unfinished:
            query = query.where(OpsRunRecord.finished.is_(None))
        with self.db.session() as session:
            return [_run(r) for r in session.scalars(query)]

    def timeline(self, since: dt.datetime) -> list[dict[str, object]]:
        """Every task try that started since `since` (suite, run, path, state, times): the last 24 h view."""
        query = (
            select(OpsRunRecord.suite, OpsNodeRecord)
            .join(OpsRunRecord, OpsRunRecord.id == OpsNodeRecord.run_id)
            .where(OpsNodeRecord.started.is_not(None), OpsNodeRecord.started >= since)
            .order_by(OpsNodeRecord.started)
        )
        with self.db.session() as session:
            rows = session.execute(query).all()
        return [
            {
                "suite": suite,
                "run": node.run_id,
                "path": node.path,
                "state": node.state,
                "try": node.try_no,
                "started": (utc(node.started) or now()).isoformat(),
                "ended": e.isoformat() if (e := utc(node.ended)) else None,
            }
            for suite, node in rows
        ]

    def tasks(self, run_id: str) -> list[TaskRecord]:
        """The run's tasks (families left out), with the flags of their families folded in."""
        suite = self.suite(self.run(run_id).suite)
        records = self._records(run_id)
        found = []
        for node in suite.tasks():
            record = records[node.path]
            held = record.suspended or any(records[a.path].suspended for a in suite.ancestors(node.path))
            found.append(
                TaskRecord(
                    run_id,
                    node.path,
                    NodeState(record.state),
                    record.try_no,
                    record.pid,
                    utc(record.started),
                    record.run_now,
                    held,
                )
            )
        return found

    def tree(self, run_id: str) -> NodeView:
        """The run as a tree, the suite at the root, each family with its children's most significant state."""
        run = self.run(run_id)
        suite = self.suite(run.suite)
        records = self._records(run_id)
        views: dict[str, NodeView] = {}
        for path, node in reversed(suite.nodes.items()):  # children before their family
            record = records[path]
            children = [views[c] for c in node.children]
            spec = node.spec
            views[path] = NodeView(
                path=path,
                kind="task" if node.is_task else "family",
                state=NodeState(record.state)
                if node.is_task
                else most_significant([c.state for c in children]),
                suspended=record.suspended,
                try_no=record.try_no,
                tries=getattr(spec, "tries", 1),
                started=utc(record.started) if node.is_task else _first([c.started for c in children]),
                ended=utc(record.ended) if node.is_task else _last(children),
                reason=record.reason,
                children=children,
            )
        top = [views[p] for p, n in suite.nodes.items() if n.parent == suite.path]
        return NodeView(
            path=suite.path,
            kind="family",
            state=most_significant([c.state for c in top]),
            started=_first([c.started for c in top]),
            ended=_last(top),
            children=top,
        )

    def state_of(self, run_id: str) -> dict[str, NodeState]:
        """Every node's state by path (families from their children): what triggers read."""
        states: dict[str, NodeState] = {}

        def visit(view: NodeView) -> None:
            states[view.path] = view.state
            for child in view.children:
                visit(child)

        visit(self.tree(run_id))
        return states

    def finish(self, run_id: str, state: NodeState) -> None:
        with self.db.session() as session:
            session.execute(
                update(OpsRunRecord)
                .where(OpsRunRecord.id == run_id)
                .values(state=state.value, finished=now() if state == NodeState.complete else None)
            )

    # -- task transitions (the runner) -------------------------------------------------------------------
    def submitted(self, run_id: str, path: str, pid: int, try_no: int) -> None:
        self._set(
            run_id,
            path,
            state=NodeState.submitted.value,
            pid=pid,
            try_no=try_no,
            started=now(),
            ended=None,
            reason="",
            run_now=False,
        )

    def active(self, run_id: str, path: str) -> None:
        self._set(run_id, path, state=NodeState.active.value)

    def ended(self, run_id: str, path: str, state: NodeState, reason: str = "") -> None:
        self._set(run_id, path, state=state.value, ended=now(), reason=reason[:2000], pid=None)

    def requeued(self, run_id: str, path: str, reason: str) -> None:
        """An aborted task with tries left goes back to the queue (its try count stays)."""
        self._set(run_id, path, state=NodeState.queued.value, reason=reason[:2000], pid=None)

    # -- operator actions ---------------------------------------------------------------------------------
    def act(self, run_id: str, path: str, action: Action) -> list[str]:
        """Apply an operator's action to a node (and, for families, the tasks below it); returns the tasks
        the runner must kill (`kill` only: the runner owns the processes)."""
        if action not in ACTIONS:
            raise InputError(f"unknown action {action!r}; actions: {', '.join(ACTIONS)}")
        run = self.run(run_id)
        suite = self.suite(run.suite)
        if path not in suite.nodes and path != suite.path:
            raise NotFoundError(f"node {path!r} not found in run {run_id}")
        below = [p for p in suite.nodes if p == path or p.startswith(path.rstrip("/") + "/")]
        tasks = [p for p in below if suite.nodes[p].is_task]
        records = self._records(run_id)
        busy = [p for p in tasks if NodeState(records[p].state) in BUSY]
        if action in ("suspend", "resume"):
            flagged = (
                [path]
                if path in suite.nodes
                else [p for p, n in suite.nodes.items() if n.parent == suite.path]
            )
            for p in flagged:
                self._set(run_id, p, suspended=action == "suspend")
            return []
        if action == "kill":
            return busy
        if busy and action in ("requeue", "rerun", "run", "complete"):
            raise ConflictError(f"{path} has active tasks ({', '.join(busy)}); kill them first")
        for p in tasks:
            if action == "complete":
                self._set(
                    run_id,
                    p,
                    state=NodeState.complete.value,
                    ended=func.coalesce(OpsNodeRecord.ended, now()),  # a try that ended keeps its time
                    reason="set complete by an operator",
                )
            elif action == "requeue":
                self._set(
                    run_id,
                    p,
                    state=NodeState.queued.value,
                    try_no=0,
                    reason="",
                    started=None,
                    ended=None,
                    run_now=False,
                )
            elif action == "rerun":  # requeued, dependencies honoured, the try count goes on
                self._set(run_id, p, state=NodeState.queued.value, reason="", ended=None, run_now=False)
            else:  # run: submitted at the next tick, whatever its triggers, limits or suspension
                self._set(run_id, p, state=NodeState.queued.value, run_now=True)
        self._reopen(run_id)
        return []

    def _reopen(self, run_id: str) -> None:
        with self.db.session() as session:
            session.execute(
                update(OpsRunRecord)
                .where(OpsRunRecord.id == run_id)
                .values(finished=None, state=NodeState.queued.value)
            )

    # -- plumbing ----------------------------------------------------------------------------------------
    def _records(self, run_id: str) -> dict[str, OpsNodeRecord]:
        with self.db.session() as session:
            return {
                r.path: r
                for r in session.scalars(select(OpsNodeRecord).where(OpsNodeRecord.run_id == run_id))
            }

    def _set(self, run_id: str, path: str, **values: object) -> None:
        with self.db.session() as session:
            session.execute(
                update(OpsNodeRecord)
                .where(OpsNodeRecord.run_id == run_id, OpsNodeRecord.path == path)
                .values(**values)
            )


def _add_run(session: Session, suite: Suite, run: Run) -> None:
    session.add(
        OpsRunRecord(
            id=run.id,
            suite=run.suite,
            variables=run.variables,
            cause=run.cause,
            state=run.state.value,
            created=run.created,
        )
    )
    session.flush()
    for path in suite.nodes:
        session.add(OpsNodeRecord(run_id=run.id, path=path, state=NodeState.queued.value))


def _run(record: OpsRunRecord) -> Run:
    return Run(
        record.id,
        record.suite,
        dict(record.variables),
        record.cause,
        NodeState(record.state),
        utc(record.created) or now(),
        utc(record.finished),
    )


def _first(times: list[dt.datetime | None]) -> dt.datetime | None:
    known = [t for t in times if t is not None]
    return min(known) if known else None


def _last(children: list[NodeView]) -> dt.datetime | None:
    """A family ended when its last child did, once every child has ended."""
    ends = [c.ended for c in children]
    if not ends or any(e is None for e in ends) or any(c.state in BUSY for c in children):
        return None
    return max(e for e in ends if e is not None)
