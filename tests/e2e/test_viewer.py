"""Cubeport's own viewer (web/, built by `make web`) in headless Chromium against a Cubeport server with two
real sample cubes: the catalogue by theme, tiles drawn on the data layer's canvas, the time slider asking for
tiles of the new time, a click charting a time series with one point per step, CSV export, permalinks.
Screenshots go to test-artifacts/."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from services import AppServer
from test_xcube_viewer import CHROMIUM, CHROMIUM_ARGS

from cubeport.api.app import create_app
from cubeport.config import load_settings
from cubeport.context import Context
from cubeport.features.importer import import_file
from cubeport.web import asset

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
OLCI_STEPS = 5
PASSWORD = "a long test password 7"  # a test account of a throwaway data root


@pytest.fixture(scope="module")
def cubeport_url(tmp_path_factory, data):
    if asset("index.html") is None:
        pytest.fail("the viewer is not built: run `make web` (`make test` does)")
    context = Context(load_settings(data_root=str(tmp_path_factory.mktemp("own-viewer"))))
    for cube_id, sample, variables in (
        ("olci", "olci-north-sea-chl-5steps.zarr", ["conc_chl"]),
        ("sst", "ostia-sst-baltic-3steps.zarr", ["analysed_sst"]),
    ):
        context.ingestion([str(data / "cubes" / sample)], cube_id, variables=variables)
    context.catalogue.update("olci", title="OLCI North Sea chlorophyll", themes=["Water quality/Chlorophyll"])
    context.catalogue.update("sst", title="OSTIA sea surface temperature", themes=["Ocean"])
    context.policy.set_access("cube", "sst", public=False, groups=["syke"])  # appears after signing in
    directory = context.auth.directory
    directory.create_user("mia", password=PASSWORD)
    directory.create_group("syke")
    directory.add_member("syke", "mia")
    server = AppServer(create_app(context))
    yield server.url
    server.stop()
    context.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, cubeport_url):
    page = browser.new_page(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    failures: list[str] = []
    page.on("pageerror", lambda error: failures.append(f"page error: {error}"))
    page.on("response", lambda r: r.status >= 500 and failures.append(f"{r.status} {r.url}"))
    yield page
    page.close()
    assert not failures, failures


def data_pixels(page, layer: str = "data-layer") -> int:
    """Non-transparent pixels on the canvases of the layers of a class (the data layers by default)."""
    return page.evaluate(
        """(layer) => [...document.querySelectorAll(`.${layer} canvas`)].reduce((sum, canvas) => {
        const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        let count = 0;
        for (let i = 3; i < data.length; i += 4) if (data[i] > 0) count++;
        return sum + count;
    }, 0)""",
        layer,
    )


def tile_times(requests: list[str]) -> set[str]:
    return {
        parse_qs(urlsplit(url).query)["time"][0]
        for url in requests
        if "/tiles/olci/conc_chl/" in url and "/legend" not in url
    }


def test_layers_tiles_time_and_series(page, cubeport_url):
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(cubeport_url + "/")
    page.wait_for_selector("body[data-ready=true]")
    catalogue = page.locator("#catalogue")
    assert catalogue.locator(".theme > summary", has_text="Water quality").count() == 1
    assert catalogue.locator(".theme .category > summary", has_text="Chlorophyll").count() == 1  # a category
    assert catalogue.locator("summary", has_text="Ocean").count() == 0  # its only cube is restricted

    page.check("input[data-layer='olci.conc_chl']")
    page.wait_for_function("() => document.querySelectorAll('.data-layer canvas').length > 0")
    page.wait_for_timeout(1500)  # the tiles load and draw
    page.screenshot(path=str(ARTIFACTS / "viewer-layer.png"))
    assert data_pixels(page) > 3000
    first = tile_times(requests)
    assert len(first) == 1 and page.locator("#time-label").inner_text()
    page.screenshot(path=str(ARTIFACTS / "viewer-layer.png"))

    page.click("#time-back")  # the step before: every tile asked for again at that time
    page.wait_for_timeout(1200)
    assert len(tile_times(requests) - first) == 1
    page.locator("#time-slider").fill("0")  # the slider to the first step
    page.wait_for_timeout(1200)
    assert len(tile_times(requests) - first) == 2
    assert data_pixels(page) > 3000

    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_selector("#chart-panel:not([hidden])")
    assert page.get_attribute("#chart", "data-points") == str(OLCI_STEPS)  # one point per time step
    series = [u for u in requests if "/timeseries/olci/conc_chl" in u]
    assert len(series) == 1
    with page.expect_download() as download:
        page.click("#chart-csv")
    rows = Path(download.value.path()).read_text().strip().splitlines()
    assert rows[0].startswith("time,") and len(rows) == 1 + OLCI_STEPS
    assert all(re.match(r"\d{4}-\d\d-\d\dT", row) for row in rows[1:])
    with page.expect_download() as download:
        page.click("#chart-png")
    assert Path(download.value.path()).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page.screenshot(path=str(ARTIFACTS / "viewer-series.png"))
    page.uncheck("input[data-layer='olci.conc_chl']")  # the last layer off: the map shows no data
    page.wait_for_timeout(500)
    assert data_pixels(page) == 0


def sign_in(page, url: str) -> None:
    page.goto(url + "/")
    page.wait_for_selector("body[data-ready=true]")
    page.click("#sign-in")
    page.fill("input[name=username]", "mia")
    page.fill("input[name=password]", PASSWORD)
    page.click("form [type=submit]")
    page.wait_for_selector("body[data-ready=true]")


def test_sign_in_shows_the_restricted_layer_and_sign_out_hides_it(page, cubeport_url):
    page.goto(cubeport_url + "/")
    page.wait_for_selector("body[data-ready=true]")
    assert page.locator("input[data-layer='sst.analysed_sst']").count() == 0
    assert page.locator("input[data-layer='olci.conc_chl']").count() == 1
    sign_in(page, cubeport_url)
    page.wait_for_selector("#user")
    assert page.locator("#user").inner_text() == "mia"
    assert page.locator("input[data-layer='sst.analysed_sst']").count() == 1
    page.check("input[data-layer='sst.analysed_sst']")
    page.wait_for_timeout(1500)
    assert data_pixels(page) > 1000  # its tiles come with the session cookie
    page.click("#sign-out")
    page.wait_for_selector("#sign-in")
    page.wait_for_selector("body[data-ready=true]")
    assert page.locator("input[data-layer='sst.analysed_sst']").count() == 0


def test_permalink_restores_the_view(page, browser, cubeport_url):
    sign_in(page, cubeport_url)
    page.check("input[data-layer='sst.analysed_sst']")
    page.select_option(".layer select.cmap", "thermal")
    page.wait_for_timeout(300)
    link = page.url
    assert "sst/analysed_sst" in unquote(link) and "thermal" in link

    again = page.context.browser.new_page(viewport={"width": 1280, "height": 800})
    again.context.add_cookies(page.context.cookies())  # the same signed-in browser
    try:
        again.goto(link)
        again.wait_for_selector("body[data-ready=true]")
        assert again.is_checked("input[data-layer='sst.analysed_sst']")
        assert again.locator(".layer select.cmap").input_value() == "thermal"
        again.wait_for_timeout(1500)
        assert data_pixels(again) > 1000
    finally:
        again.close()


def test_api_clients_still_get_the_landing_document(cubeport_url):
    import httpx

    landing = httpx.get(cubeport_url + "/", headers={"Accept": "application/json"})
    assert (
        landing.headers["content-type"].startswith("application/json")
        and landing.json()["title"] == "Cubeport"
    )
    page = httpx.get(cubeport_url + "/", headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.headers["content-type"].startswith("text/html") and "viewer/viewer.js" in page.text
    assert httpx.get(cubeport_url + "/viewer/../cubeport.db").status_code == 404
    assert httpx.get(cubeport_url + "/viewer/nothing.js").status_code == 404
    assert httpx.get(cubeport_url + "/viewer/viewer.js.gz").status_code == 404
    plain = httpx.get(cubeport_url + "/viewer/viewer.js", headers={"Accept-Encoding": "identity"})
    packed = httpx.get(cubeport_url + "/viewer/viewer.js", headers={"Accept-Encoding": "gzip"})
    assert packed.headers["content-encoding"] == "gzip" and "content-encoding" not in plain.headers
    assert packed.content == plain.content and int(packed.headers["content-length"]) < len(plain.content) / 2
    again = httpx.get(
        cubeport_url + "/viewer/viewer.js",
        headers={"If-None-Match": plain.headers["etag"], "Accept-Encoding": "identity"},
    )
    assert again.status_code == 304


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory, data):
    from cubeport.basemap import simplified_land
    from cubeport.demo import build_demo

    context = Context(load_settings(data_root=str(tmp_path_factory.mktemp("viewer-demo"))))
    build_demo(context, days=DEMO_DAYS)
    context.basemaps.put("land", simplified_land([data / "land/gshhg_full_baltic_9-31E_53-66.5N.gpkg"]))
    import_file(
        context.features, data / GSHHG, "demo", "land", title="GSHHG land polygons"
    )  # 31,363: too many
    server = AppServer(create_app(context))
    yield server.url
    server.stop()
    context.close()


DEMO_DAYS = 20
GSHHG = "land/gshhg_full_baltic_9-31E_53-66.5N.gpkg"
CHL = "baltic-demo/chl~1.00~viridis~0.3~30~log"


def open_at(page, url: str, lon: float, lat: float, zoom: float, groups: tuple[str, ...] = ()) -> None:
    page.goto(f"{url}/#proj=EPSG%3A3857&c={lon},{lat}&z={zoom}&l={CHL}")
    page.wait_for_selector("body[data-ready=true]")
    for group in groups:
        page.wait_for_selector(f"input[data-group='{group}']")
        page.check(f"input[data-group='{group}']")
    page.wait_for_timeout(1200)


def click_centre(page) -> None:
    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)


def test_water_body_dashboard_shows_the_servers_classes(page, demo_url):
    import httpx

    open_at(page, demo_url, 26.5, 60.1, 6, ("water-bodies", "stations"))
    click_centre(page)  # inside the Gulf of Finland
    page.wait_for_selector("#dashboard:not([hidden])")
    page.wait_for_timeout(500)
    shown = page.get_attribute("#dashboard", "data-classes")
    report = httpx.get(f"{demo_url}/dashboards/baltic-demo/chl/places/water-bodies/1").json()
    assert json.loads(shown) == {c["name"]: c["count"] for c in report["classes"]}
    assert page.locator("#dashboard tbody tr").count() == DEMO_DAYS
    assert "LL7" in page.locator("#dashboard tbody").inner_text()  # the station inside, beside the EO values
    page.screenshot(path=str(ARTIFACTS / "viewer-dashboard.png"))


def test_a_station_charts_eo_beside_in_situ(page, demo_url):
    open_at(page, demo_url, 24.83, 59.85, 8, ("stations",))
    click_centre(page)  # on station LL7
    page.wait_for_selector("#chart-panel:not([hidden])")
    page.wait_for_function("() => Number(document.querySelector('#chart').dataset.points) > 20")
    import httpx

    measured = httpx.get(f"{demo_url}/places/stations/LL7/observations", params={"parameter": "chl"}).json()
    assert len(measured["observations"]) >= 2
    assert int(page.get_attribute("#chart", "data-points")) == DEMO_DAYS + len(measured["observations"])
    page.screenshot(path=str(ARTIFACTS / "viewer-station.png"))


def test_feature_store_stations_and_water_bodies(page, demo_url):
    """Collections of the feature store are overlays too: a station charts its observations beside the EO
    series, a water body opens the dashboard with the limits of its feature."""
    import httpx

    stations, bodies = "features:demo.stations", "features:demo.water-bodies"
    open_at(page, demo_url, 24.83, 59.85, 8, (stations,))
    click_centre(page)  # on station LL7
    page.wait_for_function("() => Number(document.querySelector('#chart')?.dataset.points) > 20")
    ll7 = httpx.get(
        f"{demo_url}/features/collections/demo.stations/items", params={"filter": "code = 'LL7'"}
    ).json()
    station = ll7["features"][0]["id"]
    measured = httpx.get(
        f"{demo_url}/features/collections/demo.stations/items/{station}/observations",
        params={"parameter": "chl"},
    ).json()["observations"]
    assert len(measured) >= 2
    page.wait_for_function(
        f"() => Number(document.querySelector('#chart').dataset.points) === {DEMO_DAYS + len(measured)}"
    )
    page.goto("about:blank")  # a new hash alone would not reload the viewer
    open_at(page, demo_url, 26.5, 60.1, 6, (bodies, stations))
    click_centre(page)  # inside the Gulf of Finland
    page.wait_for_selector("#dashboard:not([hidden])")
    page.wait_for_timeout(500)
    gulf = httpx.get(
        f"{demo_url}/features/collections/demo.water-bodies/items",
        params={"filter": "name = 'Gulf of Finland'"},
    ).json()["features"][0]
    report = httpx.post(
        f"{demo_url}/dashboards/baltic-demo/chl",
        json=gulf["geometry"],
        params={"limits": ",".join(map(str, gulf["properties"]["chl_class_limits"]))},
    ).json()
    assert json.loads(page.get_attribute("#dashboard", "data-classes")) == {
        c["name"]: c["count"] for c in report["classes"]
    }
    assert "LL7" in page.locator("#dashboard tbody").inner_text()  # the feature-store station inside
    page.screenshot(path=str(ARTIFACTS / "viewer-feature-store.png"))


def test_a_large_collection_shows_the_features_in_view(page, demo_url, data):
    """31,363 land polygons do not fit in one answer of 5,000: the overlay shows those in the map's view and
    follows the map, and says when there are more in view than it shows."""
    import pyogrio
    import shapely

    land = "features:demo.land"
    asked: list[str] = []
    page.on("request", lambda r: "/features/collections/demo.land/items" in r.url and asked.append(r.url))
    check = f"input[data-group='{land}']"
    open_at(page, demo_url, 24.95, 60.15, 5, (land,))  # the whole Baltic in view
    page.wait_for_selector(f"{check}[data-in-view=true]")
    assert (
        int(page.get_attribute(check, "data-shown")) == 5000 < int(page.get_attribute(check, "data-matched"))
    )
    assert "zoom in to see them all" in page.inner_text("#status")
    for _ in range(6):  # to zoom 11: Helsinki's archipelago
        page.click(".ol-zoom-in")
        page.wait_for_timeout(400)
    page.wait_for_function(f"""() => {{ const c = document.querySelector("{check}");
        return c.dataset.shown === c.dataset.matched && Number(c.dataset.shown) > 20; }}""")
    page.wait_for_timeout(500)
    bbox = [float(v) for v in parse_qs(urlsplit(asked[-1]).query)["bbox"][0].split(",")]
    assert bbox[2] - bbox[0] < 1.5  # the view's, not the Baltic's
    meta, _, wkb, _ = pyogrio.raw.read(
        data / GSHHG, bbox=tuple(bbox)
    )  # GDAL's candidates, then the exact test
    expected = int(shapely.intersects(shapely.from_wkb(wkb), shapely.box(*bbox)).sum())
    assert int(page.get_attribute(check, "data-shown")) == expected
    page.screenshot(path=str(ARTIFACTS / "viewer-features-in-view.png"))


def test_a_drawn_polygon_gives_area_statistics(page, demo_url):
    open_at(page, demo_url, 20.0, 58.0, 7)
    page.click("#draw-polygon")
    box = page.locator("#map").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    for dx, dy in ((-80, -60), (80, -60), (80, 60), (-80, 60)):
        page.mouse.click(cx + dx, cy + dy)
    page.mouse.dblclick(cx - 80, cy + 60)
    page.wait_for_selector("#area-stats[data-count]")
    assert int(page.get_attribute("#area-stats", "data-count")) > 100
    assert "mean" in page.locator("#area-stats").inner_text()
    page.wait_for_selector("#chart-panel:not([hidden])")
    assert int(page.get_attribute("#area-histogram", "data-bins")) > 10  # the statistics' histogram
    assert data_pixels(page, "basemap-land") > 1000  # Gotland and the Baltic states' coast, offline
    page.screenshot(path=str(ARTIFACTS / "viewer-polygon.png"))


def test_style_info_theme_and_a_tablet_layout(browser, demo_url):
    tablet = browser.new_page(viewport={"width": 820, "height": 1180})
    requests: list[str] = []
    tablet.on("request", lambda r: requests.append(r.url))
    try:
        open_at(tablet, demo_url, 20.0, 59.0, 5)
        map_box, sidebar_box = (
            tablet.locator("#map").bounding_box(),
            tablet.locator("#sidebar").bounding_box(),
        )
        assert map_box["width"] > 450 and map_box["height"] > 600 and sidebar_box["width"] > 150
        slider = tablet.locator(".layer .vmax-slider")
        slider.fill("20")  # slide the top of the value range: tiles come again with it
        slider.dispatch_event("change")
        tablet.wait_for_timeout(800)
        assert any("vmax=20" in url for url in requests if "/tiles/baltic-demo/chl/" in url)
        tablet.fill(".layer input.vmin", "25")  # above vmax: refused, said, and nothing asked for
        tablet.locator(".layer input.vmin").dispatch_event("change")
        assert "vmin < vmax" in tablet.locator("#status").inner_text()
        assert tablet.locator(".layer input.vmin").input_value() == "0.3"
        tablet.click("#theme-toggle")
        assert tablet.get_attribute("html", "data-theme") == "dark" and "theme=dark" in tablet.url
        tablet.locator(".dataset button.info").first.click()
        snippet = tablet.locator("#info-snippet").inner_text()
        assert 'open_cube("' in snippet and '"baltic-demo")' in snippet
        tablet.screenshot(path=str(ARTIFACTS / "viewer-tablet-dark.png"))
    finally:
        tablet.close()


def test_tm35fin_hover_value_and_play(page, demo_url):
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    open_at(page, demo_url, 25.5, 59.8, 5)  # the Gulf of Finland
    page.select_option("#projection", "EPSG:3067")  # the Finnish grid: tiles reprojected in the browser
    page.wait_for_timeout(1500)
    assert "proj=EPSG%3A3067" in page.url and data_pixels(page) > 3000
    box = page.locator("#map").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2 - 5, box["y"] + box["height"] / 2)
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, steps=3)
    page.wait_for_function("() => document.querySelector('#cursor').textContent.includes('chl')")
    assert "mg m-3" in page.locator("#cursor").inner_text()  # the value under the cursor, with its unit
    before = page.locator("#time-label").inner_text()
    page.fill("#time-speed", "10")
    page.click("#time-play")
    page.wait_for_timeout(700)
    page.click("#time-play")  # pause
    assert page.locator("#time-label").inner_text() != before
    assert page.get_attribute("#time-play", "aria-label") == "play"
    page.fill("#time-date", "2024-06-05")
    page.locator("#time-date").dispatch_event("change")
    assert page.locator("#time-label").inner_text().startswith("2024-06-05")
    page.wait_for_timeout(800)
    assert any("time=2024-06-05" in url for url in requests if "/tiles/baltic-demo/chl/" in url)


def test_layer_order_follows_the_arrows(page, demo_url):
    sst = "baltic-demo/sst~0.60~RdYlBu_r~4~22~lin"
    page.goto(f"{demo_url}/#c=20,59&z=5&l={CHL}&l={sst}")  # sst on top
    page.wait_for_selector("body[data-ready=true]")
    panels = page.locator("#layers .layer")
    assert [panels.nth(i).get_attribute("data-layer") for i in range(2)] == [
        "baltic-demo.sst",
        "baltic-demo.chl",
    ]
    assert page.locator("#layers .layer").first.locator("input.opacity").input_value() == "0.6"
    page.locator("#layers .layer").first.locator("button[title='move down']").click()
    assert page.locator("#layers .layer").first.get_attribute("data-layer") == "baltic-demo.chl"
    layers = [part for part in unquote(page.url).split("&") if part.startswith("l=")]
    assert [part.split("~")[0] for part in layers] == [
        "l=baltic-demo/sst",
        "l=baltic-demo/chl",
    ]  # bottom first
