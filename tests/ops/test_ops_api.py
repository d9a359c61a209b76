"""Operations over HTTP: only admins and the `operators` group; secrets go in and never come back out;
a suite put, started, run and acted on; the status document; Prometheus metrics."""

from __future__ import annotations

import sys
import time

import pytest
from fastapi.testclient import TestClient
from helpers import add_users, context_with

from cubeport.ops.suites import NodeState

PY = sys.executable
SUITE = f"""
suite: hello
nodes:
  - task: greet
    command: "{PY} -c 'print(\\"hello %WHO%\\")'"
  - task: fail
    trigger: greet == complete
    command: "{PY} -c 'import sys; sys.exit(3)'"
"""


@pytest.fixture(scope="module")
def context(tmp_path_factory, data):
    context = context_with(tmp_path_factory.mktemp("ops-api"), data, {"sst": "sst"})
    add_users(context, (("olli", "viewer", "operators"), ("mia", "viewer", "syke"), ("ada", "admin", "fmi")))
    yield context
    context.close()


@pytest.fixture(scope="module")
def client(context):
    from cubeport.api.app import create_app

    with TestClient(create_app(context.settings), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="module")
def keys(context):
    return {name: {"X-API-Key": context.auth.create_key(name)[1]} for name in ("olli", "mia", "ada")}


def test_only_operators_and_admins(client, keys):
    assert client.get("/ops/status").status_code == 401
    refused = client.get("/ops/status", headers=keys["mia"])
    assert refused.status_code == 403 and "operators" in refused.json()["detail"]
    for who in ("olli", "ada"):
        status = client.get("/ops/status", headers=keys[who])
        assert status.status_code == 200
        assert {s["name"] for s in status.json()["suites"]} >= {"seaice"}  # the built-in suite


def test_secrets_go_in_and_never_come_out(client, keys, context, tmp_path):
    body = {
        "name": "iceye",
        "url": "sftp://127.0.0.1:1/deliveries",
        "include": "ICEYE_*.zip",
        "interval_seconds": 60,
        "credentials": {"username": "fmi", "password": "s3cr3t-pass"},
    }
    made = client.post("/ops/watchers", json=body, headers=keys["olli"])
    assert made.status_code == 201, made.text
    target = {
        "name": "ibnet",
        "url": str(tmp_path),
        "products": ["*.gpkg"],
        "credentials": {"password": "t0ken-x"},
    }
    assert client.post("/ops/targets", json=target, headers=keys["olli"]).status_code == 201
    for response in (
        made,
        client.get("/ops/watchers", headers=keys["olli"]),
        client.get("/ops/status", headers=keys["ada"]),
    ):
        assert "s3cr3t-pass" not in response.text and "t0ken-x" not in response.text
    assert made.json()["credentials"] == ["username", "password"]
    with context.db.engine.connect() as connection:  # sealed in the database too
        stored = connection.exec_driver_sql("select credentials from ops_watchers").scalar_one()
    assert stored and "s3cr3t" not in stored and "fmi" not in stored
    assert context.ops.watchers.sealer.unseal(stored).password == "s3cr3t-pass"

    # a look that cannot reach the server says so in the status and does not raise
    assert context.ops.watchers.look("iceye") == []
    watcher = client.get("/ops/watchers", headers=keys["olli"]).json()["watchers"][0]
    assert watcher["last_error"] and "s3cr3t" not in watcher["last_error"]
    assert client.post("/ops/watchers", json=body, headers=keys["olli"]).status_code == 409
    assert client.delete("/ops/watchers/iceye", headers=keys["olli"]).status_code == 204
    assert client.delete("/ops/watchers/iceye", headers=keys["olli"]).status_code == 404


def test_a_suite_put_started_acted_on_and_measured(client, keys, context):
    headers = {**keys["olli"], "Content-Type": "application/yaml"}
    put = client.put("/ops/suites/hello", content=SUITE, headers=headers)
    assert put.status_code == 200 and put.json()["tasks"] == ["/hello/greet", "/hello/fail"]
    wrong = client.put("/ops/suites/other", content=SUITE, headers=headers)
    assert wrong.status_code == 400 and "must be 'other'" in wrong.json()["detail"]
    bad = client.put("/ops/suites/hello", content="suite: hello\nnodes: 3\n", headers=headers)
    assert bad.status_code == 400

    run = client.post(
        "/ops/suites/hello/runs", json={"variables": {"WHO": "Baltic"}}, headers=keys["olli"]
    ).json()
    runner = context.ops.runner()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        runner.tick()
        tree = client.get(f"/ops/runs/{run['id']}", headers=keys["olli"]).json()["tree"]
        if tree["state"] == "aborted":
            break
        time.sleep(0.1)
    greet, fail = tree["children"]
    assert (greet["state"], fail["state"]) == ("complete", "aborted") and "exit code 3" in fail["reason"]
    output = client.get(
        f"/ops/runs/{run['id']}/output", params={"path": "/hello/greet"}, headers=keys["olli"]
    )
    assert output.text.strip() == "hello Baltic"

    done = client.post(
        f"/ops/runs/{run['id']}/actions",
        json={"path": "/hello/fail", "action": "complete"},
        headers=keys["olli"],
    )
    assert done.status_code == 200 and done.json()["state"] == NodeState.complete.value
    unknown = client.post(
        f"/ops/runs/{run['id']}/actions",
        json={"path": "/hello/nope", "action": "rerun"},
        headers=keys["olli"],
    )
    assert unknown.status_code == 404

    timeline = client.get("/ops/status", headers=keys["olli"]).json()["timeline"]
    assert {(t["path"], t["state"]) for t in timeline if t["run"] == run["id"]} == {
        ("/hello/greet", "complete"),
        ("/hello/fail", "complete"),
    }

    metrics = client.get("/ops/metrics", headers=keys["olli"])
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    assert 'cubeport_ops_task_runs_total{suite="hello"} 2.0' in metrics.text


def test_a_process_task_runs_as_the_users_job(client, keys, context):
    suite = """
suite: monthly
nodes:
  - task: aggregate
    process: temporal-aggregate
    inputs: {cube: "%CUBE%", period: month, method: max}
    user: ada
"""
    headers = {**keys["ada"], "Content-Type": "application/yaml"}
    assert client.put("/ops/suites/monthly", content=suite, headers=headers).status_code == 200
    run = context.ops.runs.start("monthly", {"CUBE": "sst"})
    runner = context.ops.runner()
    deadline = time.monotonic() + 120
    while context.ops.runs.run(run.id).state not in (NodeState.complete, NodeState.aborted):
        assert time.monotonic() < deadline, context.ops.runs.tree(run.id).to_dict()
        runner.tick()
        time.sleep(0.2)
    assert context.ops.runs.run(run.id).state == NodeState.complete, context.ops.output(
        run.id, "/monthly/aggregate"
    )
    jobs, _ = context.jobs.list(owner="ada")
    assert [j.process_id for j in jobs] == ["temporal-aggregate"] and jobs[0].status == "successful"
    assert jobs[0].inputs == {"cube": "sst", "period": "month", "method": "max"}
