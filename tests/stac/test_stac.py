"""The STAC API over real ingested samples: stac-api-validator passes (schemas served offline), pystac-client
searches, rasterio opens the asset hrefs, filter/sort/fields/paging behave, access holds on every route,
and federated search degrades around a slow and a failing source."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import numpy as np
import pytest
import rasterio
import xarray as xr
from services import AppServer, CubeportProcess
from stac_offline import run_stac_api_validator
from typer.testing import CliRunner

from cubeport.api.app import create_app
from cubeport.cli import app as cli
from cubeport.config import load_settings
from cubeport.context import Context
from cubeport.deadline import time_budget
from cubeport.errors import LimitError
from cubeport.stac import documents
from cubeport.stac.search import SearchRequest

OSTIA = sorted(Path(__file__).resolve().parents[3].glob("shared/data/netcdf/*OSTIA*.nc"))
S1 = "sar/S1A__IW___A_20150309T173017_VV_grd_mli_geo_norm_db.tif"
ICE = "rasters/nt_20201024_f18_nrt_s.tif"
BALTIC = {"type": "Polygon", "coordinates": [[[10, 53], [31, 53], [31, 66], [10, 66], [10, 53]]]}


def ingest(root: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["ingest", *args, "--data-root", str(root)], prog_name="cubeport")
    assert result.exit_code == 0, result.output
    return result.output


def admin_key(context: Context) -> str:
    context.auth.directory.create_user("root", role="admin")
    return context.auth.create_key("root")[1]


@pytest.fixture(scope="module")
def platform(tmp_path_factory, data):
    """This server (a process: rasterio's GDAL holds the GIL while it reads over HTTP) with OSTIA (3 NetCDF
    products, public) and S1 (a GeoTIFF product, only for group syke)."""
    root = tmp_path_factory.mktemp("stac")
    assert "3 products in STAC" in ingest(root, *map(str, OSTIA), "--cube", "ostia")
    ingest(root, str(data / S1), "--cube", "s1", "--time-pattern", "%Y%m%dT%H%M%S")
    context = Context(load_settings(data_root=str(root)))
    context.policy.set_access("cube", "s1", public=False, groups=["syke"])
    context.auth.directory.create_user("mia")
    context.auth.directory.create_group("syke")
    context.auth.directory.add_member("syke", "mia")
    keys = {"mia": context.auth.create_key("mia")[1], "admin": admin_key(context)}
    server = CubeportProcess(root)
    yield server.url, keys, context
    server.stop()
    context.close()


def test_stac_api_validator_passes_core_collections_features_and_item_search(platform):
    url, _, _ = platform
    errors, warnings = run_stac_api_validator(
        f"{url}/stac", ["core", "collections", "features", "item-search"], collection="ostia", geometry=BALTIC
    )
    assert errors == [], errors
    assert not [w for w in warnings if "blocked" in w], warnings


def test_items_describe_the_products_as_gdal_reads_them(platform):
    url, _, _ = platform
    page = httpx.get(f"{url}/stac/collections/ostia/items", params={"limit": 10}).json()
    assert page["numberMatched"] == page["numberReturned"] == 3
    times = [i["properties"]["datetime"] for i in page["features"]]
    assert times == ["2017-06-05T12:00:00Z", "2017-06-06T12:00:00Z", "2017-06-07T12:00:00Z"]
    item = page["features"][0]
    href = item["assets"]["data"]["href"]
    with (
        rasterio.open(f'netcdf:"/vsicurl/{href}":analysed_sst') as served,
        rasterio.open(f"netcdf:{OSTIA[0]}:analysed_sst") as local,
    ):
        assert (
            [served.height, served.width] == item["properties"]["proj:shape"] == [local.height, local.width]
        )
        assert list(served.transform)[:6] == pytest.approx(item["properties"]["proj:transform"])
        np.testing.assert_array_equal(
            served.read(1, window=((300, 310), (40, 60))), local.read(1, window=((300, 310), (40, 60)))
        )
    assert item["assets"]["data"]["file:size"] == OSTIA[0].stat().st_size
    collection = httpx.get(f"{url}/stac/collections/ostia").json()
    cube = xr.open_zarr(collection["assets"]["zarr"]["href"])  # the datacube asset opens as a cube
    assert cube.sizes["time"] == 3 and set(collection["cube:variables"]) == {"analysed_sst", "sst_anomaly"}


def test_pystac_client_searches_and_rasterio_opens_the_asset(platform, data):
    from pystac_client import Client

    url, keys, _ = platform
    catalog = Client.open(f"{url}/stac", headers={"X-API-Key": keys["mia"]})
    items = list(
        catalog.search(
            collections=["s1"], bbox=[-180, -90, 180, 90], datetime="2015-03-01/2015-03-31", max_items=10
        ).items()
    )
    assert [i.id for i in items] == ["S1A__IW___A_20150309T173017_VV_grd_mli_geo_norm_db"]
    with (
        rasterio.Env(GDAL_HTTP_HEADERS=f"X-API-Key: {keys['mia']}"),
        rasterio.open(items[0].assets["data"].href) as served,
        rasterio.open(data / S1) as local,
    ):
        assert served.crs == local.crs and served.transform == local.transform
        assert items[0].properties["proj:code"] == f"EPSG:{local.crs.to_epsg()}"
        np.testing.assert_array_equal(served.read(1), local.read(1))
    assert not list(catalog.search(collections=["s1"], datetime="2016-01-01/2016-12-31").items())


def test_filter_sort_fields_and_paging(platform):
    url, _, _ = platform
    later = {"op": ">", "args": [{"property": "datetime"}, {"timestamp": "2017-06-05T13:00:00Z"}]}
    newest_first = httpx.post(
        f"{url}/stac/search",
        json={
            "filter": later,
            "filter-lang": "cql2-json",
            "sortby": [{"field": "datetime", "direction": "desc"}],
            "fields": {"include": ["properties.datetime"], "exclude": ["assets"]},
        },
    ).json()
    assert [i["properties"]["datetime"] for i in newest_first["features"]] == [
        "2017-06-07T12:00:00Z",
        "2017-06-06T12:00:00Z",
    ]
    assert all("assets" not in i and "proj:code" not in i["properties"] for i in newest_first["features"])
    text = httpx.get(f"{url}/stac/search", params={"filter": "datetime < TIMESTAMP('2017-06-06T00:00:00Z')"})
    assert [i["id"] for i in text.json()["features"]] == [OSTIA[0].stem]
    # a property the items lack, or a literal of another type, selects nothing (found by fuzzing: a 500)
    for unknown in ("name = 'a'", "id = 1", "NOT (eo:cloud_cover > 1)"):
        for route in ("/stac/search", "/stac/collections/ostia/items"):
            answer = httpx.get(f"{url}{route}", params={"filter": unknown})
            assert answer.status_code == 200 and answer.json()["features"] == [], (route, unknown)

    seen, body = [], {"collections": ["ostia"], "limit": 1}
    while True:  # follow the POST next links to the end
        page = httpx.post(f"{url}/stac/search", json=body).json()
        seen += [i["id"] for i in page["features"]]
        following = [link for link in page["links"] if link["rel"] == "next"]
        if not following:
            break
        body = following[0]["body"]
    assert seen == [p.stem for p in OSTIA]
    get_page = httpx.get(f"{url}/stac/collections/ostia/items", params={"limit": 2}).json()
    rest = httpx.get(next(link["href"] for link in get_page["links"] if link["rel"] == "next")).json()
    assert [i["id"] for i in get_page["features"] + rest["features"]] == [p.stem for p in OSTIA]


@pytest.mark.parametrize(
    ("method", "path", "params", "status", "words"),
    [
        ("GET", "/stac/search", {"bbox": "10,60,5"}, 400, "bbox"),
        ("GET", "/stac/search", {"bbox": "10,60,20,50"}, 400, "bbox"),
        ("GET", "/stac/search", {"bbox": "0,0,nan,1"}, 400, "bbox"),  # found by fuzzing: a 500 (GEOS)
        ("GET", "/stac/search", {"bbox": "-inf,0,1,1"}, 400, "bbox"),
        ("GET", "/stac/search", {"filter": "datetime >> 3"}, 400, "filter"),
        ("GET", "/stac/search", {"token": "bm9wZQ"}, 400, "token"),
        ("GET", "/stac/search", {"sources": "elsewhere"}, 404, "elsewhere"),
        ("GET", "/stac/search", {"limit": 0}, 400, "limit"),
        ("GET", "/stac/search", {"datetime": "2017-06-05"}, 400, "RFC 3339"),
        ("GET", "/stac/search", {"datetime": "../.."}, 400, "datetime"),
        ("POST", "/stac/search", {"bbox": [1, 2], "limit": 1}, 400, "bbox"),
        ("POST", "/stac/search", {"colections": ["ostia"]}, 400, "colections"),
        (
            "POST",
            "/stac/search",
            {"intersects": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}},
            400,
            "valid",
        ),
        ("GET", "/stac/collections/nothere/items", {}, 404, "nothere"),
        ("GET", "/stac/collections/ostia/items/nothere", {}, 404, "nothere"),
    ],
)
def test_bad_input_gets_a_clear_4xx(platform, method, path, params, status, words):
    url, _, _ = platform
    response = (
        httpx.get(f"{url}{path}", params=params)
        if method == "GET"
        else httpx.post(f"{url}{path}", json=params)
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert words in response.text


def test_a_spent_time_budget_stops_the_item_loop(platform):
    """Geometry, CQL2 and presentation run on each candidate item in Python: the request's time budget is
    checked as they go, so a search over many candidates ends with the budget's LimitError (a 422)."""
    _, _, context = platform
    real = context.products.query(["ostia"])
    candidates = [{**item, "id": f"{item['id']}-{i}"} for i in range(20_000) for item in real]  # 60,000
    search = SearchRequest.from_body({"intersects": BALTIC, "filter": "eo:cloud_cover < 50 OR id LIKE '%'"})
    with time_budget(0.1), pytest.raises(LimitError, match="searching the items took longer") as spent:
        search.page(candidates, lambda item: documents.local_item(item, "http://x"))
    assert (spent.value.limit, spent.value.maximum) == ("seconds", 0.1)
    found, _, matched = search.page(candidates[:30], lambda item: documents.local_item(item, "http://x"))
    assert matched == 30 and len(found) == 10  # without a budget


def test_files_serve_byte_ranges_and_refuse_ranges_past_the_end(platform):
    url, _, _ = platform
    href = httpx.get(f"{url}/stac/collections/ostia/items").json()["features"][0]["assets"]["data"]["href"]
    whole = OSTIA[0].read_bytes()
    part = httpx.get(href, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == whole[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(whole)}"
    assert httpx.head(href).headers["content-length"] == str(len(whole))
    refused = httpx.get(href, headers={"Range": f"bytes={len(whole)}-"})
    assert refused.status_code == 416 and refused.headers["content-range"] == f"bytes */{len(whole)}"
    assert httpx.get(href.replace("/files/", "/files/x")).status_code == 404


def test_a_restricted_cube_is_hidden_on_every_stac_route(platform):
    url, keys, _ = platform
    mia = {"X-API-Key": keys["mia"]}
    base = f"{url}/stac/collections/s1"
    item = f"{base}/items/S1A__IW___A_20150309T173017_VV_grd_mli_geo_norm_db"
    for path in (
        base,
        f"{base}/items",
        f"{base}/queryables",
        item,
        f"{item}/files/S1A__IW___A_20150309T173017_VV_grd_mli_geo_norm_db.tif",
    ):
        assert httpx.get(path).status_code == 404, path
        assert httpx.get(path, headers=mia).status_code == 200, path
    for headers, expected in (({}, {"ostia"}), (mia, {"ostia", "s1"})):
        collections = httpx.get(f"{url}/stac/collections", headers=headers).json()["collections"]
        assert {c["id"] for c in collections} == expected
        found = httpx.post(f"{url}/stac/search", json={"limit": 100}, headers=headers).json()["features"]
        assert {i["collection"] for i in found} == expected
        children = httpx.get(f"{url}/stac", headers=headers).json()["links"]
        assert {link["href"].rsplit("/", 1)[-1] for link in children if link["rel"] == "child"} == expected


# Federation: a second Cubeport as a remote source (with credentials), one that is slow, one that fails


@contextlib.contextmanager
def misbehaving(delay: float = 0.0, status: int = 200) -> Iterator[str]:
    """A "STAC API" that answers /search after `delay` seconds with `status` and an empty collection."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _answer(self) -> None:
            time.sleep(delay)
            body = b'{"type": "FeatureCollection", "features": [], "links": []}'
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/geo+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up, as it should
                pass

        def do_GET(self) -> None:
            self._answer()

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self._answer()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def remote(tmp_path_factory, data):
    """Another Cubeport with a sea-ice concentration product, readable only with an API key."""
    root = tmp_path_factory.mktemp("remote")
    ingest(root, str(data / ICE), "--cube", "seaice", "--time-pattern", "%Y%m%d")
    context = Context(load_settings(data_root=str(root)))
    context.policy.set_access("cube", "seaice", public=False, groups=["partners"])
    context.auth.directory.create_user("platform")
    context.auth.directory.create_group("partners")
    context.auth.directory.add_member("partners", "platform")
    key = context.auth.create_key("platform")[1]
    server = AppServer(create_app(context))
    yield server.url, key
    server.stop()
    context.close()


def test_federated_search_says_where_items_come_from_and_degrades(platform, remote, data):
    url, keys, _ = platform
    admin = {"X-API-Key": keys["admin"]}
    remote_url, remote_key = remote
    with misbehaving(delay=6) as slow, misbehaving(status=500) as failing:
        for name, source, timeout, headers in (
            ("partner", remote_url, 10, {"X-API-Key": remote_key}),
            ("slow", slow, 1, {}),
            ("failing", failing, 5, {}),
        ):
            put = httpx.put(
                f"{url}/stac/sources/{name}",
                headers=admin,
                json={
                    "name": name,
                    "url": f"{source}/stac" if name == "partner" else source,
                    "timeout_seconds": timeout,
                    "headers": headers,
                },
            )
            assert put.status_code == 200, put.text
            assert put.json()["headers"] == sorted(headers)  # names only, never the credentials
        assert httpx.put(f"{url}/stac/sources/x", json={"name": "x", "url": remote_url}).status_code == 401

        started = time.monotonic()
        page = httpx.post(f"{url}/stac/search", json={"sources": ["*"], "limit": 3}, timeout=30).json()
        assert time.monotonic() - started < 4  # the slow source did not hold the answer for 6 s
        assert {w["source"] for w in page["warnings"]} == {"slow", "failing"}
        assert "500" in next(w["message"] for w in page["warnings"] if w["source"] == "failing")
        sources = [i["properties"]["cubeport:source"] for i in page["features"]]
        assert sources == ["local", "partner", "local"]  # round robin, local first
        remote_item = page["features"][1]
        assert remote_item["collection"] == "seaice"
        assert any(
            link["rel"] == "via" and link["href"].startswith(remote_url) for link in remote_item["links"]
        )

        ids, body = [], {"sources": ["local", "partner"], "limit": 2}
        while body is not None:  # every item exactly once over the federated pages
            answer = httpx.post(f"{url}/stac/search", json=body).json()
            assert "warnings" not in answer
            ids += [(i["properties"]["cubeport:source"], i["id"]) for i in answer["features"]]
            body = next((link["body"] for link in answer["links"] if link["rel"] == "next"), None)
        assert sorted(ids) == sorted([("local", p.stem) for p in OSTIA] + [("partner", Path(ICE).stem)])

    proxied = remote_item["assets"]["data"]["alternate"]["cubeport"]["href"]
    original = (data / ICE).read_bytes()
    first, again = httpx.get(proxied), httpx.get(proxied)
    assert first.content == again.content == original
    assert (first.headers["x-cache"], again.headers["x-cache"]) == ("miss", "hit")
    head = httpx.get(proxied, headers={"Range": "bytes=0-99"})
    assert head.status_code == 206 and head.content == original[:100]
    outside = httpx.get(f"{url}/stac/sources/partner/proxy", params={"href": "http://169.254.169.254/latest"})
    assert outside.status_code == 400 and "origin" in outside.json()["detail"]
    listed = httpx.get(f"{url}/stac/sources").json()["sources"]
    assert {s["name"] for s in listed} == {"partner", "slow", "failing"} and remote_key not in str(listed)
    assert httpx.delete(f"{url}/stac/sources/slow", headers=admin).status_code == 204
    assert httpx.get(f"{url}/stac/search", params={"sources": "slow"}).status_code == 404


def test_sources_from_the_command_line_keep_credentials_out_of_sight(tmp_path):
    root = ["--data-root", str(tmp_path)]
    runner = CliRunner()
    added = runner.invoke(
        cli,
        ["sources", "add", "cdse", "https://stac.example.org/v1", "--header", "-", *root],
        input="Authorization: Bearer s3cr3t\n",
        prog_name="cubeport",
    )
    assert added.exit_code == 0, added.output
    listed = runner.invoke(cli, ["sources", "list", "--json", *root], prog_name="cubeport")
    assert '"Authorization"' in listed.output and "s3cr3t" not in listed.output
    context = Context(load_settings(data_root=str(tmp_path)))
    assert context.stac_sources.get("cdse").headers == {"Authorization": "Bearer s3cr3t"}  # kept, to be sent
    context.close()
    for args, words in (
        (["add", "Bad Name", "http://x"], "lower-case"),
        (["add", "x", "ftp://x"], "http(s)"),
        (["add", "cdse", "https://other"], "exists"),
        (["remove", "nope"], "not found"),
    ):
        failed = runner.invoke(cli, ["sources", *args, *root], prog_name="cubeport")
        assert failed.exit_code != 0 and words in f"{failed.output}{failed.exception}", (args, failed.output)
    assert runner.invoke(cli, ["sources", "remove", "cdse", *root], prog_name="cubeport").exit_code == 0
