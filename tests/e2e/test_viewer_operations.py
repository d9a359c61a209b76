"""The viewer's Operations panel (web/src/operations.ts) in headless Chromium against a real server whose ops
runner runs in a thread of the test: an operator sees a suite's run as a tree coloured as ecFlow colours
states (the failed task red with its reason), only the actions its state allows, a task's output (a running
task's growing), the last 24 h timeline, a watcher's error and the deliveries; sets the failed task complete
and kills the task that then runs, both through the panel; polling stops when the panel closes. A viewer
outside the `operators` group gets no button, and the server refuses her too. Screenshots go to
test-artifacts/."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import test_viewer
from helpers import add_users, context_with
from playwright.sync_api import Page
from services import AppServer
from test_viewer import ARTIFACTS, PASSWORD

from cubeport.api.app import create_app
from cubeport.ops.runner import operate
from cubeport.web import asset

pytestmark = pytest.mark.slow
# test_viewer's fixtures: one Chromium for the module, and pages that fail a test on a page error or a 5xx
browser = test_viewer.browser
page = test_viewer.page

PY = sys.executable
SUITE = f"""
suite: hello
title: a small suite for the panel
nodes:
  - task: greet
    command: "{PY} -c 'print(\\"hello Baltic\\")'"
  - family: scene
    trigger: greet == complete
    nodes:
      - task: fail
        command: "{PY} -c 'import sys; print(\\"no scene today\\"); sys.exit(3)'"
      - task: nap
        trigger: fail == complete
        command: "{PY} -c 'import time; print(\\"napping\\", flush=True); time.sleep(120)'"
"""
RED, YELLOW, GREEN = "rgb(255, 0, 0)", "rgb(255, 255, 0)", "rgb(0, 255, 0)"
PRODUCT = "rasters/nt_20201024_f18_nrt_s.tif"  # a real sea-ice concentration raster, delivered as a product


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, data: Path) -> Iterator[dict[str, Any]]:
    """A server with the suite `hello` run once (its `fail` task aborted), a watcher that cannot reach its
    server, a product delivered to a folder and not to a closed port; the ops runner goes on in a thread."""
    if asset("index.html") is None:
        pytest.fail("the viewer is not built: run `make web` (`make test` does)")
    root = tmp_path_factory.mktemp("viewer-ops")
    context = context_with(root, data, {})
    add_users(context, (("olli", "viewer", "operators"), ("mia", "viewer", "syke")))
    for name in ("olli", "mia"):
        context.auth.directory.update_user(name, password=PASSWORD)
    keys = {name: {"X-API-Key": context.auth.keys.create(name)[1]} for name in ("olli", "mia")}
    app = AppServer(create_app(context))
    url = app.url

    put = httpx.put(
        f"{url}/ops/suites/hello",
        content=SUITE,
        headers={**keys["olli"], "Content-Type": "application/yaml"},
    )
    assert put.status_code == 200, put.text
    run = httpx.post(f"{url}/ops/suites/hello/runs", json={}, headers=keys["olli"]).json()["id"]
    watcher = {"name": "iceye", "url": "sftp://127.0.0.1:1/deliveries", "interval_seconds": 3600}
    assert httpx.post(f"{url}/ops/watchers", json=watcher, headers=keys["olli"]).status_code == 201
    context.ops.watchers.look("iceye")  # refused: the watcher's error shows
    portal = tmp_path_factory.mktemp("portal")
    for name, target in (("portal", str(portal)), ("closed", "ftp://127.0.0.1:1/charts")):
        body = {"name": name, "url": target, "products": ["nt_*.tif"]}
        assert httpx.post(f"{url}/ops/targets", json=body, headers=keys["olli"]).status_code == 201
    context.ops.deliveries.offer([data / PRODUCT])

    runner = context.ops.runner()
    runner.poll_seconds = 0.2
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_for(lambda: node(url, keys, run, "/hello/scene/fail")["state"] == "aborted", 30)
        assert (portal / Path(PRODUCT).name).is_file()  # delivered in a round of the runner
        yield {"url": url, "keys": keys, "run": run, "context": context}
    finally:
        stop.set()
        thread.join(10)
        operate(context.ops.runs, run, "/hello", "kill")  # a task a failed test left running
        app.stop()
        context.close()


@pytest.fixture(scope="module")
def cubeport_url(server: dict[str, Any]) -> str:
    """The server that test_viewer's `page` fixture is checked against (its name there)."""
    return str(server["url"])


def wait_for(condition: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def node(url: str, keys: dict[str, dict[str, str]], run: str, path: str) -> dict[str, Any]:
    """A node of the run, as the API has it."""
    found: list[dict[str, Any]] = [httpx.get(f"{url}/ops/runs/{run}", headers=keys["olli"]).json()["tree"]]
    while found:
        item = found.pop()
        if item["path"] == path:
            return item
        found.extend(item["children"])
    raise AssertionError(f"{path} not in run {run}")


def sign_in_as(page: Page, url: str, name: str) -> None:
    page.goto(url + "/")
    page.wait_for_selector("body[data-ready=true]")
    page.click("#sign-in")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("form [type=submit]")
    page.wait_for_selector("body[data-ready=true]")
    page.wait_for_selector("#ops-toggle[data-checked=true]", state="attached")


def row(path: str, state: str | None = None) -> str:
    return f"#operations .ops-tree tr[data-path='{path}']" + (f"[data-state={state}]" if state else "")


def colour(page: Page, selector: str, what: str = "backgroundColor") -> str:
    return str(page.locator(selector).first.evaluate(f"e => getComputedStyle(e).{what}"))


def actions(page: Page) -> list[str]:
    buttons = page.locator("#operations .ops-tools .ops-action")
    return [str(buttons.nth(i).get_attribute("data-action")) for i in range(buttons.count())]


def test_an_operator_sees_the_run_and_acts_on_it(page: Page, server: dict[str, Any]) -> None:
    url, run = server["url"], server["run"]
    fail, nap = "/hello/scene/fail", "/hello/scene/nap"
    sign_in_as(page, url, "olli")
    asked: list[float] = []
    page.on("request", lambda r: asked.append(time.monotonic()) if "/ops/status" in r.url else None)
    page.click("#ops-toggle")
    page.wait_for_selector(row(fail, "aborted"))
    page.wait_for_selector("#operations[data-polling=true]")

    # the tree: indented, coloured by state, the family as its most significant child, the reason in red
    assert colour(page, f"{row(fail)} .badge") == RED
    assert colour(page, f"{row('/hello/greet', 'complete')} .badge") == YELLOW
    assert page.locator(row("/hello/scene", "aborted")).count() == 1
    assert page.locator(row(nap, "queued")).count() == 1
    reason = page.locator(f"{row(fail)} .ops-reason")
    assert reason.inner_text() == "exit code 3: no scene today"
    assert "error" in str(reason.get_attribute("class"))
    assert page.locator(f"{row(fail)} td").nth(2).inner_text() == "1/1"  # try of tries
    indent = [
        int(colour(page, f"{row(p)} .ops-name", "paddingLeft").removesuffix("px"))
        for p in ("/hello", "/hello/scene", fail)
    ]
    assert indent[0] < indent[1] < indent[2]

    # the watcher that cannot reach its server, the runner, the deliveries (one done, one failing)
    assert (
        page.locator("#operations .ops-watchers tr[data-watcher=iceye][data-problem=true] td.error").count()
        == 1
    )
    assert page.locator("#operations .ops-runner[data-active=true]").count() == 1
    assert (
        page.locator("#operations .ops-deliveries tr[data-target=portal][data-state=delivered]").count() == 1
    )
    closed = page.locator("#operations .ops-deliveries tr[data-target=closed] td.error")
    assert closed.count() == 2 and closed.nth(1).inner_text()  # its state and its error, in red

    # the timeline: a bar per task try of the last 24 h, in its row, coloured by its state
    bars = page.locator("#operations svg.ops-timeline rect.bar")
    assert {bars.nth(i).get_attribute("data-path") for i in range(bars.count())} == {"/hello/greet", fail}
    assert colour(page, f"svg.ops-timeline rect.bar[data-path='{fail}']", "fill") == RED
    assert float(str(bars.first.get_attribute("width"))) >= 3
    page.screenshot(path=str(ARTIFACTS / "viewer-operations.png"))

    # a selected aborted task: no kill (nothing runs), its output; set complete through the panel
    page.click(row(fail))
    page.wait_for_selector(f"#operations .ops-tools[data-path='{fail}']")
    assert actions(page) == ["run", "rerun", "requeue", "complete", "suspend"]
    page.click("#operations .ops-tools .ops-output-show[data-try='1']")
    assert page.locator("#operations .ops-output").inner_text().strip() == "no scene today"
    page.click("#operations .ops-action[data-action=complete]")
    page.wait_for_selector(row(fail, "complete"))
    assert colour(page, f"{row(fail)} .badge") == YELLOW
    assert page.locator(f"{row(fail)} .ops-reason").inner_text() == "set complete by an operator"
    assert node(url, server["keys"], run, fail)["state"] == "complete"  # the server's state, not the page's

    # what waited for it runs (the runner thread; the panel polls): only kill or suspend; its output grows
    page.wait_for_selector(row(nap, "active"), timeout=15_000)
    assert colour(page, f"{row(nap)} .badge") == GREEN
    page.click(row(nap))
    page.wait_for_selector(f"#operations .ops-tools[data-path='{nap}']")
    assert actions(page) == ["kill", "suspend"]
    page.click("#operations .ops-tools .ops-output-show[data-try='1']")
    page.wait_for_function(
        "() => document.querySelector('#operations .ops-output')?.textContent.includes('napping')"
    )
    page.screenshot(path=str(ARTIFACTS / "viewer-operations-active.png"))
    page.click("#operations .ops-action[data-action=kill]")
    page.wait_for_selector(row(nap, "aborted"))
    assert page.locator(f"{row(nap)} .ops-reason").inner_text() == "killed by an operator"
    assert node(url, server["keys"], run, nap)["state"] == "aborted"

    page.click("#ops-close")
    closed_at = time.monotonic()
    page.wait_for_timeout(3500)  # longer than the panel's poll interval
    assert not [t for t in asked if t > closed_at + 0.5], "the closed panel still polls"
    assert page.locator("#operations").get_attribute("data-polling") == "false"


def test_a_viewer_outside_operators_sees_no_button(page: Page, server: dict[str, Any]) -> None:
    url = server["url"]
    sign_in_as(page, url, "mia")
    assert page.locator("#user").inner_text() == "mia"
    assert page.locator("#ops-toggle").is_hidden()
    assert page.request.get(f"{url}/ops/status").status == 403  # her session cookie: refused by the server
    assert httpx.get(f"{url}/ops/status", headers=server["keys"]["mia"]).status_code == 403
    page.click("#sign-out")  # signed out: no button either
    page.wait_for_selector("#sign-in")
    page.wait_for_selector("#ops-toggle[data-checked=true]", state="attached")
    assert page.locator("#ops-toggle").is_hidden()
