"""`cubeport watch|suites|targets|ops` in-process: a folder watcher, a suite run by `ops run --once` rounds,
its tree and log, an operator action, a folder target, the status, and the export for ecFlow."""

from __future__ import annotations

import json
import sys
import time

from typer.testing import CliRunner

from cubeport.cli import app
from cubeport.errors import CubeportError

PY = sys.executable


def test_operations_from_the_terminal(tmp_path, monkeypatch):
    monkeypatch.setenv("CUBEPORT_DATA_ROOT", str(tmp_path / "root"))
    monkeypatch.setenv("PORTAL_TOKEN", "t0ken")
    inbox, portal = tmp_path / "inbox", tmp_path / "portal"
    inbox.mkdir()
    portal.mkdir()
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(app, list(args), prog_name="cubeport")
        assert result.exit_code == 0, (args, result.output, result.exception)
        return result.output

    def refused(*args: str) -> str:
        """The error `cubeport` would print in one line (`cli.main` maps it to exit code 2)."""
        result = runner.invoke(app, list(args), prog_name="cubeport")
        assert isinstance(result.exception, CubeportError), (args, result.output, result.exception)
        return str(result.exception)

    suite = tmp_path / "copy.yaml"
    suite.write_text(
        "suite: copy\nnodes:\n"
        "  - {task: fetch, command: '%CUBEPORT% watch fetch %WATCHER% %FILE% --size %SIZE% --to %WORK%/in'}\n"
        "  - {task: deliver, trigger: fetch == complete, command: '%CUBEPORT% ops deliver %WORK%/in'}\n"
    )
    assert "suite copy: 2 tasks" in run("suites", "add", str(suite))
    assert "every 1 s" in run("watch", "add", "box", str(inbox), "--suite", "copy", "--every", "1s")
    run("targets", "add", "portal", str(portal), "--products", "*.txt", "--password-env", "PORTAL_TOKEN")
    targets = json.loads(run("targets", "list", "--json"))
    assert targets == [
        {"name": "portal", "url": str(portal), "products": ["*.txt"], "credentials": ["password"]}
    ]
    assert "nope" in refused("targets", "add", "x", str(portal), "--products", "*", "--password-env", "nope")

    (inbox / "a.txt").write_text("hello")
    assert "box: nothing new" in run("watch", "run")  # first look: pending until the size holds
    assert "box: delivered a.txt" in run("watch", "run", "box")
    deadline = time.monotonic() + 60
    while "copy complete" not in (shown := run("suites", "show", "copy")):
        assert time.monotonic() < deadline, shown
        run("ops", "run", "--once")
    assert (portal / "a.txt").read_text() == "hello"
    tree = json.loads(run("suites", "show", "copy", "--json"))
    assert [c["state"] for c in tree["tree"]["children"]] == ["complete", "complete"]
    assert "fetched:" in run("suites", "log", tree["run"], "/copy/fetch")
    assert "requeue: /copy/deliver" in run("suites", "act", tree["run"], "/copy/deliver", "requeue")
    assert "unknown action" in refused("suites", "act", tree["run"], "/copy/deliver", "explode")
    status = json.loads(run("ops", "status", "--json"))
    assert status["watchers"][0]["last_file"] == "a.txt" and status["deliveries"][0]["state"] == "delivered"
    assert "box" in run("watch", "list") and "t0ken" not in run("ops", "status")
    assert "%WATCHER%" in refused("suites", "export-ecflow", "copy", str(tmp_path / "ecf"))
    given = ["--var", "WATCHER=box", "--var", "FILE=a.txt", "--var", "SIZE=5"]
    written = run("suites", "export-ecflow", "copy", str(tmp_path / "ecf"), *given)
    assert (tmp_path / "ecf" / "copy.def").is_file() and "--begin=copy" in written
    run("watch", "remove", "box")
    assert "not found" in refused("watch", "run", "box")
