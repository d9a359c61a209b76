"""OGC API Features (Part 1, core and GeoJSON) over the feature store, rooted at `/features` so that feature
collections (ids `database.name`) never share a namespace with the cubes of `/collections`. Each collection
has the access of the resource ("collection", its id). Geometries come out in CRS84 (lon/lat)."""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import urlencode

import shapely
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pyproj import Transformer

from cubeport.api.deps import get_context
from cubeport.api.security import OPEN, listing, resource
from cubeport.auth.principal import Principal
from cubeport.context import Context
from cubeport.errors import InputError, NotFoundError
from cubeport.features.schema import CollectionSpec

router = APIRouter(prefix="/features", tags=["features"])
ContextDep = Annotated[Context, Depends(get_context)]
CollectionId = Annotated[str, Path(alias="collectionId", max_length=100, description="database.collection")]
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
GEOJSON = "application/geo+json"
MAX_LIMIT = 10_000
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
]


def split_id(collection_id: str) -> tuple[str, str]:
    database, _, name = collection_id.partition(".")
    if not name:
        raise NotFoundError(f"collection {collection_id!r} not found; ids are database.collection")
    return database, name


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/features"


def collection_json(spec: CollectionSpec, base: str) -> dict[str, Any]:
    url = f"{base}/collections/{spec.id}"
    links = [{"rel": "self", "href": url, "type": "application/json"},
             {"rel": "items", "href": f"{url}/items", "type": GEOJSON, "title": "features"}]
    if spec.metadata_url:
        links.append({"rel": "describedby", "href": spec.metadata_url, "title": "metadata record"})
    if spec.licence:
        links.append({"rel": "license", "href": spec.licence if "://" in spec.licence else f"{url}#license",
                      "title": spec.licence})
    return {"id": spec.id, "title": spec.title or spec.name, "description": spec.description,
            "keywords": spec.keywords, "itemType": "feature", "crs": [CRS84],
            "storageCrs": f"http://www.opengis.net/def/crs/EPSG/0/{spec.crs}", "links": links}


@router.get("", summary="OGC API Features landing page", dependencies=[Depends(OPEN)])
def landing(request: Request) -> dict[str, Any]:
    base = _base(request)
    return {"title": "Cubeport feature collections", "links": [
        {"rel": "self", "href": base, "type": "application/json"},
        {"rel": "conformance", "href": f"{base}/conformance", "type": "application/json"},
        {"rel": "data", "href": f"{base}/collections", "type": "application/json"},
        {"rel": "service-desc", "href": str(request.base_url).rstrip("/") + "/api",
         "type": "application/vnd.oai.openapi+json;version=3.0"}]}


@router.get("/conformance", summary="OGC API Features conformance classes", dependencies=[Depends(OPEN)])
def conformance() -> dict[str, Any]:
    return {"conformsTo": CONFORMANCE}


@router.get("/collections", summary="The feature collections the caller may see")
def collections(request: Request, context: ContextDep,
                principal: Annotated[Principal, Depends(listing("collection"))]) -> dict[str, Any]:
    base = _base(request)
    specs = {s.id: s for s in context.features.list()}
    visible = context.policy.visible(principal, "collection", list(specs))
    return {"collections": [collection_json(specs[i], base) for i in visible],
            "links": [{"rel": "self", "href": f"{base}/collections", "type": "application/json"}]}


@router.get("/collections/{collectionId}", summary="One feature collection",
            dependencies=[Depends(resource("collection", "collectionId"))])
def collection(request: Request, collection_id: CollectionId, context: ContextDep) -> dict[str, Any]:
    return collection_json(context.features.get(*split_id(collection_id)), _base(request))


@router.get("/collections/{collectionId}/items", summary="Features, by bbox, page by page (GeoJSON)",
            response_class=Response, responses={200: {"content": {GEOJSON: {}}}},
            dependencies=[Depends(resource("collection", "collectionId"))])
def items(
    request: Request, collection_id: CollectionId, context: ContextDep,
    bbox: Annotated[str | None, Query(max_length=200, description="west,south,east,north (CRS84 by default)")] = None,
    bbox_crs: Annotated[str | None, Query(alias="bbox-crs", max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
    properties: Annotated[str | None, Query(max_length=2000, description="comma-separated property names")] = None,
) -> Response:
    database, name = split_id(collection_id)
    store = context.features
    spec = store.get(database, name)
    box = _bbox(bbox)
    crs = _crs(bbox_crs) if box else None
    chosen = [p for p in properties.split(",") if p] if properties is not None else None
    found = list(store.query(database, name, bbox=box, bbox_crs=crs, limit=limit, offset=offset, properties=chosen))
    matched = store.count(database, name, bbox=box, bbox_crs=crs)
    to_lonlat = None if spec.crs == 4326 else Transformer.from_crs(spec.crs, 4326, always_xy=True).transform
    geometries = [f["geometry"] if to_lonlat is None else shapely.transform(f["geometry"], to_lonlat,
                                                                             interleaved=False) for f in found]
    texts = shapely.to_geojson(geometries) if geometries else []
    features = ",".join(
        f'{{"type":"Feature","id":{f["id"]},"geometry":{g},"properties":{json.dumps(f["properties"], default=str)}}}'
        for f, g in zip(found, texts))
    url = f"{_base(request)}/collections/{spec.id}/items"
    links = [{"rel": "self", "href": str(request.url), "type": GEOJSON}]
    if offset + len(found) < matched:
        links.append({"rel": "next", "type": GEOJSON, "href": _page(request, url, offset + limit)})
    if offset > 0:
        links.append({"rel": "prev", "type": GEOJSON, "href": _page(request, url, max(offset - limit, 0))})
    head = json.dumps({"type": "FeatureCollection", "numberMatched": matched, "numberReturned": len(found),
                       "links": links})
    return Response(head[:-1] + f',"features":[{features}]}}', media_type=GEOJSON)


@router.get("/collections/{collectionId}/items/{featureId}", summary="One feature (GeoJSON)",
            response_class=Response, responses={200: {"content": {GEOJSON: {}}}},
            dependencies=[Depends(resource("collection", "collectionId"))])
def item(collection_id: CollectionId, feature_id: Annotated[int, Path(alias="featureId", ge=1)],
         context: ContextDep) -> Response:
    database, name = split_id(collection_id)
    store = context.features
    spec = store.get(database, name)
    found = store.feature(database, name, feature_id)
    geometry = found["geometry"]
    if spec.crs != 4326:
        geometry = shapely.transform(geometry, Transformer.from_crs(spec.crs, 4326, always_xy=True).transform,
                                     interleaved=False)
    body = {"type": "Feature", "id": found["id"], "geometry": json.loads(shapely.to_geojson(geometry)),
            "properties": found["properties"]}
    return Response(json.dumps(body, default=str), media_type=GEOJSON)


def _page(request: Request, url: str, offset: int) -> str:
    return url + "?" + urlencode({**request.query_params, "offset": str(offset)})


def _bbox(text: str | None) -> tuple[float, float, float, float] | None:
    if text is None:
        return None
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) not in (4, 6):
        raise InputError(f"bbox {text!r}: give west,south,east,north as numbers")
    west, south, east, north = (values[0], values[1], values[3], values[4]) if len(values) == 6 else values
    return west, south, east, north


def _crs(uri: str | None) -> int | str:
    if uri is None or uri == CRS84:
        return 4326
    prefix = "http://www.opengis.net/def/crs/EPSG/0/"
    if uri.startswith(prefix) and uri[len(prefix):].isdigit():
        return int(uri[len(prefix):])
    raise InputError(f"bbox-crs {uri!r}: give {CRS84} or {prefix}<code>")
