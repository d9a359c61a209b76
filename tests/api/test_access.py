"""Access on every route of the app.

Every route (API routes, plain routes, mounts) is declared here: a sample request, or the reason it returns
nothing protected. Then:
- a caller who may not read a restricted resource gets exactly the answer they get for one that does not
  exist (status, headers and body, apart from the id), on every sample that names one, second resources and
  search filters included; a granted caller gets it, and never as publicly cacheable;
- listings are measured (how many entries, the union of their extents) and must measure as the same app
  without the restricted resources does, rather than being searched for a name.
"""

import contextlib
import functools
import http.server
import json
import re
import threading
import xml.etree.ElementTree as ET

import pytest
import xarray as xr
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from helpers import SAMPLE_CUBES, add_users, context_with
from starlette.routing import Mount

from cubeport.api.app import create_app
from cubeport.api.security import Guard
from cubeport.auth.principal import Principal
from cubeport.cubes.readers import open_fragment
from cubeport.features.schema import CollectionSpec
from cubeport.stac.federation import Source

RESTRICTED = "secret-cube"
UNKNOWN = "absent-cube"  # the same length: answers compare byte for byte, Content-Length included
PRODUCT = "20170605120000-UKMO-L4_GHRSST-SSTfnd-OSTIAanom-GLOB-v02.0-fv02.0"  # a product of both cubes
SECRET_PRODUCT = "20170606120000-UKMO-L4_GHRSST-SSTfnd-OSTIAanom-GLOB-v02.0-fv02.0"  # of the restricted one
# what a request names that a caller may not see -> the same name for something that does not exist
HIDDEN = {RESTRICTED: UNKNOWN, SECRET_PRODUCT: SECRET_PRODUCT.replace("UKMO", "NONE")}
SECRET_JOB = "secret-job"  # mia's job: its id is known once it is made (see `build`)
MISSING = "no-such-cube"  # another resource that does not exist, for routes that read two
POINT = {
    "type": "Feature",
    "geometry": {"type": "Point", "coordinates": [20.0, 58.5]},
    "properties": {"name": "a"},
}
SECRET_POINT = {**POINT, "geometry": {"type": "Point", "coordinates": [25.0, 62.0]}}
POLYGON = {"type": "Polygon", "coordinates": [[[18, 57], [22, 57], [22, 60], [18, 60], [18, 57]]]}

# Routes that hold nothing protected, each with the reason. Adding one here is a decision.
SIGN_IN = "sign-in pages and the caller's own account: nothing of anyone else"
ADMINS = "admins only (ADMIN): an admin may read everything"
REASONS = {
    ("GET", "/"): "the landing document (links) or the viewer's page",
    ("GET", "/health"): "database and storage status",
    ("GET", "/api"): "the OpenAPI document",
    ("HEAD", "/api"): "the OpenAPI document",
    ("GET", "/api.html"): "the API documentation page",
    ("HEAD", "/api.html"): "the API documentation page",
    ("GET", "/docs/oauth2-redirect"): "the documentation page's sign-in helper",
    ("HEAD", "/docs/oauth2-redirect"): "the documentation page's sign-in helper",
    ("GET", "/auth/login"): SIGN_IN,
    ("POST", "/auth/login"): SIGN_IN,
    ("POST", "/auth/logout"): SIGN_IN,
    ("GET", "/auth/oidc/{provider}/login"): SIGN_IN,
    ("GET", "/auth/oidc/{provider}/callback"): SIGN_IN,
    ("GET", "/auth/me"): SIGN_IN,
    ("GET", "/auth/keys"): SIGN_IN,
    ("POST", "/auth/keys"): SIGN_IN,
    ("DELETE", "/auth/keys/{key_id}"): SIGN_IN,
    ("GET", "/features/databases"): "the caller's own feature databases (SIGNED_IN)",
    ("POST", "/features/collections"): "creates a collection in one of the caller's databases (SIGNED_IN)",
    ("GET", "/colorbars"): "colour maps: constants",
    ("GET", "/expressions/capabilities"): "a constant document",
    ("GET", "/conformance"): "a constant document",
    ("GET", "/tileMatrixSets"): "constants",
    ("GET", "/tileMatrixSets/{tms}"): "constants",
    ("GET", "/viewer/{name}"): "the viewer's built files",
    ("GET", "/basemaps/{name}.geojson"): "offline land polygons",
    ("GET", "/s3"): "the three constant bucket names",
    ("GET", "/s3/"): "the three constant bucket names",
    ("HEAD", "/s3/{bucket}"): "the three constant bucket names",
    **{
        (method, path): "the same 405 to everyone: the S3 interface is read-only"
        for method in ("PUT", "POST", "DELETE", "PATCH")
        for path in ("/s3/{bucket}", "/s3/{bucket}/", "/s3/{bucket}/{key:path}")
    },
    ("GET", "/features"): "a constant document",
    ("GET", "/features/conformance"): "a constant document",
    ("GET", "/stac/conformance"): "a constant document",
    ("GET", "/stac/queryables"): "a constant document",
    ("GET", "/jobs"): "the caller's own jobs (SIGNED_IN)",
    ("PUT", "/stac/sources/{name}"): ADMINS,
    ("DELETE", "/stac/sources/{name}"): ADMINS,
    ("GET", "/news"): "news items: public by nature (admins post them for everyone)",
    ("GET", "/news.atom"): "news items as an Atom feed: public by nature",
    ("GET", "/news/{item_id}"): "a news item: public by nature",
    ("POST", "/news"): ADMINS,
    ("PUT", "/news/{item_id}"): ADMINS,
    ("DELETE", "/news/{item_id}"): ADMINS,
}
ADMIN_PREFIXES = ("/admin/",)  # every route below them is ADMIN (checked), for the reason ADMINS
OPERATOR_PREFIXES = ("/ops/",)  # every route below them is OPERATOR: admins and the `operators` group

# A request for every route that lists or reads resources (a new one without a sample fails the test), or
# several. Path parameters in CUBE_PARAMS name the restricted cube unless `path` says otherwise; `as` is the
# granted caller (default: mia to read, eva to write); `granted` is the status a granted caller gets when not
# a success (the request names something else that does not exist).
CUBE_PARAMS = ("cube_id", "ds", "group", "collection")
FEATURES = f"sec.{RESTRICTED}"
SAMPLES = {
    ("GET", "/cubes"): {},
    ("GET", "/cubes/{cube_id}"): {},
    ("PATCH", "/cubes/{cube_id}"): {"json": {"description": "edited by a granted editor"}},
    ("GET", "/tiles/{ds}/{var}/{z}/{y}/{x}"): {"path": {"var": "analysed_sst", "z": 4, "y": 4, "x": 8}},
    ("GET", "/tiles/{ds}/{var}/legend"): {"path": {"var": "analysed_sst"}},
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
    ("POST", "/statistics/{ds}/{var}"): {"path": {"var": "analysed_sst"}, "json": POLYGON},
    ("GET", "/wmts/1.0.0/WMTSCapabilities.xml"): {},
    ("GET", "/wmts/kvp"): [
        {"params": {"Service": "WMTS", "Request": "GetCapabilities"}},
        *(
            {
                "params": {
                    "Service": "WMTS",
                    "Request": "GetTile",
                    "Layer": layer,
                    "TileMatrixSet": "WebMercatorQuad",
                    "TileMatrix": 4,
                    "TileRow": 4,
                    "TileCol": 8,
                },
                **extra,
            }
            for layer, extra in ((f"{RESTRICTED}.analysed_sst", {}), (RESTRICTED, {"granted": 404}))
        ),
    ],
    ("GET", "/wmts/1.0.0/tile/{layer}/{style}/{time}/{tms}/{zoom}/{row}/{col}.png"): [
        {
            "path": {
                "layer": layer,
                "style": "default",
                "time": "current",
                "tms": "WebMercatorQuad",
                "zoom": 4,
                "row": 4,
                "col": 8,
            },
            **extra,
        }
        for layer, extra in ((f"{RESTRICTED}.analysed_sst", {}), (RESTRICTED, {"granted": 404}))
    ],
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
    ("GET", "/places"): {},
    ("GET", "/places/{group}"): {},
    ("GET", "/datasets/{ds}/places/{group}"): [
        {"path": {"group": "open-cube"}},
        {"path": {"ds": "open-cube"}},  # the place group is the restricted resource
        {"path": {"ds": MISSING}, "granted": 404},
    ],
    ("GET", "/places/{group}/{place}/observations"): {"path": {"place": "0"}},
    ("GET", "/dashboards/{ds}/{var}/places/{group}/{place}"): [
        {
            "path": {"var": "analysed_sst", "group": "open-cube", "place": "0"},
            "params": {"limits": "271,275,280,285"},
        },
        {
            "path": {"ds": "open-cube", "var": "analysed_sst", "place": "0"},
            "params": {"limits": "271,275,280,285"},
        },
        {
            "path": {"ds": MISSING, "var": "analysed_sst", "place": "0"},
            "params": {"limits": "271,275,280,285"},
            "granted": 404,
        },
    ],
    ("POST", "/dashboards/{ds}/{var}"): {
        "path": {"var": "analysed_sst"},
        "params": {"limits": "271,275,280,285"},
        "json": POLYGON,
    },
    ("GET", "/features/collections"): {},
    ("GET", "/features/collections/{collectionId}"): {"path": {"collectionId": FEATURES}},
    ("GET", "/features/collections/{collectionId}/items"): {"path": {"collectionId": FEATURES}},
    ("GET", "/features/collections/{collectionId}/items/{featureId}"): {
        "path": {"collectionId": FEATURES, "featureId": 1}
    },
    ("GET", "/features/collections/{collectionId}/items/{featureId}/observations"): {
        "path": {"collectionId": FEATURES, "featureId": 1}
    },
    ("GET", "/features/collections/{collectionId}/queryables"): {"path": {"collectionId": FEATURES}},
    ("GET", "/features/collections/{collectionId}/count"): {"path": {"collectionId": FEATURES}},
    ("GET", "/features/collections/{collectionId}/export"): {
        "path": {"collectionId": FEATURES},
        "params": {"format": "gpkg"},
    },
    ("POST", "/features/collections/{collectionId}/copy"): {
        "path": {"collectionId": FEATURES},
        "json": {"database": "eva-db", "name": "copy"},
        "as": "eva",
    },  # copying needs the editor role
    ("POST", "/features/collections/{collectionId}/items"): {
        "path": {"collectionId": FEATURES},
        "json": {"type": "FeatureCollection", "features": [POINT]},
    },
    ("PUT", "/features/collections/{collectionId}/items/{featureId}"): {
        "path": {"collectionId": FEATURES, "featureId": 1},
        "json": POINT,
    },
    ("DELETE", "/features/collections/{collectionId}/items/{featureId}"): {
        "path": {"collectionId": FEATURES, "featureId": 2}
    },
    ("PATCH", "/features/collections/{collectionId}/items"): {
        "path": {"collectionId": FEATURES},
        "params": {"filter": "id > 0"},
        "json": {"properties": {"name": "changed"}},
    },
    ("DELETE", "/features/collections/{collectionId}/items"): {
        "path": {"collectionId": FEATURES},
        "params": {"filter": "id > 1000"},
    },
    ("PATCH", "/features/collections/{collectionId}"): {
        "path": {"collectionId": FEATURES},
        "json": {"title": "Renamed"},
    },
    ("DELETE", "/features/collections/{collectionId}"): {"path": {"collectionId": f"{FEATURES}-drop"}},
    ("POST", "/features/collections/{collectionId}/rename"): {
        "path": {"collectionId": f"{FEATURES}-old"},
        "json": {"name": f"{RESTRICTED}-new"},
    },
    ("GET", "/features/collections/{collectionId}/access"): {"path": {"collectionId": FEATURES}},
    ("PUT", "/features/collections/{collectionId}/access"): {
        "path": {"collectionId": FEATURES},
        "json": {"public": False},
    },
    ("POST", "/features/collections/{collectionId}/access/grants"): {
        "path": {"collectionId": FEATURES},
        "json": {"subject_type": "user", "subject": "zoe"},
    },
    ("DELETE", "/features/collections/{collectionId}/access/grants/{subjectType}/{subject}"): {
        "path": {"collectionId": FEATURES, "subjectType": "user", "subject": "zoe"}
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
    ("GET", "/stac/search"): [
        {},
        {"params": {"collections": RESTRICTED}},
        {"params": {"collections": f"open-cube,{RESTRICTED}"}},
        {"params": {"ids": SECRET_PRODUCT}},
        {"params": {"sources": RESTRICTED}},
    ],
    ("POST", "/stac/search"): [
        {"json": {"limit": 100}},
        {"json": {"collections": [RESTRICTED]}},
        {"json": {"ids": [SECRET_PRODUCT]}},
        {"json": {"sources": [RESTRICTED]}},
    ],
    ("GET", "/stac/sources"): {},  # sources "open-cube" (public) and RESTRICTED (for syke)
    ("GET", "/stac/sources/{name}/proxy"): {"path": {"name": RESTRICTED}, "params": {"href": "upstream"}},
    ("GET", "/processes"): {},
    ("GET", "/processes/{process_id}"): {"path": {"process_id": RESTRICTED}},
    ("POST", "/processes/{process_id}/execution"): {
        "path": {"process_id": RESTRICTED},
        "json": {"inputs": {"cube": "open-cube"}},
        "headers": {"Prefer": "respond-async"},
    },
    ("GET", "/jobs/{job_id}"): {"path": {"job_id": SECRET_JOB}},
    ("DELETE", "/jobs/{job_id}"): {"path": {"job_id": SECRET_JOB}},
    ("GET", "/jobs/{job_id}/results"): {"path": {"job_id": SECRET_JOB}},
    ("GET", "/jobs/{job_id}/results/{name}"): {"path": {"job_id": SECRET_JOB, "name": "result"}},
    ("GET", "/jobs/{job_id}/item"): {"path": {"job_id": SECRET_JOB}},
    ("GET", "/jobs/{job_id}/logs"): [
        {"path": {"job_id": SECRET_JOB}},
        {"path": {"job_id": SECRET_JOB}, "params": {"follow": True}},
    ],
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


# -- listings: measured, not searched for names --------------------------------------------------------------
def _union(boxes):
    boxes = [b for b in boxes if b]
    if not boxes:
        return None
    return tuple(round(f(b[i] for b in boxes), 3) for i, f in ((0, min), (1, min), (2, max), (3, max)))


def _json_list(key, box=None):
    def measure(response):
        entries = response.json()[key]
        return len(entries), _union(box(e) for e in entries) if box else None

    return measure


def _spatial(entry):
    return entry.get("extent", {}).get("spatial", {}).get("bbox", [None])[0]


def _xml_measure(response):
    root = ET.fromstring(response.content)
    names = [e.tag.rpartition("}")[2] for e in root.iter()]
    if root.tag.endswith("ListBucketResult"):
        return names.count("Contents") + names.count("CommonPrefixes"), None
    boxes = []
    for box in root.iter("{http://www.opengis.net/ows/1.1}WGS84BoundingBox"):
        lower, upper = (list(map(float, e.text.split())) for e in box)
        boxes.append([*lower, *upper])
    return names.count("Layer"), _union(boxes)


MEASURES = {
    ("GET", "/cubes"): _json_list("cubes", lambda e: e["bbox"]),
    ("GET", "/datasets"): _json_list("datasets", lambda e: e["bbox"]),
    ("GET", "/places"): _json_list("placeGroups"),
    ("GET", "/wmts/1.0.0/WMTSCapabilities.xml"): _xml_measure,
    ("GET", "/wmts/kvp"): _xml_measure,
    ("GET", "/s3/{bucket}"): _xml_measure,
    ("GET", "/s3/{bucket}/"): _xml_measure,
    ("GET", "/features/collections"): _json_list("collections", _spatial),
    ("GET", "/stac"): lambda r: (sum(link["rel"] == "child" for link in r.json()["links"]), None),
    ("GET", "/stac/collections"): _json_list("collections", _spatial),
    ("GET", "/stac/search"): _json_list("features", lambda e: e.get("bbox")),
    ("POST", "/stac/search"): _json_list("features", lambda e: e.get("bbox")),
    ("GET", "/stac/sources"): _json_list("sources"),
    ("GET", "/collections"): _json_list("collections", _spatial),
    ("GET", "/processes"): _json_list("processes"),
}


SECRET_PROCESS = f"""
from cubeport.processes import Cube, process


@process("{RESTRICTED}", title="A process for one group")
def secret(cube: Cube) -> dict:
    return {{"variables": sorted(cube.data_vars)}}
"""


# -- the app, and the same app without the restricted resources -----------------------------------------------
def build(root, data, upstream_url, east, *, restricted):
    """The cubes, place groups, feature collections, products and STAC sources the samples name; the restricted
    ones (for group syke; eva may change them) cover other places, so that extents tell them apart."""
    cubes = {"open-cube": str(east), **({RESTRICTED: "sst"} if restricted else {})}
    context = context_with(root, data, cubes)
    if restricted:
        context.policy.set_access("cube", RESTRICTED, public=False, groups=["syke"])
        context.policy.grant("cube", RESTRICTED, "user", "eva", "write")
    eva = Principal("eva", role="editor", groups=frozenset({"syke"}))
    for database in ("sec", "eva-db"):  # eva's: she shares the collections of sec and copies to eva-db
        context.sharing.claim(eva, database)
    station = {"type": "FeatureCollection", "features": [{**POINT, "properties": {}}]}
    names = ["open-cube", *([RESTRICTED, f"{RESTRICTED}-drop", f"{RESTRICTED}-old"] if restricted else [])]
    for name in names:
        if name != "open-cube":
            context.policy.set_access("collection", f"sec.{name}", public=False, groups=["syke"])
            context.policy.grant("collection", f"sec.{name}", "user", "eva", "write")
        context.features.create(CollectionSpec("sec", name, {"name": "string"}))
        context.features.insert("sec", name, [POINT, POINT] if name == "open-cube" else [SECRET_POINT] * 2)
    for group in names[:2]:  # place groups, with the access of collections of their ids
        if group != "open-cube":
            context.policy.set_access("collection", group, public=False, groups=["syke"])
        context.places.add(group, json.dumps(station).encode())
    netcdf = data / "netcdf"
    context.products.keep("open-cube", [open_fragment(str(netcdf / f"{PRODUCT}.nc"))])
    if restricted:
        context.products.keep(
            RESTRICTED, [open_fragment(str(netcdf / f"{p}.nc")) for p in (PRODUCT, SECRET_PRODUCT)]
        )
    for name in names[:2]:  # STAC sources, the restricted one for syke only
        context.stac_sources.add(Source(name, upstream_url))
        if name != "open-cube":
            context.policy.set_access("service", f"stac-source:{name}", public=False, groups=["syke"])
    add_users(context)
    context.upstream = f"{upstream_url}/{PRODUCT}.nc"
    if restricted:  # a process for syke only, and a finished job of mia's with a file output
        folder = root / "user-processes"
        folder.mkdir()
        (folder / "secret.py").write_text(SECRET_PROCESS)
        context.settings.processing.user_processes = str(folder)
        context.policy.set_access("process", RESTRICTED, public=False, groups=["syke"])
        mia = Principal("mia", groups=frozenset({"syke"}), via="password")
        job = context.processing.submit(mia, RESTRICTED, {"cube": "open-cube"})
        context.storage.write_bytes_atomic(b"a file output", "jobs", job.id, "out.txt")
        context.jobs.finish(
            job.id, "successful", "done", results={"result": {"kind": "file", "name": "out.txt"}}
        )
        context.secret_job = job.id
        HIDDEN[job.id] = "0" * len(job.id)
    return context


@pytest.fixture(scope="module")
def east(tmp_path_factory, data):
    """The sample SST cube east of 15 degrees: the open cube, smaller than the restricted (whole) one."""
    path = tmp_path_factory.mktemp("east") / "east.zarr"
    cube = xr.open_zarr(data / "cubes" / SAMPLE_CUBES["sst"]).sel(lon=slice(15, None))
    for variable in cube.variables.values():
        variable.encoding = {}
    cube.to_zarr(path, zarr_format=2, consolidated=True)
    return path


@pytest.fixture(scope="module")
def upstream_url(data):
    with upstream(data / "netcdf") as url:
        yield url


@pytest.fixture(scope="module")
def context(tmp_path_factory, data, upstream_url, east):
    context = build(tmp_path_factory.mktemp("access"), data, upstream_url, east, restricted=True)
    yield context
    context.close()


@pytest.fixture(scope="module")
def reference(tmp_path_factory, data, upstream_url, east):
    """The same app without the restricted resources: what a caller who may not see them must see."""
    context = build(tmp_path_factory.mktemp("reference"), data, upstream_url, east, restricted=False)
    with TestClient(create_app(context), raise_server_exceptions=False) as client:
        yield client
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


# -- walking the routes --------------------------------------------------------------------------------------
def all_routes(routes, prefix=""):
    """(method, path, route, guards) of every route: API routes (guards: their Guard dependencies), plain
    routes and the routes of mounted apps (guards None); a mount without routes (static files) as method '*'."""
    for found in iter_route_contexts(routes):
        route = found.original_route
        if isinstance(route, APIRoute):
            for method in found.methods:
                yield method, prefix + found.path, route, guards_of(found.dependant)
        elif isinstance(route, Mount):
            inner = getattr(route.app, "routes", None)
            if inner:
                yield from all_routes(inner, prefix + route.path)
            else:
                yield "*", prefix + route.path, route, None
        else:
            for method in getattr(route, "methods", None) or ["*"]:
                yield method, prefix + route.path, route, None


def guards_of(dependant):
    found = [dependant.call] if isinstance(dependant.call, Guard) else []
    for sub in dependant.dependencies:
        found += guards_of(sub)
    return found


def requests_of(method, path):
    sample = SAMPLES[(method, path)]
    return sample if isinstance(sample, list) else [sample]


def _url(path, values):
    for name, value in values.items():
        path = path.replace("{" + name + "}", str(value))
    return path


def _prepare(client, method, path, sample):
    """The sample as (url, request keyword arguments)."""
    sample = dict(sample)
    for key in ("as", "granted"):
        sample.pop(key, None)
    url = _url(path, {**dict.fromkeys(CUBE_PARAMS, RESTRICTED), **sample.pop("path", {})})
    url = url.replace(SECRET_JOB, getattr(client.app.state.context, "secret_job", SECRET_JOB))
    if sample.get("params", {}).get("href") == "upstream":  # the proxy's origin, known once it runs
        sample["params"] = {"href": client.app.state.context.upstream}
    return url, sample


def _call(client, method, url, sample, key=None, hidden=False):
    """The request as a caller with `key` sends it; with `hidden`, for what does not exist instead."""
    text = json.dumps([url, sample])
    if hidden:
        for name, unknown in HIDDEN.items():
            text = text.replace(name, unknown)
    url, sample = json.loads(text)
    headers = {**sample.pop("headers", {}), **({"X-API-Key": key} if key else {})}
    return client.request(method, url, headers=headers, **sample)


def names_hidden(url, sample):
    text = json.dumps([url, sample])
    return any(name in text for name in HIDDEN)


def answer(response):
    """What a caller can tell from a response, with hidden names replaced by their unknown twins."""
    text = response.text
    headers = {k: v for k, v in response.headers.items() if k not in ("date", "x-amz-request-id")}
    for name, unknown in HIDDEN.items():
        text = text.replace(name, unknown)
        headers = {k: v.replace(name, unknown) for k, v in headers.items()}
    return response.status_code, headers, re.sub(r"<RequestId>\w*</RequestId>", "", text)


def _difference(hidden, missing):
    """What tells a hidden resource from a missing one, short."""
    (status, headers, body), (status2, headers2, body2) = hidden, missing
    changed = {k: (headers.get(k), headers2.get(k)) for k in set(headers) | set(headers2)}
    return (
        f"status {status} vs {status2}",
        {k: v for k, v in changed.items() if v[0] != v[1] and k != "content-length"},
        f"hidden: {body[:200]}",
        f"missing: {body2[:200]}",
    )


# -- the tests -----------------------------------------------------------------------------------------------
def test_every_route_is_declared_with_exactly_one_guard(client):
    found = set()
    for method, path, _route, guards in all_routes(client.app.routes):
        found.add((method, path))
        if guards is None:  # plain routes and mounts: no guard can run, so they must hold nothing
            assert (method, path) in REASONS, f"{method} {path} is not an API route: add why it is safe"
            continue
        assert len(guards) == 1, (
            f"{method} {path} must depend on exactly one Guard (api/security.py): {guards}"
        )
        guard = guards[0]
        if guard.rule in ("listing", "resource"):
            assert (method, path) in SAMPLES, f"add a sample request for {method} {path} to SAMPLES"
            assert (method, path) not in REASONS
        elif (
            guard.rule == "admin"
            and path.startswith(ADMIN_PREFIXES)
            or guard.rule == "operator"
            and path.startswith(OPERATOR_PREFIXES)
        ):
            assert (method, path) not in SAMPLES
        else:
            assert (method, path) in REASONS, (
                f"{method} {path} is {guard.rule}: add why it is safe to REASONS"
            )
            assert guard.rule != "admin" or REASONS[(method, path)] == ADMINS
        if guard.rule == "resource":  # the guard reads the path parameter, nothing else
            assert "{" + guard.param in path, (
                f"{method} {path}: guard parameter {guard.param!r} not in the path"
            )
        if path.startswith(ADMIN_PREFIXES):
            assert guard.rule == "admin", f"{method} {path} is under an admin prefix but {guard.rule}"
        if path.startswith(OPERATOR_PREFIXES):
            assert guard.rule == "operator", f"{method} {path} is under an operations prefix but {guard.rule}"
    assert not (set(SAMPLES) | set(REASONS)) - found, "SAMPLES or REASONS name routes the app does not have"
    assert set(MEASURES) <= set(SAMPLES)


def test_signed_in_and_admin_routes_refuse_others(client, keys):
    for method, path, _route, guards in all_routes(client.app.routes):
        if not guards or guards[0].rule not in ("signed-in", "admin", "operator") or method == "HEAD":
            continue
        url = re.sub(r"\{[^}]+\}", "x", path)
        assert client.request(method, url).status_code == 401, (method, path)
        if guards[0].rule in ("admin", "operator"):
            assert client.request(method, url, headers={"X-API-Key": keys["mia"]}).status_code == 403


def test_listings_measure_as_without_the_restricted_resources(client, reference, keys):
    listings = [(m, p) for m, p, _r, g in all_routes(client.app.routes) if g and g[0].rule == "listing"]
    for method, path in listings:
        for sample in requests_of(method, path):
            url, request = _prepare(client, method, path, sample)
            if names_hidden(url, request):
                continue  # a search naming a hidden resource: compared in the next test
            assert (method, path) in MEASURES, f"add how to measure {method} {path} to MEASURES"
            measure = MEASURES[(method, path)]
            ref_url, ref_request = _prepare(reference, method, path, sample)
            expected = measure(_call(reference, method, ref_url, ref_request))
            for caller in (None, "leo"):
                response = _call(client, method, url, request, keys.get(caller))
                assert response.status_code == 200, (method, url, caller, response.text)
                assert measure(response) == expected, (method, url, caller)
            granted = measure(_call(client, method, url, request, keys["mia"]))
            assert granted[0] > expected[0], (method, url, "the granted caller sees more", granted, expected)


def test_hidden_resources_answer_as_missing_ones_on_every_route(client, keys):
    failures = []
    for method, path, _route, guards in all_routes(client.app.routes):
        if not guards or guards[0].rule not in ("listing", "resource"):
            continue
        guard = guards[0]
        writes = guard.action == "write"
        for sample in requests_of(method, path):
            url, request = _prepare(client, method, path, sample)
            if not names_hidden(url, request):
                assert guard.rule == "listing", f"{method} {path}: a sample must name a restricted resource"
                continue
            if writes:  # a reader with the grant but without write permission sees it, may not change it
                refused = _call(client, method, url, request, keys["mia"])
                if refused.status_code != 403:
                    failures.append((method, url, "reader writes", refused.status_code))
            for caller in (None, "leo"):
                hidden = _call(client, method, url, request, keys.get(caller))
                missing = _call(client, method, url, request, keys.get(caller), hidden=True)
                if answer(hidden) != answer(missing):
                    failures.append((method, url, caller, *_difference(answer(hidden), answer(missing))))
                elif guard.rule == "resource" and hidden.status_code != 404:
                    failures.append((method, url, caller, "not 404", hidden.status_code))
            granted = _call(client, method, url, request, keys[sample.get("as", "eva" if writes else "mia")])
            if "granted" in sample:
                ok = granted.status_code == sample["granted"]
            else:
                ok = granted.is_success and "public" not in granted.headers.get("cache-control", "")
            if not ok:
                failures.append(
                    (method, url, "granted", granted.status_code, granted.headers.get("cache-control"))
                )
    assert not failures, "\n".join(map(repr, failures))


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
