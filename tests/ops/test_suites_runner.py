"""Suites run by the built-in runner: triggers, limits, tries, timeouts, operator actions, ecFlow's family
states, and a runner killed with -9 whose work goes on after a restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from cubeport.db import Database
from cubeport.errors import ConflictError, InputError
from cubeport.ops.runner import Runner, operate
from cubeport.ops.runs import Runs
from cubeport.ops.suites import NodeState, load_suite, most_significant, parse_trigger

PY = sys.executable


def suite_yaml(**extra: str) -> str:
    text = f"""
    suite: demo
    variables: {{PY: "{PY}"}}
    limits: {{one: 1}}
    nodes:
      - task: first
        command: "%PY% -c 'import sys; open(\\"first.txt\\", \\"w\\").write(sys.argv[1])' %WORD%"
      - family: later
        trigger: first == complete
        inlimit: one
        nodes:
          - task: a
            command: "%PY% -c 'import time; time.sleep(0.3)'"
          - task: b
            command: "%PY% -c 'import time; time.sleep(0.3)'"
      - task: last
        trigger: later == complete and first eq complete
        command: "%PY% -c 'print(\\"done\\")'"
    """
    return textwrap.dedent(text)


@pytest.fixture()
def runs(tmp_path) -> Runs:
    db = Database(f"sqlite:///{tmp_path / 'ops.db'}")
    db.upgrade()
    return Runs(db)


def until(runner: Runner, run_id: str, done, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runner.tick()
        tree = runner.runs.tree(run_id)
        if done(tree):
            return tree
        time.sleep(0.1)
    raise AssertionError(f"run did not get there: {tree.to_dict()}")


def states(tree) -> dict[str, str]:
    found = {}

    def visit(view):
        found[view.path] = view.state.value
        for child in view.children:
            visit(child)

    visit(tree)
    return found


def test_triggers_limits_and_variables(runs, tmp_path):
    runs.save_suite(suite_yaml())
    run = runs.start("demo", {"WORD": "hello world"})
    runner = Runner(runs, tmp_path / "ops", poll_seconds=0.1)
    overlaps = []

    def done(tree):
        found = states(tree)
        overlaps.append(found["/demo/later/a"] == "active" and found["/demo/later/b"] == "active")
        if found["/demo/last"] in ("queued",) and found["/demo/later"] != "complete":
            assert found["/demo/first"] in ("queued", "submitted", "active", "complete")
        return tree.state == NodeState.complete

    tree = until(runner, run.id, done)
    assert not any(overlaps)  # the limit of one token: a and b never ran together
    work = runner.run_folder(run) / "work"
    assert (work / "first.txt").read_text() == "hello world"  # a value with a space stays one word
    found = states(tree)
    assert set(found.values()) == {"complete"}
    views = {c.path: c for c in tree.children}
    assert views["/demo/later"].started >= views["/demo/first"].ended  # the trigger held the family back
    assert views["/demo/last"].started >= views["/demo/later"].ended
    assert runs.run(run.id).finished is not None
    assert (runner.run_folder(run) / "last.1").read_text().strip() == "done"


def test_tries_timeouts_and_operator_actions(runs, tmp_path):
    flaky = tmp_path / "attempts"
    runs.save_suite(
        textwrap.dedent(f"""
        suite: ops
        nodes:
          - task: flaky
            tries: 3
            command: "{PY} -c 'import pathlib, sys; p = pathlib.Path(\\"{flaky}\\"); n = len(p.read_text()) if p.exists() else 0; p.write_text(\\"x\\" * (n + 1)); sys.exit(0 if n >= 2 else 4)'"
          - task: hang
            timeout: 1
            command: "{PY} -c 'import time; time.sleep(60)'"
          - task: after
            trigger: hang == complete
            command: "{PY} -c 'pass'"
        """)
    )
    run = runs.start("ops")
    runner = Runner(runs, tmp_path / "ops", poll_seconds=0.1)
    tree = until(
        runner,
        run.id,
        lambda t: states(t)["/ops/flaky"] == "complete" and states(t)["/ops/hang"] == "aborted",
    )
    views = {c.path: c for c in tree.children}
    assert views["/ops/flaky"].try_no == 3  # aborted twice, then complete on the third try
    assert "timed out after 1 s" in views["/ops/hang"].reason
    assert tree.state == NodeState.aborted  # a family (here the suite) shows its most significant state
    assert views["/ops/after"].state == NodeState.queued  # its trigger never held

    # set complete by hand: the trigger holds, `after` runs, the run completes
    operate(runs, run.id, "/ops/hang", "complete")
    tree = until(runner, run.id, lambda t: t.state == NodeState.complete)

    # rerun keeps the try count; requeue resets it; suspend holds a queued task until resumed
    operate(runs, run.id, "/ops/after", "suspend")
    operate(runs, run.id, "/ops/after", "requeue")
    for _ in range(5):
        runner.tick()
        time.sleep(0.05)
    after = {c.path: c for c in runs.tree(run.id).children}["/ops/after"]
    assert after.state == NodeState.queued and after.suspended and after.try_no == 0
    operate(runs, run.id, "/ops/after", "run")  # run now: whatever the suspension
    tree = until(runner, run.id, lambda t: t.state == NodeState.complete)
    assert {c.path: c for c in tree.children}["/ops/after"].try_no == 1
    operate(runs, run.id, "/ops/after", "resume")
    operate(runs, run.id, "/ops/after", "rerun")
    tree = until(runner, run.id, lambda t: t.state == NodeState.complete)
    assert {c.path: c for c in tree.children}["/ops/after"].try_no == 2

    # kill an active task: aborted at once, no further tries
    operate(runs, run.id, "/ops/hang", "requeue")
    until(runner, run.id, lambda t: states(t)["/ops/hang"] == "active")
    with pytest.raises(ConflictError, match="kill them first"):
        operate(runs, run.id, "/ops", "requeue")
    operate(runs, run.id, "/ops/hang", "kill")
    hang = {c.path: c for c in runs.tree(run.id).children}["/ops/hang"]
    assert hang.state == NodeState.aborted and hang.reason == "killed by an operator"


RUNNER = """
import sys, pathlib
from cubeport.db import Database
from cubeport.ops.runner import Runner
from cubeport.ops.runs import Runs
runs = Runs(Database(sys.argv[1]))
Runner(runs, pathlib.Path(sys.argv[2]), poll_seconds=0.1, lease_seconds=float(sys.argv[3])).run()
"""


def test_a_runner_killed_with_9_goes_on_after_a_restart_and_one_runner_acts(runs, tmp_path):
    marker = tmp_path / "slow-done"
    runs.save_suite(
        textwrap.dedent(f"""
        suite: crash
        nodes:
          - task: slow
            command: "{PY} -c 'import time, pathlib; time.sleep(2); pathlib.Path(\\"{marker}\\").write_text(\\"x\\")'"
          - task: next
            trigger: slow == complete
            command: "{PY} -c 'pass'"
        """)
    )
    run = runs.start("crash")
    url = runs.db.url
    start = lambda lease: subprocess.Popen([PY, "-c", RUNNER, url, str(tmp_path / "ops"), str(lease)])  # noqa: E731
    first = start(1.0)
    second = start(1.0)  # started at once: only one of them may act
    deadline = time.monotonic() + 30
    while runs.tree(run.id).children[0].state != NodeState.active and time.monotonic() < deadline:
        time.sleep(0.05)
    slow = runs.tree(run.id).children[0]
    assert slow.state == NodeState.active and slow.try_no == 1
    os.kill(first.pid, signal.SIGKILL)
    os.kill(second.pid, signal.SIGKILL)
    first.wait(), second.wait()
    third = start(1.0)  # takes the lease over once the dead one's expires; re-checks the active task
    try:
        deadline = time.monotonic() + 30
        while runs.run(run.id).state != NodeState.complete and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        third.terminate()
        third.wait()
    tree = runs.tree(run.id)
    assert tree.state == NodeState.complete and marker.exists()
    assert [c.try_no for c in tree.children] == [1, 1]  # the slow task was not run twice


def test_definitions_are_checked():
    with pytest.raises(InputError, match="not a node of the suite"):
        load_suite("suite: s\nnodes:\n  - task: a\n    command: x\n    trigger: b == complete\n")
    with pytest.raises(InputError, match="inlimit"):
        load_suite("suite: s\nnodes:\n  - task: a\n    command: x\n    inlimit: nope\n")
    with pytest.raises(InputError, match="not a state"):
        parse_trigger("a == done")
    with pytest.raises(InputError, match="same name"):
        load_suite("suite: s\nnodes:\n  - {task: a, command: x}\n  - {task: a, command: y}\n")
    with pytest.raises(InputError, match="nodes"):
        load_suite("suite: s\nnodes: []\n")
    with pytest.raises(InputError, match="not set"):
        load_suite("suite: s\nnodes:\n  - {task: a, command: '%NOPE%'}\n").command("/s/a")
    assert most_significant([NodeState.complete, NodeState.queued, NodeState.active]) == NodeState.active
    assert most_significant([NodeState.complete, NodeState.aborted, NodeState.active]) == NodeState.aborted
    trigger = parse_trigger("(a == complete or b eq aborted) and not c != queued")
    assert trigger.evaluate(
        {"a": NodeState.queued, "b": NodeState.aborted, "c": NodeState.queued}.__getitem__
    )


def test_schedules_start_runs(runs, tmp_path):
    import datetime as dt

    runs.save_suite(f"suite: tick\nevery: 900\nnodes:\n  - {{task: a, command: '{PY} -c pass'}}\n")
    runs.save_suite(f"suite: cron\ncron: '*/15 * * * *'\nnodes:\n  - {{task: a, command: '{PY} -c pass'}}\n")
    runs.save_suite(f"suite: manual\nnodes:\n  - {{task: a, command: '{PY} -c pass'}}\n")
    runner = Runner(runs, tmp_path / "ops")
    start = dt.datetime(2026, 2, 14, 4, 50, tzinfo=dt.UTC)
    runner._schedule(start)  # the first round plans, it does not run
    assert runs.runs() == []
    runner._schedule(start + dt.timedelta(minutes=10))
    assert [r.suite for r in runs.runs()] == ["cron"]  # 05:00, the cron's next quarter
    runner._schedule(start + dt.timedelta(minutes=16))
    assert sorted(r.suite for r in runs.runs()) == ["cron", "tick"]  # 04:50 + 900 s
    runner._schedule(start + dt.timedelta(minutes=17))  # nothing is due again yet
    assert len(runs.runs()) == 2 and "manual" not in {r.suite for r in runs.runs()}
    with pytest.raises(InputError, match="not both"):
        load_suite("suite: s\nevery: 900\ncron: '* * * * *'\nnodes:\n  - {task: a, command: x}\n")
    with pytest.raises(InputError, match="cron"):
        load_suite("suite: s\ncron: 'often'\nnodes:\n  - {task: a, command: x}\n")
