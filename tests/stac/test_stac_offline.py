"""tests/stac_offline.py: the STAC validators run offline, schemas answered from ../shared/stac-schemas and
pystac's bundled copies, local servers reached for real, anything else refused loudly."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pystac
import pytest
import requests
import requests.adapters
import urllib3
from pystac.extensions.projection import ProjectionExtension
from stac_offline import (
    SCHEMA_DIR,
    NetworkBlockedOffline,
    SchemaNotAvailableOffline,
    clear_validator_caches,
    local_schema,
    offline_schemas,
    run_stac_api_validator,
)
from stac_validator.stac_validator import StacValidate

PROJ_V2 = "https://stac-extensions.github.io/projection/v2.0.0/schema.json"
PROJ_V11 = "https://stac-extensions.github.io/projection/v1.1.0/schema.json"
NO_COPY = "https://stac-extensions.github.io/no-such-extension/v9.9.9/schema.json"


@pytest.fixture(autouse=True)
def _fresh_caches():
    """Each test sees the validators fetch their schemas (they cache them process-wide)."""
    clear_validator_caches()
    yield
    clear_validator_caches()


@contextlib.contextmanager
def serve(handler) -> Iterator[str]:
    """A threaded HTTP server on 127.0.0.1 for the block; yields its base URL; stopped and joined after."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        assert not thread.is_alive()


def projection_item() -> pystac.Item:
    item = pystac.Item(
        id="scene-1",
        geometry={"type": "Polygon", "coordinates": [[[10, 50], [11, 50], [11, 51], [10, 51], [10, 50]]]},
        bbox=[10, 50, 11, 51],
        datetime=datetime(2024, 5, 1, 10, 30, tzinfo=UTC),
        properties={},
    )
    proj = ProjectionExtension.ext(item, add_if_missing=True)
    proj.code = "EPSG:32632"
    proj.shape = [100, 100]
    return item


# ------------------------------------------------------------------------------------ item validation


def test_valid_projection_item_passes_pystac_and_stac_validator():
    item = projection_item()
    assert PROJ_V2 in item.stac_extensions
    with offline_schemas() as offline:
        item.validate()  # pystac: core schemas bundled, the projection schema fetched with urllib3
        validator = StacValidate()
        assert validator.validate_dict(item.to_dict()), validator.message
    # stac-validator really fetched the extension schema and got the local copy (pystac 1.16+ bundles the
    # projection schema in pystac-ext-projection; older releases fetched it too)
    assert 1 <= offline.served.count(PROJ_V2) <= 2
    assert offline.missing == offline.blocked == []
    core = "https://schemas.stacspec.org/v1.1.0/item-spec/json-schema/item.json"
    assert sorted(validator.message[0]["schema"]) == sorted([core, PROJ_V2])
    assert core in offline.served  # stac-validator's core schema: from pystac's bundled copies


def test_stac_1_0_item_is_validated_against_the_shared_copies():
    """STAC 1.0.0 (not bundled by pystac) comes from ../shared/stac-schemas, with its references."""
    d = projection_item().to_dict()
    d["stac_version"] = "1.0.0"
    d["stac_extensions"] = [PROJ_V11]
    del d["properties"]["proj:code"]
    d["properties"]["proj:epsg"] = 32632
    with offline_schemas() as offline:
        validator = StacValidate()
        assert validator.validate_dict(d), validator.message
        pystac.validation.validate_dict(d)
    assert "https://schemas.stacspec.org/v1.0.0/item-spec/json-schema/item.json" in offline.served
    assert "https://schemas.stacspec.org/v1.0.0/item-spec/json-schema/basics.json" in offline.served
    assert PROJ_V11 in offline.served


def _drop_id(d):
    del d["id"]


def _bad_datetime(d):
    d["properties"]["datetime"] = "1st of May 2024"


def _bad_projection_code(d):
    d["properties"]["proj:code"] = 32632  # the projection schema wants a string (or null)


@pytest.mark.parametrize("breakage", [_drop_id, _bad_datetime, _bad_projection_code])
def test_invalid_item_fails_both_validators(breakage):
    d = projection_item().to_dict()
    breakage(d)
    with offline_schemas() as offline:
        with pytest.raises(pystac.STACValidationError):
            pystac.validation.validate_dict(d)
        validator = StacValidate()
        assert not validator.validate_dict(d)
    assert validator.message[0]["valid_stac"] is False
    assert "offline" not in json.dumps(validator.message)  # refused by a schema, not for want of one
    assert offline.missing == []


# ------------------------------------------------------------------------------------ missing schemas


@pytest.mark.parametrize(
    "fetch",
    [
        pytest.param(lambda url: requests.get(url, timeout=5), id="requests"),
        pytest.param(lambda url: urllib.request.urlopen(url, timeout=5), id="urllib"),
        pytest.param(lambda url: urllib3.PoolManager().request("GET", url), id="urllib3"),
        pytest.param(lambda url: httpx.get(url), id="httpx"),
    ],
)
def test_schema_without_local_copy_raises_naming_the_url(fetch):
    assert local_schema(NO_COPY) is None
    start = time.monotonic()
    with pytest.raises(SchemaNotAvailableOffline, match=NO_COPY) as raised, offline_schemas():
        fetch(NO_COPY)
    assert raised.value.url == NO_COPY
    assert time.monotonic() - start < 2  # refused at once, not after a network timeout


def test_missing_schema_swallowed_by_a_validator_still_fails_the_block():
    d = projection_item().to_dict()
    d["stac_extensions"].append(NO_COPY)
    with pytest.raises(SchemaNotAvailableOffline, match=NO_COPY), offline_schemas() as offline:
        validator = StacValidate()
        assert not validator.validate_dict(d)  # stac-validator turns the failure into a message ...
        assert NO_COPY in json.dumps(validator.message)
        with pytest.raises(pystac.validation.GetSchemaError, match=NO_COPY):
            pystac.validation.validate_dict(d)
    assert offline.missing == [NO_COPY, NO_COPY]  # ... and the block still fails at its end


def test_other_remote_hosts_are_blocked_not_contacted():
    with (
        offline_schemas() as offline,
        pytest.raises(NetworkBlockedOffline, match="https://example.com/scene.tif"),
    ):
        requests.get("https://example.com/scene.tif", timeout=5)
    assert offline.blocked == ["https://example.com/scene.tif"]  # not a schema: the block itself passes


def test_patches_are_removed_afterwards():
    originals = (
        requests.adapters.HTTPAdapter.send,
        urllib3.PoolManager.urlopen,
        urllib.request.AbstractHTTPHandler.do_open,
        httpx.HTTPTransport.handle_request,
    )
    with offline_schemas(), offline_schemas():  # nested blocks unwind in order
        assert requests.adapters.HTTPAdapter.send is not originals[0]
    assert (
        requests.adapters.HTTPAdapter.send,
        urllib3.PoolManager.urlopen,
        urllib.request.AbstractHTTPHandler.do_open,
        httpx.HTTPTransport.handle_request,
    ) == originals


def test_shared_schema_dir_is_present():
    assert (SCHEMA_DIR / "README.md").exists(), f"schema copies not found at {SCHEMA_DIR}"
    copy_ = SCHEMA_DIR / "stac-extensions.github.io" / "projection" / "v2.0.0" / "schema.json"
    assert local_schema(PROJ_V2) == copy_.read_bytes()


# ------------------------------------------------------------------------------------ local servers


def test_local_server_requests_go_through(tmp_path: Path):
    (tmp_path / "doc.json").write_text(json.dumps({"hello": "local"}))

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    with serve(partial(Quiet, directory=str(tmp_path))) as base:
        url = f"{base}/doc.json"
        with offline_schemas() as offline:
            assert requests.get(url, timeout=5).json() == {"hello": "local"}
            assert json.load(urllib.request.urlopen(url, timeout=5)) == {"hello": "local"}
            assert urllib3.PoolManager().request("GET", url).json() == {"hello": "local"}
            assert httpx.get(url).json() == {"hello": "local"}
            assert json.loads(pystac.StacIO.default().read_text(url)) == {"hello": "local"}
            localhost = url.replace("127.0.0.1", "localhost")
            assert requests.get(localhost, timeout=5).headers.get("X-Served-By") is None
            assert requests.get(f"{base}/missing.json", timeout=5).status_code == 404  # the server's own 404
    assert offline.served == offline.missing == offline.blocked == []


# ------------------------------------------------------------------------------------ stac-api-validator


CONFORMS_TO = [
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/collections",
    "https://api.stacspec.org/v1.0.0/item-search",
    "http://www.opengis.net/spec/ogcapi-common-2/1.0/conf/collections",
]
JSON, GEOJSON = "application/json", "application/geo+json"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"


def static_stac_api(base: str, *, broken_landing: bool = False) -> dict[str, tuple[str, bytes]]:
    """path -> (content type, body) of a tiny, static STAC API (STAC 1.1.0, one collection, three items)."""

    def link(rel, path, type_=JSON, **extra):
        return {"rel": rel, "href": f"{base}{path}", "type": type_, **extra}

    coll = "demo"
    items = []
    for i in range(3):
        item = projection_item()
        item.id = f"scene-{i + 1}"
        item.datetime = datetime(2024, 5, 1 + i, 10, 30, tzinfo=UTC)
        d = item.to_dict(include_self_link=False)
        d["collection"] = coll
        d["links"] = [
            link("self", f"/collections/{coll}/items/{item.id}", GEOJSON),
            link("root", "/"),
            link("parent", f"/collections/{coll}"),
            link("collection", f"/collections/{coll}"),
        ]
        d["assets"] = {
            "data": {
                "href": f"{base}/assets/{item.id}.tif",
                "type": "image/tiff; application=geotiff",
                "roles": ["data"],
            }
        }
        items.append(d)

    collection = {
        "type": "Collection",
        "stac_version": "1.1.0",
        "stac_extensions": [],
        "id": coll,
        "title": "Demo scenes",
        "description": "Three hand-written scenes",
        "license": "CC-BY-4.0",
        "extent": {
            "spatial": {"bbox": [[10, 50, 11, 51]]},
            "temporal": {"interval": [["2024-05-01T10:30:00Z", "2024-05-03T10:30:00Z"]]},
        },
        "links": [
            link("self", f"/collections/{coll}"),
            link("root", "/"),
            link("parent", "/"),
            link("items", f"/collections/{coll}/items", GEOJSON),
            link("license", "/license.html", "text/html"),
            *[link("item", f"/collections/{coll}/items/{d['id']}", GEOJSON) for d in items],
        ],
    }

    def feature_collection(path):
        links = [link("self", path, GEOJSON), link("root", "/")]
        return {"type": "FeatureCollection", "features": items, "links": links}

    landing = {
        "type": "Catalog",
        "stac_version": "1.1.0",
        "id": "static-api",
        "title": "Static test API",
        "description": "A static STAC API for testing the offline validator",
        "conformsTo": CONFORMS_TO,
        "links": [
            link("self", "/"),
            link("root", "/"),
            link("service-desc", "/api", OPENAPI),
            link("service-doc", "/api.html", "text/html"),
            link("conformance", "/conformance"),
            link("data", "/collections"),
            link("search", "/search", GEOJSON, method="GET"),
            link("search", "/search", GEOJSON, method="POST"),
            link("child", f"/collections/{coll}"),
        ],
    }
    if broken_landing:
        del landing["conformsTo"]

    doc = {
        "/": (JSON, landing),
        "/api": (OPENAPI, {"openapi": "3.0.3", "info": {"title": "static", "version": "1"}, "paths": {}}),
        "/conformance": (JSON, {"conformsTo": CONFORMS_TO}),
        "/collections": (
            JSON,
            {"collections": [collection], "links": [link("self", "/collections"), link("root", "/")]},
        ),
        f"/collections/{coll}": (JSON, collection),
        f"/collections/{coll}/items": (GEOJSON, feature_collection(f"/collections/{coll}/items")),
        "/search": (GEOJSON, feature_collection("/search")),
        **{f"/collections/{coll}/items/{d['id']}": (GEOJSON, d) for d in items},
    }
    routes = {path: (ctype, json.dumps(body).encode()) for path, (ctype, body) in doc.items()}
    routes["/api.html"] = routes["/license.html"] = ("text/html", b"<!doctype html><title>docs</title>")
    routes.update({f"/assets/{d['id']}.tif": ("image/tiff", b"II*\x00") for d in items})
    return routes


@contextlib.contextmanager
def serve_stac_api(**kwargs) -> Iterator[str]:
    routes: dict[str, tuple[str, bytes]] = {}

    class Handler(BaseHTTPRequestHandler):
        def _reply(self, body_too: bool):
            path = self.path.split("?", 1)[0]
            path = path.rstrip("/") or "/"
            ctype, body = routes.get(path, ("application/json", b'{"code": "NotFound"}'))
            self.send_response(200 if path in routes else 404)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body_too:
                self.wfile.write(body)

        def do_GET(self):
            self._reply(True)

        def do_HEAD(self):
            self._reply(False)

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._reply(True)

        def log_message(self, *args):
            pass

    with serve(Handler) as base:
        routes.update(static_stac_api(base, **kwargs))
        yield base


def test_run_stac_api_validator_passes_a_valid_static_api():
    geometry = {"type": "Point", "coordinates": [10.5, 50.5]}
    with serve_stac_api() as base:
        errors, warnings = run_stac_api_validator(f"{base}/", ["core", "collections"], "demo", geometry)
    assert errors == [], errors
    assert not [w for w in warnings if "offline" in w], warnings


def test_run_stac_api_validator_reports_a_broken_landing_page():
    geometry = {"type": "Point", "coordinates": [10.5, 50.5]}
    with serve_stac_api(broken_landing=True) as base:
        errors, _ = run_stac_api_validator(f"{base}/", ["core", "collections"], "demo", geometry)
    assert any("'conformsTo' field must be defined" in e for e in errors), errors


def test_run_stac_api_validator_refuses_unknown_conformance_classes():
    with pytest.raises(ValueError, match="item_search"):
        point = {"type": "Point", "coordinates": [0, 0]}
        run_stac_api_validator("http://127.0.0.1:9/", ["item_search"], "demo", point)
