"""The viewer's Jobs panel (web/src/jobs.ts) in headless Chromium against a real server that runs jobs in its
worker processes: jobs submitted through the API with the user's key show up for that user signed in through
the viewer, poll until they end, show their steps and log; a successful cube output opens on the map; a long
job is dismissed from the panel; polling stops when the panel closes. Screenshots go to test-artifacts/."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
import test_viewer
from helpers import add_users, context_with
from playwright.sync_api import Page
from services import AppServer
from test_viewer import ARTIFACTS, PASSWORD, data_pixels, sign_in

from cubeport.api.app import create_app
from cubeport.config import load_settings
from cubeport.context import Context
from cubeport.web import asset

pytestmark = pytest.mark.slow
# test_viewer's fixtures: one Chromium for the module, and pages that fail a test on a page error or a 5xx
browser = test_viewer.browser
page = test_viewer.page

# A user process that naps until it is dismissed (progress reports are where a job learns of its dismissal).
NAP = '''
import time

from cubeport.processes import JobContext, process


@process("nap", title="Nap", keywords=["test"])
def nap(job: JobContext, seconds: float = 60.0) -> dict[str, float]:
    """Sleep in steps of 0.1 s, reporting progress after each."""
    job.log(f"napping {seconds} s")
    start = time.monotonic()
    while (slept := time.monotonic() - start) < seconds:
        time.sleep(0.1)
        job.progress(min(1.0, slept / seconds))
    return {"slept": seconds}
'''


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, data: Path) -> Iterator[tuple[str, str]]:
    """A server with the SST sample and the nap process; mia signs in with a password, the API with her key."""
    if asset("index.html") is None:
        pytest.fail("the viewer is not built: run `make web` (`make test` does)")
    root = tmp_path_factory.mktemp("viewer-jobs")
    folder = tmp_path_factory.mktemp("viewer-jobs-processes")
    (folder / "nap.py").write_text(NAP)
    context_with(root, data, {"sst": "sst"}, variables=["analysed_sst"]).close()
    context = Context(load_settings(data_root=str(root), processing={"user_processes": str(folder)}))
    add_users(context)
    context.auth.directory.update_user("mia", password=PASSWORD)
    _, key = context.auth.keys.create("mia")
    server = AppServer(create_app(context))
    yield server.url, key
    server.stop()
    context.close()


@pytest.fixture(scope="module")
def cubeport_url(server: tuple[str, str]) -> str:
    """The server that test_viewer's `page` fixture is checked against (its name there)."""
    return server[0]


def submit(server: tuple[str, str], process: str, inputs: dict[str, Any]) -> str:
    url, key = server
    response = httpx.post(
        f"{url}/processes/{process}/execution",
        json={"inputs": inputs},
        headers={"X-API-Key": key, "Prefer": "respond-async"},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["jobID"])


def job_status(server: tuple[str, str], job: str) -> str:
    url, key = server
    return str(httpx.get(f"{url}/jobs/{job}", headers={"X-API-Key": key}).json()["status"])


def row(job: str) -> str:
    return f"#jobs tr[data-job='{job}']"


def test_a_job_runs_shows_its_log_and_opens_on_the_map(page: Page, server: tuple[str, str]) -> None:
    url = server[0]
    sign_in(page, url)
    job = submit(server, "temporal-aggregate", {"cube": "sst", "period": "month", "method": "mean"})
    page.click("#jobs-toggle")
    page.wait_for_selector(row(job))
    assert page.locator("#jobs tbody tr").first.get_attribute("data-job") == job  # newest first
    assert page.locator(f"{row(job)} td").first.inner_text() == "temporal-aggregate"
    page.wait_for_selector(f"{row(job)}[data-status=successful]", timeout=40_000)  # the panel polls
    page.wait_for_selector("#jobs[data-polling=false]")  # nothing waits or runs: no more polling
    assert page.locator(f"{row(job)} progress").evaluate("p => p.value") == 100

    page.click(row(job))
    page.wait_for_selector(f".job-detail[data-job='{job}'] .job-open")
    steps = page.locator(".job-steps li")
    assert [steps.nth(i).get_attribute("data-step") for i in range(steps.count())] == [
        "scheduling",
        "fetching",
        "processing",
        "ingesting",
    ]
    assert {steps.nth(i).get_attribute("data-status") for i in range(steps.count())} == {"successful"}
    log = page.locator(".job-log").inner_text()
    assert "3 steps in 1 months, mean" in log  # the process's own line, as GET /jobs/{id}/logs has it
    assert page.locator(".job-dismiss").count() == 0  # an ended job cannot be dismissed
    page.screenshot(path=str(ARTIFACTS / "viewer-jobs.png"))

    cube = f"temporal-aggregate-{job[:8]}"
    assert page.locator(f"input[data-layer='{cube}.analysed_sst']").count() == 0  # new to the viewer
    page.click(".job-open")
    page.wait_for_function(f"() => decodeURIComponent(location.hash).includes('l={cube}/analysed_sst~')")
    assert page.is_checked(f"input[data-layer='{cube}.analysed_sst']")  # the catalogue read again
    assert page.locator(".layer").first.get_attribute("data-layer") == f"{cube}.analysed_sst"
    page.click("#jobs-close")
    page.wait_for_timeout(1500)  # the tiles of the output cube load and draw
    assert data_pixels(page) > 1000
    page.screenshot(path=str(ARTIFACTS / "viewer-jobs-output.png"))
    assert f"l={cube}/analysed_sst" in unquote(page.url)


def test_a_running_job_is_dismissed_and_a_closed_panel_stops_polling(
    page: Page, server: tuple[str, str]
) -> None:
    url = server[0]
    sign_in(page, url)
    job = submit(server, "nap", {"seconds": 60})
    asked: list[float] = []
    page.on("request", lambda r: asked.append(time.monotonic()) if r.url.startswith(f"{url}/jobs") else None)
    page.click("#jobs-toggle")
    page.wait_for_selector(f"{row(job)}[data-status=running]", timeout=20_000)
    page.wait_for_selector("#jobs[data-polling=true]")
    page.click("#jobs-close")
    closed = time.monotonic()
    page.wait_for_timeout(2500)
    assert not [t for t in asked if t > closed + 0.5], "the closed panel still polls"

    page.click("#jobs-toggle")
    page.click(row(job))
    page.wait_for_selector(".job-detail .job-dismiss")
    assert "napping 60" in page.locator(".job-log").inner_text()
    page.click(".job-dismiss")
    page.wait_for_selector(f"{row(job)}[data-status=dismissed]", timeout=15_000)
    page.wait_for_selector("#jobs[data-polling=false]")
    assert page.locator(".job-dismiss").count() == 0
    assert job_status(server, job) == "dismissed"


def test_signed_out_the_panel_asks_to_sign_in(page: Page, cubeport_url: str) -> None:
    page.goto(cubeport_url + "/")
    page.wait_for_selector("body[data-ready=true]")
    page.click("#jobs-toggle")
    hint = page.locator("#jobs .jobs-body .hint")
    hint.wait_for()
    assert "Sign in" in hint.inner_text()
    assert hint.locator("a").get_attribute("href") == "auth/login?next=/"
