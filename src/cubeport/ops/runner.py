"""The built-in runner: starts scheduled runs, submits tasks whose triggers hold, watches them, retries them.

Each task runs in its own process group through `cubeport.ops.job`, which writes `<task>.<try>.status.init`
when it starts and `<task>.<try>.status` with the exit code when it ends, beside the task's output
`<task>.<try>` (ecFlow's `.1`, `.2`, ...) under `<ops folder>/<suite>/<run>/`. Because outcomes are files
and states are rows, a runner killed at any moment loses nothing: the next one re-checks every task that was
submitted or active (its status file, else whether its process is still there) and goes on.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

from croniter import croniter

from cubeport.errors import CubeportError, InputError
from cubeport.ops.delivery import Deliveries
from cubeport.ops.lease import Lease
from cubeport.ops.runs import BUSY, Action, Run, Runs, TaskRecord, now
from cubeport.ops.suites import NodeState, Suite, TaskSpec, parse_trigger
from cubeport.ops.watchers import Watchers

log = logging.getLogger(__name__)
LEASE = "ops-runner"


class Runner:
    """One acting runner per database (the lease); `tick()` does one round, `run()` loops."""

    def __init__(
        self,
        runs: Runs,
        folder: Path,
        *,
        environment: Mapping[str, str] | None = None,
        poll_seconds: float = 1.0,
        lease_seconds: float = 30.0,
        watchers: Watchers | None = None,
        deliveries: Deliveries | None = None,
        variables: Mapping[str, str] | None = None,
    ) -> None:
        self.runs, self.folder, self.poll_seconds = runs, folder, poll_seconds
        self.watchers, self.deliveries = watchers, deliveries
        self.variables = dict(variables or {})  # given to every run (e.g. OPS, the operations folder)
        self.environment = dict(environment if environment is not None else os.environ)
        # tasks find this installation's `cubeport` first (a venv's scripts sit beside its python)
        bin_folder = str(Path(sys.executable).parent)
        self.environment["PATH"] = os.pathsep.join([bin_folder, self.environment.get("PATH", os.defpath)])
        owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.lease = Lease(runs.db, LEASE, owner, lease_seconds)
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    # -- the loop --------------------------------------------------------------------------------------
    def run(self, stop: threading.Event | None = None) -> None:
        stop = stop or threading.Event()
        try:
            while not stop.is_set():
                try:
                    self.tick()
                except Exception:  # one bad round (a database hiccup) must not end a 24/7 service
                    log.exception("ops runner: round failed; trying again")
                stop.wait(self.poll_seconds)
        finally:
            self.lease.release()

    def tick(self) -> bool:
        """One round; False when another runner holds the lease (then nothing is done)."""
        if not self.lease.hold():
            return False
        self._reap()
        when = now()
        if self.watchers is not None:
            for name in self.watchers.due(when):
                try:
                    for file in self.watchers.look(name):
                        log.info("watcher %s: %s delivered", name, file)
                except CubeportError as exc:  # e.g. its suite was removed: the other watchers go on
                    log.error("watcher %s: %s", name, exc)
        self._schedule(when)
        for run in self.runs.runs(unfinished=True, limit=10_000):
            self.advance(run)
        if self.deliveries is not None:
            for delivery in self.deliveries.push_due(when):
                log.info("delivery %s to %s: %s", delivery.product, delivery.target, delivery.state)
        return True

    # -- schedules -------------------------------------------------------------------------------------
    def _schedule(self, when: dt.datetime) -> None:
        for name, due in self.runs.due_suites(when):
            spec = self.runs.suite(name).spec
            if spec.every is None and spec.cron is None:
                continue
            if due is not None:
                self.runs.start(name, cause=f"schedule {due.isoformat(timespec='seconds')}")
            self.runs.plan_next(name, next_time(spec.every, spec.cron, when))

    # -- one run ---------------------------------------------------------------------------------------
    def advance(self, run: Run) -> None:
        suite = self.runs.suite(run.suite)
        tasks = self.runs.tasks(run.id)
        for task in tasks:
            if task.state in BUSY:
                self._check(run, suite, task)
        tasks = self.runs.tasks(run.id)
        states = self.runs.state_of(run.id)
        used = _tokens_used(suite, [t for t in tasks if t.state in BUSY])
        for task in tasks:
            if task.state != NodeState.queued:
                continue
            limits = _limits_of(suite, task.path)
            ready = task.run_now or (
                not task.suspended
                and _triggers_hold(suite, task.path, states)
                and all(used.get(name, 0) < suite.spec.limits[name] for name in limits)
            )
            if ready:
                self._submit(run, suite, task)
                for name in limits:
                    used[name] = used.get(name, 0) + 1
        overall = self.runs.tree(run.id).state
        if overall != run.state or overall == NodeState.complete:
            self.runs.finish(run.id, overall)

    def _submit(self, run: Run, suite: Suite, task: TaskRecord) -> None:
        folder = self.run_folder(run)
        work = folder / "work"
        work.mkdir(parents=True, exist_ok=True)
        try_no = task.try_no + 1
        base = self.output(run, task.path, try_no)
        try:
            command = suite.command(
                task.path, {**self.variables, **run.variables, "RUN": run.id, "WORK": str(work)}
            )
        except InputError as exc:
            self.runs.ended(run.id, task.path, NodeState.aborted, str(exc))
            return
        status = _status_file(base)
        for stale in (status, Path(f"{status}.init")):  # a requeue starts the tries again at 1
            stale.unlink(missing_ok=True)
        with open(base, "wb") as output:
            child = subprocess.Popen(
                [sys.executable, "-m", "cubeport.ops.job", str(status), "--", *command],
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=work,
                env=self.environment,
                start_new_session=True,  # its own process group: a kill or timeout stops all of it
            )
        self._children[child.pid] = child
        self.runs.submitted(run.id, task.path, child.pid, try_no)
        log.info("%s %s: submitted (try %d, pid %d)", run.id[:8], task.path, try_no, child.pid)

    def _check(self, run: Run, suite: Suite, task: TaskRecord) -> None:
        """A submitted or active task: ended (status file), still running, timed out, or lost."""
        spec = suite.nodes[task.path].spec
        assert isinstance(spec, TaskSpec)
        base = self.output(run, task.path, task.try_no)
        status = _status_file(base)
        if status.exists():
            code = int(status.read_text().strip() or "1")
            if code == 0:
                self.runs.ended(run.id, task.path, NodeState.complete)
            else:
                self._aborted(run, spec, task, f"exit code {code}: {_last_line(base)}")
            return
        if task.pid is not None and _alive(task.pid, status):
            if task.state == NodeState.submitted and Path(f"{status}.init").exists():
                self.runs.active(run.id, task.path)
            if spec.timeout and task.started and (now() - task.started).total_seconds() > spec.timeout:
                _kill_group(task.pid)
                self._aborted(run, spec, task, f"timed out after {spec.timeout:g} s and was killed")
            return
        self._aborted(run, spec, task, "its process ended without an exit status (runner or host restarted?)")

    def _aborted(self, run: Run, spec: TaskSpec, task: TaskRecord, reason: str) -> None:
        if task.try_no < spec.tries:
            self.runs.requeued(run.id, task.path, f"try {task.try_no} of {spec.tries} aborted: {reason}")
        else:
            self.runs.ended(run.id, task.path, NodeState.aborted, reason)
        log.warning("%s %s: aborted (try %d): %s", run.id[:8], task.path, task.try_no, reason)

    def _reap(self) -> None:
        for pid, child in list(self._children.items()):
            if child.poll() is not None:
                del self._children[pid]

    def run_folder(self, run: Run) -> Path:
        return self.folder / run.suite / run.id

    def output(self, run: Run, path: str, try_no: int) -> Path:
        """The output file of a task's try (what `ops log` shows)."""
        return self.run_folder(run) / f"{path.rsplit('/', 1)[-1]}.{try_no}"


def operate(runs: Runs, run_id: str, path: str, action: Action) -> None:
    """An operator's action on a node; `kill` stops the processes of its active tasks (the runner and the
    server share the host) and marks them aborted, with no further tries."""
    for task in runs.act(run_id, path, action):
        record = next(t for t in runs.tasks(run_id) if t.path == task)
        if record.pid is not None:
            _kill_group(record.pid)
        runs.ended(run_id, task, NodeState.aborted, "killed by an operator")


def next_time(every: float | None, cron: str | None, after: dt.datetime) -> dt.datetime | None:
    if every is not None:
        return after + dt.timedelta(seconds=every)
    if cron is not None:
        result: dt.datetime = croniter(cron, after).get_next(dt.datetime)
        return result
    return None


def _status_file(base: Path) -> Path:
    return base.with_name(base.name + ".status")


def _last_line(output: Path) -> str:
    """The task's last line of output, the likeliest reason it failed."""
    with contextlib.suppress(OSError), open(output, "rb") as f:
        f.seek(max(0, output.stat().st_size - 4096))
        lines = [line.strip() for line in f.read().decode(errors="replace").splitlines() if line.strip()]
        return lines[-1][:500] if lines else "(no output)"
    return "(no output)"


def _alive(pid: int, status: Path) -> bool:
    """Whether `pid` is still the wrapper of this task (a reused pid of another program does not count)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return str(status).encode() in command


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _limits_of(suite: Suite, path: str) -> list[str]:
    nodes = [suite.nodes[path], *suite.ancestors(path)]
    return [n.spec.inlimit for n in nodes if n.spec.inlimit is not None]


def _tokens_used(suite: Suite, busy: list[TaskRecord]) -> dict[str, int]:
    used: dict[str, int] = {}
    for task in busy:
        for name in _limits_of(suite, task.path):
            used[name] = used.get(name, 0) + 1
    return used


def _triggers_hold(suite: Suite, path: str, states: Mapping[str, NodeState]) -> bool:
    """The task's trigger and those of every family above it (a family's trigger holds its children)."""
    for node in [suite.nodes[path], *suite.ancestors(path)]:
        text = node.spec.trigger
        if text is None:
            continue
        at = node.path
        if not parse_trigger(text).evaluate(lambda ref: states[suite.resolve(ref, at)]):  # noqa: B023
            return False
    return True
