"""The real xcube viewer (1.7, the built files shipped in the xcube-core 1.14.1 wheel, fetched by
`make test`) in headless Chromium against a Cubeport server: it lists the dataset, draws a tile layer and
charts a time series after a click on the map."""

import functools
import http.server
import io
import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from services import AppServer, free_port

from cubeport.api.app import create_app
from cubeport.config import load_settings
from cubeport.context import Context

VIEWER = Path(os.environ.get("CUBEPORT_XCUBE_VIEWER", Path(__file__).parent / "xcube-viewer"))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# as the machine's notes advise: no sandbox as root, and no background traffic to a network that is closed
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
    "--disable-background-networking",
    "--disable-component-update",
]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def viewer_url():
    if not (VIEWER / "index.html").exists():
        pytest.fail(
            f"the xcube viewer is not at {VIEWER}: run `make test` (it extracts it from the xcube-core wheel)"
        )
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", free_port()), functools.partial(_QuietHandler, directory=str(VIEWER))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    server.shutdown()


@pytest.fixture(scope="module")
def cubeport_url(tmp_path_factory, data):
    context = Context(load_settings(data_root=str(tmp_path_factory.mktemp("viewer"))))
    context.ingestion([str(data / "cubes/olci-north-sea-chl-5steps.zarr")], "olci", variables=["conc_chl"])
    context.catalogue.update("olci", title="OLCI North Sea chlorophyll")
    server = AppServer(create_app(context))
    yield server.url
    server.stop()
    context.close()


def test_the_xcube_viewer_shows_datasets_tiles_and_a_time_series(viewer_url, cubeport_url):
    from playwright.sync_api import sync_playwright

    tiles: list[bytes] = []
    series: list[dict] = []
    failures: list[str] = []

    def on_response(response) -> None:
        if not response.url.startswith(cubeport_url):
            return
        path = response.url[len(cubeport_url) :]
        if "/tiles/olci/conc_chl/" in path and response.status == 200:
            tiles.append(response.body())
        elif path.startswith("/timeseries/olci/conc_chl") and response.status == 200:
            series.append(response.json())
        elif response.status >= 400 and not path.startswith("/viewer/"):  # /viewer/* may 404 (compat notes)
            failures.append(f"{response.status} {path}")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.on("response", on_response)
            page.goto(f"{viewer_url}?serverUrl={cubeport_url}")
            page.get_by_role("button", name="Accept and continue").click()
            page.get_by_text("OLCI North Sea chlorophyll").first.wait_for(timeout=30_000)  # the dataset list
            deadline = time.monotonic() + 30
            while len(tiles) < 4 and time.monotonic() < deadline:
                page.wait_for_timeout(250)
            page.click("button[value=Point]")
            canvas = page.locator("canvas").first.bounding_box()
            page.mouse.click(canvas["x"] + canvas["width"] * 0.45, canvas["y"] + canvas["height"] * 0.55)
            page.locator(".recharts-surface").first.wait_for(timeout=30_000)  # the time-series chart
            page.wait_for_timeout(500)
            page.screenshot(path=str(Path(os.environ.get("CUBEPORT_ARTIFACTS", "/tmp")) / "xcube-viewer.png"))
        finally:
            browser.close()
    assert not failures, failures
    assert len(tiles) >= 4
    drawn = [np.asarray(Image.open(io.BytesIO(t)).convert("RGBA")) for t in tiles]
    assert all(d.shape == (256, 256, 4) for d in drawn) and any((d[..., 3] > 0).any() for d in drawn)
    assert series and len(series[0]["result"]) == 5 and {"time", "mean"} <= set(series[0]["result"][0])
