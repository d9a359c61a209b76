"""Access on every route: each route declares one guard, and every data route shows a restricted cube only
to a caller granted it (404 to the others, as if it did not exist)."""

import contextlib
import functools
import http.server
import json
import threading

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from helpers import add_users, context_with

from cubeport.api.security import Guard
from cubeport.cubes.readers import open_fragment
from cubeport.features.schema import CollectionSpec
from cubeport.stac.federation import Source

RESTRICTED = "secret-cube"
PRODUCT = "20170605120000-UKMO-L4_GHRSST-SSTfnd-OSTIAanom-GLOB-v02.0-fv02.0"  # an OSTIA NetCDF in both cubes
POINT = {
    "type": "Feature",
    "geometry": {"type": "Point", "coordinates": [20.0, 58.5]},
    "properties": {"name": "a"},
}
# Routes that return nothing protected. Adding one here is a decision: say why in the route's docstring.
OPEN_ROUTES = {
    ("GET", "/"),
    ("GET", "/health"),
    ("GET", "/auth/login"),
    ("POST", "/auth/login"),
    ("POST", "/auth/logout"),
    ("GET", "/auth/oidc/{provider}/login"),
    ("GET", "/auth/oidc/{provider}/callback"),
    ("GET", "/auth/me"),
    ("GET", "/colorbars"),
    ("GET", "/expressions/capabilities"),
    ("GET", "/conformance"),
    ("GET", "/tileMatrixSets"),
    ("GET", "/tileMatrixSets/{tms}"),
    ("GET", "/viewer/{name}"),
    ("GET", "/basemaps/{name}.geojson"),
    ("GET", "/s3"),
    ("GET", "/s3/"),
    ("HEAD", "/s3/{bucket}"),  # the three constant bucket names
    *(
        (method, path)
        for method in ("PUT", "POST", "DELETE", "PATCH")  # the same 405 to everyone
        for path in ("/s3/{bucket}", "/s3/{bucket}/", "/s3/{bucket}/{key:path}")
    ),
    ("GET", "/features"),
    ("GET", "/features/conformance"),
    ("GET", "/stac/conformance"),
    ("GET", "/stac/queryables"),  # fixed documents
}
DOC_ROUTES = {"/api", "/api.html", "/docs/oauth2-redirect"}
# A request for every route that reads or writes a cube; a new data route without one fails the test below.
# `path` fills path parameters other than the cube's id, which is always the restricted cube.
SAMPLES = {
    ("GET", "/cubes"): {},
    ("GET", "/cubes/{cube_id}"): {},
    ("PATCH", "/cubes/{cube_id}"): {"json": {"description": "edited by a granted editor"}},
    ("GET", "/tiles/{ds}/{var}/{z}/{y}/{x}"): {"path": {"var": "analysed_sst", "z": 4, "y": 4, "x": 8}},
    ("GET", "/datasets"): {"params": {"details": 1}},
    ("GET", "/datasets/{ds}"): {},
    ("GET", "/datasets/{ds}/coords/{dim}"): {"path": {"dim": "time"}},
    ("POST", "/timeseries/{ds}/{var}"): {
        "path": {"var": "analysed_sst"},
        "json": {"type": "Point", "coordinates": [20.0, 58.5]},
    },
    ("GET", "/statistics/{ds}/{var}"): {
        "path": {"var": "analysed_sst"},
        "params": {"lon": 20.0, "lat": 58.5},
    },
    ("POST", "/statistics/{ds}/{var}"): {
        "path": {"var": "analysed_sst"},
        "json": {"type": "Polygon", "coordinates": [[[18, 57], [22, 57], [22, 60], [18, 60], [18, 57]]]},
    },
    ("GET", "/wmts/1.0.0/WMTSCapabilities.xml"): {},
    ("GET", "/wmts/kvp"): {"params": {"Service": "WMTS", "Request": "GetCapabilities"}},
    ("GET", "/wmts/1.0.0/tile/{layer}/{style}/{time}/{tms}/{zoom}/{row}/{col}.png"): {
        "path": {
            "layer": f"{RESTRICTED}.analysed_sst",
            "style": "default",
            "time": "current",
            "tms": "WebMercatorQuad",
            "zoom": 4,
            "row": 4,
            "col": 8,
        }
    },
    ("GET", "/zarr/{ds}/{store}/{key:path}"): {"path": {"store": "0.zarr", "key:path": ".zmetadata"}},
    ("HEAD", "/zarr/{ds}/{store}/{key:path}"): {"path": {"store": "0.zarr", "key:path": ".zmetadata"}},
    ("GET", "/s3/{bucket}"): {"path": {"bucket": "datasets"}, "params": {"list-type": 2, "delimiter": "/"}},
    ("GET", "/s3/{bucket}/"): {"path": {"bucket": "datasets"}, "params": {"delimiter": "/"}},
    ("GET", "/s3/{bucket}/{key:path}"): {
        "path": {"bucket": "datasets", "key:path": f"{RESTRICTED}.zarr/.zmetadata"}
    },
    ("HEAD", "/s3/{bucket}/{key:path}"): {
        "path": {"bucket": "pyramids", "key:path": f"{RESTRICTED}.levels/0.zarr/.zmetadata"}
    },
    ("GET", "/tiles/{ds}/{var}/legend"): {"path": {"var": "analysed_sst"}},
    ("GET", "/places"): {},
    ("GET", "/places/{group}"): {},
    ("GET", "/datasets/{ds}/places/{group}"): {"path": {"group": "open-cube"}},
    ("GET", "/places/{group}/{place}/observations"): {"path": {"place": "0"}},
    ("GET", "/dashboards/{ds}/{var}/places/{group}/{place}"): {
        "path": {"var": "analysed_sst", "group": "open-cube", "place": "0"},
        "params": {"limits": "271,275,280,285"},
    },
    ("POST", "/dashboards/{ds}/{var}"): {
        "path": {"var": "analysed_sst"},
        "params": {"limits": "271,275,280,285"},
        "json": {"type": "Polygon", "coordinates": [[[18, 57], [22, 57], [22, 60], [18, 60], [18, 57]]]},
    },
    ("GET", "/features/collections"): {},
    ("GET", "/features/collections/{collectionId}"): {"path": {"collectionId": f"sec.{RESTRICTED}"}},
    ("GET", "/features/collections/{collectionId}/items"): {"path": {"collectionId": f"sec.{RESTRICTED}"}},
    ("GET", "/features/collections/{collectionId}/items/{featureId}"): {
        "path": {"collectionId": f"sec.{RESTRICTED}", "featureId": 1}
    },
    ("GET", "/features/collections/{collectionId}/items/{featureId}/observations"): {
        "path": {"collectionId": f"sec.{RESTRICTED}", "featureId": 1}
    },
    ("GET", "/features/collections/{collectionId}/queryables"): {
        "path": {"collectionId": f"sec.{RESTRICTED}"}
    },
    ("GET", "/features/collections/{collectionId}/count"): {"path": {"collectionId": f"sec.{RESTRICTED}"}},
    ("GET", "/features/collections/{collectionId}/export"): {
        "path": {"collectionId": f"sec.{RESTRICTED}"},
        "params": {"format": "gpkg"},
    },
    ("POST", "/features/collections/{collectionId}/copy"): {
        "path": {"collectionId": f"sec.{RESTRICTED}"},
        "json": {"database": "eva-db", "name": "copy"},
        "as": "eva",
    },  # copying needs the editor role
    ("POST", "/features/collections/{collectionId}/items"): {
        "path": {"collectionId": f"sec.{RESTRICTED}"},
        "json": {"type": "FeatureCollection", "features": [POINT]},
    },
    ("PUT", "/features/collections/{collectionId}/items/{featureId}"): {
        "path": {"collectionId": f"sec.{RESTRICTED}", "featureId": 1},
        "json": POINT,
    },
    ("DELETE", "/features/collections/{collectionId}/items/{featureId}"): {
        "path": {"collectionId": f"sec.{RESTRICTED}", "featureId": 2}
    },
    ("PATCH", "/features/collections/{collectionId}/items"): {
        "path": {"collectionId": f"sec.{RESTRICTED}"},
        "params": {"filter": "id > 0"},
        "json": {"properties": {"name": "changed"}},
    },
    ("DELETE", "/features/collections/{collectionId}/items"): {
        "path": {"collectionId": f"sec.{RESTRICTED}"},
        "params": {"filter": "id > 1000"},
    },
    ("PATCH", "/features/collections/{collectionId}"): {
        "path": {"collectionId": f"sec.{RESTRICTED}"},
        "json": {"title": "Renamed"},
    },
    ("DELETE", "/features/collections/{collectionId}"): {"path": {"collectionId": f"sec.{RESTRICTED}-drop"}},
    ("POST", "/features/collections/{collectionId}/rename"): {
        "path": {"collectionId": f"sec.{RESTRICTED}-old"},
        "json": {"name": f"{RESTRICTED}-new"},
    },
    ("GET", "/features/collections/{collectionId}/access"): {"path": {"collectionId": f"sec.{RESTRICTED}"}},
    ("PUT", "/features/collections/{collectionId}/access"): {
        "path": {"collectionId": f"sec.{RESTRICTED}"},
        "json": {"public": False},
    },
    ("POST", "/features/collections/{collectionId}/access/grants"): {
        "path": {"collectionId": f"sec.{RESTRICTED}"},
        "json": {"subject_type": "user", "subject": "zoe"},
    },
    ("DELETE", "/features/collections/{collectionId}/access/grants/{subjectType}/{subject}"): {
        "path": {"collectionId": f"sec.{RESTRICTED}", "subjectType": "user", "subject": "zoe"}
    },
    ("GET", "/stac"): {},
    ("GET", "/stac/collections"): {},
    ("GET", "/stac/collections/{collection}"): {},
    ("GET", "/stac/collections/{collection}/queryables"): {},
    ("GET", "/stac/collections/{collection}/items"): {},
    ("GET", "/stac/collections/{collection}/items/{item}"): {"path": {"item": PRODUCT}},
    ("GET", "/stac/collections/{collection}/items/{item}/files/{name}"): {
        "path": {"item": PRODUCT, "name": f"{PRODUCT}.nc"},
        "headers": {"Range": "bytes=0-99"},
    },
    ("HEAD", "/stac/collections/{collection}/items/{item}/files/{name}"): {
        "path": {"item": PRODUCT, "name": f"{PRODUCT}.nc"}
    },
    ("GET", "/stac/search"): {},
    ("POST", "/stac/search"): {"json": {"limit": 100}},
    ("GET", "/stac/sources"): {},  # sources "open-cube" (public) and RESTRICTED (for syke)
    ("GET", "/stac/sources/{name}/proxy"): {"path": {"name": RESTRICTED}, "params": {"href": "upstream"}},
    ("GET", "/collections"): {},
    ("GET", "/collections/{collection}"): {},
    ("GET", "/collections/{collection}/map/tiles"): {},
    ("GET", "/collections/{collection}/map/tiles/{tms}/{z}/{row}/{col}"): {
        "path": {"tms": "WebMercatorQuad", "z": 4, "row": 4, "col": 8}
    },
    ("GET", "/collections/{collection}/position"): {"params": {"coords": "POINT(20 58.5)"}},
    ("GET", "/collections/{collection}/area"): {
        "params": {"coords": "POLYGON((18 57, 22 57, 22 60, 18 60, 18 57))"}
    },
}
CUBE_PARAMS = ("{cube_id}", "{ds}", "{group}", "{collection}")


def routes(app):
    for route in iter_route_contexts(app.routes):
        if isinstance(route.original_route, APIRoute):
            for method in route.methods:
                yield method, route.path, route


def guards_of(dependant):
    found = [dependant.call] if isinstance(dependant.call, Guard) else []
    for sub in dependant.dependencies:
        found += guards_of(sub)
    return found


@pytest.fixture(scope="module")
def context(tmp_path_factory, data):
    context = context_with(tmp_path_factory.mktemp("access"), data, {"open-cube": "sst", RESTRICTED: "sst"})
    context.policy.set_access("cube", RESTRICTED, public=False, groups=["syke"])
    context.policy.grant("cube", RESTRICTED, "user", "eva", "write")
    station = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [20.0, 58.5]}, "properties": {}}
        ],
    }
    for group in ("open-cube", RESTRICTED):  # place groups, with the access of collections of those ids
        context.places.add(group, json.dumps(station).encode())
    context.policy.set_access("collection", RESTRICTED, public=False, groups=["syke"])
    # feature collections: the restricted ones for syke only, and eva may change them
    for name in ("open-cube", RESTRICTED, f"{RESTRICTED}-drop", f"{RESTRICTED}-old"):
        context.features.create(CollectionSpec("sec", name, {"name": "string"}))
        context.features.insert("sec", name, [POINT, POINT])
        if name != "open-cube":
            context.policy.set_access("collection", f"sec.{name}", public=False, groups=["syke"])
            context.policy.grant("collection", f"sec.{name}", "user", "eva", "write")
    product = open_fragment(str(data / "netcdf" / f"{PRODUCT}.nc"))
    for cube in ("open-cube", RESTRICTED):
        context.products.keep(cube, [product])
    add_users(context)
    with upstream(data / "netcdf") as url:
        for name in ("open-cube", RESTRICTED):  # STAC sources, the second for syke only
            context.stac_sources.add(Source(name, url))
        context.policy.set_access("service", f"stac-source:{RESTRICTED}", public=False, groups=["syke"])
        context.upstream = f"{url}/{PRODUCT}.nc"
        yield context
    context.close()


@contextlib.contextmanager
def upstream(folder):
    """A plain HTTP server of a folder: the origin the proxy route fetches from."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def keys(context):
    return {name: context.auth.create_key(name)[1] for name in ("leo", "mia", "eva")}


def test_every_route_declares_exactly_one_guard(client):
    seen_docs = set()
    for method, path, route in routes(client.app):
        guards = guards_of(route.dependant)
        assert len(guards) == 1, (
            f"{method} {path} must depend on exactly one Guard (api/security.py), has {guards}"
        )
        if guards[0].rule == "open":
            assert (method, path) in OPEN_ROUTES, f"{method} {path} is OPEN but may return data: guard it"
        if guards[0].rule in ("listing", "resource"):
            assert (method, path) in SAMPLES, f"add a sample request for {method} {path} to SAMPLES"
    for route in client.app.routes:
        if not isinstance(route, APIRoute) and getattr(route, "path", None) in DOC_ROUTES:
            seen_docs.add(route.path)
    assert seen_docs == DOC_ROUTES


def _call(client, method, path, headers):
    sample = dict(SAMPLES[(method, path)])
    sample.pop("as", None)
    url = path
    for name, value in {**{p.strip("{}"): RESTRICTED for p in CUBE_PARAMS}, **sample.pop("path", {})}.items():
        url = url.replace("{" + name + "}", str(value))
    if sample.get("params", {}).get("href") == "upstream":  # the proxy's origin, known once it runs
        sample["params"] = {"href": client.app.state.context.upstream}
    return client.request(method, url, headers={**headers, **sample.pop("headers", {})}, **sample)


def test_only_granted_callers_see_the_restricted_cube_on_every_data_route(client, keys):
    data_routes = [
        (m, p, r)
        for m, p, r in routes(client.app)
        if guards_of(r.dependant)[0].rule in ("listing", "resource")
    ]
    assert len(data_routes) == len(SAMPLES)
    for method, path, route in data_routes:
        guard = guards_of(route.dependant)[0]
        writes = guard.action == "write"
        granted = SAMPLES[(method, path)].get("as", "eva" if writes else "mia")
        if writes:  # a reader with the grant but without write permission sees it, may not change it
            assert _call(client, method, path, {"X-API-Key": keys["mia"]}).status_code == 403, (method, path)
        for caller, key in (("anonymous", None), ("wrong group", keys["leo"]), ("granted", keys[granted])):
            response = _call(client, method, path, {"X-API-Key": key} if key else {})
            if guard.rule == "listing":
                assert response.status_code == 200, (method, path, caller)
                assert (RESTRICTED in response.text) == (caller == "granted"), (method, path, caller)
                assert "open-cube" in response.text
            elif caller == "granted":
                assert response.is_success, (method, path, caller, response.text)
            else:
                assert response.status_code == 404, (method, path, caller, response.text)
                if method == "HEAD":  # no body to look at
                    continue
                # problem JSON, or S3 XML on /s3 (<Message>cube '...' not found</Message>)
                detail = (
                    response.json()["detail"] if "json" in response.headers["content-type"] else response.text
                )
                assert RESTRICTED in detail and "not found" in detail


def test_the_same_holds_for_bearer_keys_and_restricted_reads_are_audited(client, keys, context):
    bearer = {"Authorization": f"Bearer {keys['mia']}"}
    assert client.get(f"/cubes/{RESTRICTED}", headers=bearer).status_code == 200
    assert (
        client.get(f"/cubes/{RESTRICTED}", headers={"Authorization": f"Bearer {keys['leo']}"}).status_code
        == 404
    )
    reads = [e for e in context.auth.audit.query(event="restricted-read", user="mia") if e.kind == "cube"]
    assert (
        len(reads) == 1 and reads[0].resource_id == RESTRICTED
    )  # once per user and resource, not per request
