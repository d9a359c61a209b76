"""A bounded schemathesis run over the whole OpenAPI document (`/api`), as anonymous and as a signed-in
member of a group, against the app in-process (ASGI: its middleware and lifespan included) on real data:
the demo cube, places and feature collections, a restricted sample cube with a STAC item, and feature
collections the member may change.

Every operation gets the examples, coverage and fuzzing phases with a fixed seed and derandomized
generation, so a run repeats; there is no Hypothesis database, and its caches go to the temporary folder,
so nothing is written into the checkout.
A case fails on a 5xx (`not_a_server_error`), on a body that contradicts its declared schema
(`response_schema_conformance`), and on an error that is not problem JSON (`problem_json`, below).

Left out, because the document cannot satisfy them as FastAPI writes it: `status_code_conformance`
(operations declare only their success code and 422, while the API answers 400, 401, 403, 404, 405, 409
and 413 with problem JSON by design) and `content_type_conformance` (routes that return PNG, XML, Zarr
chunks or files declare only `application/json`, and errors are `application/problem+json`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from helpers import add_users, context_with
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from cubeport.cubes.readers import open_fragment
from cubeport.demo import DEMO_CUBE, STATIONS, build_demo
from cubeport.features.schema import CollectionSpec

pytestmark = pytest.mark.slow

SEED = 19
MAX_EXAMPLES = 15  # per operation and caller in the fuzzing phase; examples and coverage phases add theirs
RESTRICTED = "sst"  # the OSTIA sample cube, for group syke only
PRODUCT = "20170605120000-UKMO-L4_GHRSST-SSTfnd-OSTIAanom-GLOB-v02.0-fv02.0"
MEMBER = ("eva", "editor", "syke")
SCRATCH = "fuzz.scratch"  # feature collections the member may change; the fuzzer drops or renames SPARE
SPARE = "fuzz.spare"
DROPS = {
    ("DELETE", "/features/collections/{collectionId}"),
    ("POST", "/features/collections/{collectionId}/rename"),
}
POINT = {
    "type": "Feature",
    "geometry": {"type": "Point", "coordinates": [20.0, 58.5]},
    "properties": {"name": "a"},
}

# Real values for path parameters, offered beside the generated ones so that cases get past the lookup
# of the resource and into the handler.
KNOWN: dict[str, list[object]] = {
    "cube_id": [DEMO_CUBE, RESTRICTED],
    "ds": [DEMO_CUBE, RESTRICTED],
    "collection": [DEMO_CUBE, RESTRICTED],
    "var": ["chl", "sst", "analysed_sst"],
    "dim": ["time", "lat", "lon"],
    "group": ["stations", "water-bodies"],
    "place": [name.split(" ")[0] for name in STATIONS] + [1, 2],
    "collectionId": ["demo.stations", "demo.water-bodies", SCRATCH],
    "featureId": [1, 2, 3],
    "item": [PRODUCT],
    "name": [f"{PRODUCT}.nc"],
    "tms": ["WebMercatorQuad", "WorldCRS84Quad"],
    "z": [0, 3, 5],
    "zoom": [0, 3, 5],
    "x": [0, 8, 17],
    "col": [0, 8, 17],
    "y": [0, 4, 9],
    "row": [0, 4, 9],
    "layer": [f"{DEMO_CUBE}.chl", f"{RESTRICTED}.analysed_sst"],
    "style": ["default"],
    "time": ["current", "2024-06-03T10:00:00Z"],
    "store": ["0.zarr", "1.zarr", "timeseries.zarr"],
    "key": [".zmetadata", "chl/.zarray", "chl/0.0.0", f"{DEMO_CUBE}.zarr/.zmetadata"],
    "bucket": ["datasets", "pyramids"],
}
# ... and for query parameters (dropped too, where optional: generated values for all of them rarely pass).
KNOWN_QUERY: dict[str, list[object]] = {
    "aggMethods": ["mean", "mean,max,count"],
    "bbox": ["18,57,22,60", "-180,-90,180,90"],
    "cmap": ["viridis", "thermal_r"],
    "colormap": ["viridis"],
    "collections": [DEMO_CUBE, RESTRICTED, f"{DEMO_CUBE},{RESTRICTED}"],
    "coords": ["POINT(20 58.5)", "POLYGON((18 57, 22 57, 22 60, 18 60, 18 57))"],
    "datetime": ["2024-06-01T00:00:00Z/..", "2024-06-03T10:00:00Z", "2017-06-05T12:00:00Z"],
    "startDate": ["2024-06-01"],
    "endDate": ["2024-06-10"],
    "filter": ["name = 'a'", "id > 1", "NOT (id > 1)", "S_INTERSECTS(geometry, POINT(20 58.5))"],
    "filter-lang": ["cql2-text"],
    "ids": [PRODUCT],
    "lat": [58.5, 60.1],
    "lon": [20.0, 24.8],
    "limits": ["1,2,4,8"],
    "parameter": ["chl", "sst"],
    "parameter-name": ["chl"],
    "variable": ["chl"],
    "sortby": ["id", "-datetime"],
    "time": ["current", "2024-06-03T10:00:00Z"],
}
_OMIT = object()
# WMTS KVP reads its parameters from the raw query string, so the document declares none
_TILE = {"Service": "WMTS", "Request": "GetTile", "Style": "default", "TileMatrixSet": "WebMercatorQuad"}
KVP = [
    {"Service": "WMTS", "Request": "GetCapabilities"},
    {
        **_TILE,
        "Layer": f"{DEMO_CUBE}.chl",
        "TileMatrix": "5",
        "TileRow": "9",
        "TileCol": "17",
        "Format": "image/png",
    },
    {**_TILE, "Layer": f"{RESTRICTED}.analysed_sst", "TileMatrix": "3", "TileRow": "4", "TileCol": "8"},
]

# GeoJSON for the bodies the document can only call "object": anywhere on (and off) the globe.
_position = st.tuples(
    st.floats(-200, 200, allow_nan=False, allow_infinity=False),
    st.floats(-100, 100, allow_nan=False, allow_infinity=False),
).map(list)
_point = _position.map(lambda p: {"type": "Point", "coordinates": p})
_polygon = st.lists(_position, min_size=1, max_size=12).map(
    lambda ring: {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}
)
_geometry = st.one_of(_point, _polygon)
_feature = _geometry.map(lambda g: {"type": "Feature", "geometry": g, "properties": {"name": "fuzz"}})
_features = st.lists(_feature, max_size=5).map(lambda fs: {"type": "FeatureCollection", "features": fs})
GEOJSON_BODIES = {
    ("POST", "/timeseries/{ds}/{var}"): st.one_of(_geometry, _feature, _features),
    ("POST", "/statistics/{ds}/{var}"): st.one_of(_geometry, _feature, _features),
    ("POST", "/dashboards/{ds}/{var}"): st.one_of(_geometry, _feature, _features),
    ("POST", "/features/collections/{collectionId}/items"): st.one_of(_feature, _features),
    ("PUT", "/features/collections/{collectionId}/items/{featureId}"): _feature,
}


def _document() -> dict[str, Any]:
    """The OpenAPI document the app serves at /api. FastAPI derives it from the routes alone, so an app on a
    data root that is never touched gives it at collection time, when the pytest integration needs it."""
    from cubeport.api.app import create_app
    from cubeport.config import load_settings

    unused = Path(tempfile.gettempdir()) / "cubeport-fuzz-unused"
    return create_app(load_settings(data_root=str(unused))).openapi()


# Hypothesis keeps caches (source constants, Unicode tables) in ./.hypothesis: keep them out of the checkout
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "cubeport-fuzz-hypothesis")
DOCUMENT = _document()
schema = schemathesis.openapi.from_dict(DOCUMENT)
schema.config.seed = SEED
schema.config.generation.update(
    max_examples=MAX_EXAMPLES,
    deterministic=True,
    database="none",
    no_shrink=True,
    with_security_parameters=False,
)
schema.config.checks.update(included_check_names=["not_a_server_error", "response_schema_conformance"])


def _operation(context) -> tuple[str, str]:
    return context.operation.method.upper(), context.operation.path


@schema.hook
def flatmap_path_parameters(context, path_parameters):
    """Offer real resources beside the generated values; operations that drop a collection get SPARE."""
    known = dict(KNOWN)
    if _operation(context) in DROPS:
        known["collectionId"] = [SPARE]
    return st.fixed_dictionaries(
        {
            name: st.sampled_from([value, *known[name]]) if name in known else st.just(value)
            for name, value in (path_parameters or {}).items()
        }
    )


@schema.hook
def flatmap_query(context, query):
    """Offer real values, and leaving an optional parameter out, beside each generated value."""
    if _operation(context) == ("GET", "/wmts/kvp"):
        return st.sampled_from([query or {}, *KVP])
    required = {parameter.name for parameter in context.operation.query if parameter.is_required}
    choices = {
        name: st.sampled_from([value, *KNOWN_QUERY.get(name, []), *([] if name in required else [_OMIT])])
        for name, value in (query or {}).items()
    }
    return st.fixed_dictionaries(choices).map(lambda q: {k: v for k, v in q.items() if v is not _OMIT})


@schema.hook
def flatmap_body(context, body):
    """GeoJSON beside the generated body where the operation reads GeoJSON."""
    geojson = GEOJSON_BODIES.get(_operation(context))
    return st.just(body) if geojson is None else st.one_of(st.just(body), geojson)


def problem_json(ctx, response, case) -> None:
    """Every error is RFC 9457 problem JSON with its own status (the /s3 routes answer S3 XML, as S3 does)."""
    if response.status_code < 400 or case.method.upper() == "HEAD" or case.path.startswith("/s3"):
        return
    media_type = (response.headers.get("content-type") or [""])[0]
    assert media_type.startswith("application/problem+json"), (
        f"{response.status_code} error as {media_type!r}"
    )
    body = response.json()
    assert body.get("status") == response.status_code and isinstance(body.get("detail"), str), body


@pytest.fixture(scope="module")
def context(tmp_path_factory, data):
    context = context_with(tmp_path_factory.mktemp("fuzz"), data, {RESTRICTED: "sst"})
    build_demo(context, days=16)
    context.policy.set_access("cube", RESTRICTED, public=False, groups=["syke"])
    product = open_fragment(str(data / "netcdf" / f"{PRODUCT}.nc"))
    for cube in (DEMO_CUBE, RESTRICTED):  # a STAC item each, one that everyone sees and one for syke
        context.products.keep(cube, [product])
    add_users(context, [MEMBER])
    for collection in (SCRATCH, SPARE):
        database, name = collection.split(".")
        context.features.create(CollectionSpec(database, name, {"name": "string"}))
        context.features.insert(database, name, [POINT, POINT])
        context.policy.set_access("collection", collection, public=False, groups=["syke"])
        context.policy.grant("collection", collection, "user", MEMBER[0], "write")
    yield context
    context.close()


@pytest.fixture(scope="module")
def app(context):
    from cubeport.api.app import create_app

    return create_app(context)


@pytest.fixture(scope="module", params=["anonymous", "member"])
def credentials(request, context):
    if request.param == "anonymous":
        return {}
    return {"X-API-Key": context.auth.create_key(MEMBER[0])[1]}


@schema.parametrize()
def test_no_server_error_and_every_answer_matches_its_schema(case, app, credentials):
    case.call_and_validate(app=app, headers=credentials, additional_checks=[problem_json])


def test_the_fuzzed_document_is_the_one_the_app_serves(client):
    assert client.get("/api").json() == DOCUMENT


def test_the_known_values_name_real_resources(context):
    """The values offered to the fuzzer exist, so its cases do reach the handlers."""
    assert {DEMO_CUBE, RESTRICTED} <= {entry.id for entry in context.catalogue.list()}
    assert set(KNOWN["group"]) <= set(context.places.ids())
    stations = {str(f["id"]) for f in context.places.get("stations")["features"]}
    assert stations <= set(map(str, KNOWN["place"]))
    assert {c.name for c in context.features.list("demo")} == {"stations", "water-bodies"}
