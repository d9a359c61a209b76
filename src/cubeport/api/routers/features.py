"""OGC API Features over the feature store, rooted at `/features` so that feature collections (ids
`database.name`) never share a namespace with the cubes of `/collections`: Part 1 (core, GeoJSON), Part 3
(queryables, CQL2 `filter` in text and JSON), sorting, and the write routes the Python client uses (create,
insert or upsert, replace, update and delete by filter, rename, copy, export, sharing).

Each collection has the access of the resource ("collection", its id): reads need read access, changes
of features and metadata write access; creating needs a signed-in editor who owns the database, and
sharing, renaming and dropping an owner of the database or an admin (`features/sharing.py`).
Geometries come out in CRS84 (lon/lat); features sent in are in the collection's CRS."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from cubeport.api.deps import JSON_OBJECT_BODY, RawBody, get_context, json_object
from cubeport.api.security import OPEN, SIGNED_IN, listing, resource
from cubeport.api.urls import base_url
from cubeport.auth.principal import Principal
from cubeport.context import Context
from cubeport.errors import InputError, NotFoundError
from cubeport.features.export import FORMATS, export
from cubeport.features.schema import CollectionSpec
from cubeport.features.store import MAX_ID, Selection
from cubeport.ogc import params
from cubeport.ogc.params import MAX_FILTER, parse_bbox, parse_crs, parse_datetime, parse_filter

router = APIRouter(prefix="/features", tags=["features"])
ContextDep = Annotated[Context, Depends(get_context)]
CollectionId = Annotated[str, Path(alias="collectionId", max_length=100, description="database.collection")]
GEOJSON = "application/geo+json"
MAX_LIMIT = 10_000
CONFORMANCE = [
    params.FEATURES_CORE,
    params.FEATURES_GEOJSON,
    params.FEATURES_OAS30,
    params.FEATURES_QUERYABLES,
    params.FEATURES_QUERYABLES_QUERY_PARAMETERS,
    params.FEATURES_FILTER,
    params.FEATURES_FEATURES_FILTER,
    params.CQL2_TEXT,
    params.CQL2_JSON,
    params.CQL2_BASIC,
    params.CQL2_ADVANCED_COMPARISON,
    params.CQL2_CASE_INSENSITIVE,
    params.CQL2_BASIC_SPATIAL,
    params.CQL2_SPATIAL,
    params.CQL2_TEMPORAL,
    params.CQL2_ARITHMETIC,
]
READ = resource("collection", "collectionId")
WRITE = resource("collection", "collectionId", action="write")


def split_id(collection_id: str) -> tuple[str, str]:
    database, _, name = collection_id.partition(".")
    if not name:
        raise NotFoundError(f"collection {collection_id!r} not found; ids are database.collection")
    return database, name


def collection_json(spec: CollectionSpec, base: str) -> dict[str, Any]:
    url = f"{base}/collections/{spec.id}"
    links = [
        {"rel": "self", "href": url, "type": "application/json"},
        {"rel": "items", "href": f"{url}/items", "type": GEOJSON, "title": "features"},
        {
            "rel": "http://www.opengis.net/def/rel/ogc/1.0/queryables",
            "href": f"{url}/queryables",
            "type": "application/schema+json",
            "title": "queryables",
        },
    ]
    if spec.metadata_url:
        links.append({"rel": "describedby", "href": spec.metadata_url, "title": "metadata record"})
    if spec.licence:
        links.append(
            {
                "rel": "license",
                "href": spec.licence if "://" in spec.licence else f"{url}#license",
                "title": spec.licence,
            }
        )
    return {
        "id": spec.id,
        "title": spec.title or spec.name,
        "description": spec.description,
        "keywords": spec.keywords,
        "itemType": "feature",
        "crs": [params.CRS84],
        "storageCrs": params.epsg_uri(spec.crs),
        "licence": spec.licence,
        "provenance": spec.provenance,
        "owner": spec.owner,
        "properties": spec.properties,
        "geometryType": spec.geometry_type,
        "timeProperty": spec.time_property or None,
        "links": links,
    }


@router.get("", summary="OGC API Features landing page", dependencies=[Depends(OPEN)])
def landing(request: Request) -> dict[str, Any]:
    base = base_url(request, router.prefix)
    return {
        "title": "Cubeport feature collections",
        "links": [
            {"rel": "self", "href": base, "type": "application/json"},
            {"rel": "conformance", "href": f"{base}/conformance", "type": "application/json"},
            {"rel": "data", "href": f"{base}/collections", "type": "application/json"},
            {
                "rel": "service-desc",
                "href": base_url(request, "/api"),
                "type": "application/vnd.oai.openapi+json;version=3.0",
            },
        ],
    }


@router.get("/conformance", summary="OGC API Features conformance classes", dependencies=[Depends(OPEN)])
def conformance() -> dict[str, Any]:
    return {"conformsTo": CONFORMANCE}


@router.get("/collections", summary="The feature collections the caller may see")
def collections(
    request: Request,
    context: ContextDep,
    principal: Annotated[Principal, Depends(listing("collection"))],
    database: Annotated[str | None, Query(max_length=48, description="only this database's")] = None,
) -> dict[str, Any]:
    base = base_url(request, router.prefix)
    return {
        "collections": [
            collection_json(spec, base) for spec in context.sharing.collections(principal, database)
        ],
        "links": [{"rel": "self", "href": f"{base}/collections", "type": "application/json"}],
    }


@router.get("/collections/{collectionId}", summary="One feature collection", dependencies=[Depends(READ)])
def collection(request: Request, collection_id: CollectionId, context: ContextDep) -> dict[str, Any]:
    return collection_json(context.features.get(*split_id(collection_id)), base_url(request, router.prefix))


@router.get(
    "/collections/{collectionId}/queryables",
    summary="What filters may name (JSON Schema)",
    response_class=Response,
    responses={200: {"content": {"application/schema+json": {}}}},
    dependencies=[Depends(READ)],
)
def queryables(request: Request, collection_id: CollectionId, context: ContextDep) -> Response:
    spec = context.features.get(*split_id(collection_id))
    body = {
        **spec.queryables(),
        "$id": f"{base_url(request, router.prefix)}/collections/{spec.id}/queryables",
    }
    return Response(json.dumps(body), media_type="application/schema+json")


def selection(
    bbox: Annotated[
        str | None, Query(max_length=200, description="west,south,east,north (CRS84 by default)")
    ] = None,
    bbox_crs: Annotated[str | None, Query(alias="bbox-crs", max_length=200)] = None,
    datetime: Annotated[
        str | None, Query(max_length=100, description="an instant or start/end ('..' open)")
    ] = None,
    filter: Annotated[str | None, Query(max_length=MAX_FILTER, description="a CQL2 filter")] = None,  # noqa: A002
    filter_lang: Annotated[Literal["cql2-text", "cql2-json"] | None, Query(alias="filter-lang")] = None,
    filter_crs: Annotated[str | None, Query(alias="filter-crs", max_length=200)] = None,
) -> Selection:
    """The query parameters that select features, shared by items, export, update and delete."""
    box = parse_bbox(bbox) if bbox is not None else None
    return Selection(
        bbox=box,
        bbox_crs=parse_crs(bbox_crs) if box else None,
        filter=parse_filter(filter, filter_lang) if filter else None,
        filter_crs=parse_crs(filter_crs),
        datetime=parse_datetime(datetime) if datetime else None,
    )


SelectionDep = Annotated[Selection, Depends(selection)]
SortBy = Annotated[str | None, Query(max_length=500, description="properties to sort by, e.g. -pop_est,name")]


@router.get(
    "/collections/{collectionId}/items",
    summary="Features: by bbox, time, CQL2 filter; sorted, paged",
    response_class=Response,
    responses={200: {"content": {GEOJSON: {}}}},
    dependencies=[Depends(READ)],
)
def items(
    request: Request,
    collection_id: CollectionId,
    context: ContextDep,
    chosen: SelectionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    properties: Annotated[
        str | None, Query(max_length=2000, description="comma-separated property names")
    ] = None,
    sortby: SortBy = None,
) -> Response:
    database, name = split_id(collection_id)
    store = context.features
    spec = store.get(database, name)
    names = [p for p in properties.split(",") if p] if properties is not None else None
    found = list(
        store.geojson(
            database, name, chosen, sortby=_list(sortby), limit=limit + 1, offset=offset, properties=names
        )
    )
    if len(found) <= limit and (found or offset == 0):  # the last page: no second query to count
        matched = offset + len(found)
    else:
        found, matched = found[:limit], store.count(database, name, chosen)
    url = f"{base_url(request, router.prefix)}/collections/{spec.id}/items"
    links = [{"rel": "self", "href": str(request.url), "type": GEOJSON}]
    if offset + len(found) < matched:
        links.append({"rel": "next", "type": GEOJSON, "href": _page(request, url, offset + limit)})
    if offset > 0:
        links.append({"rel": "prev", "type": GEOJSON, "href": _page(request, url, max(offset - limit, 0))})
    head = json.dumps(
        {"type": "FeatureCollection", "numberMatched": matched, "numberReturned": len(found), "links": links}
    )
    return Response(f'{head[:-1]},"features":[{",".join(found)}]}}', media_type=GEOJSON)


@router.get(
    "/collections/{collectionId}/count",
    summary="How many features are selected: exact, or the database's quick estimate",
    dependencies=[Depends(READ)],
)
def count(
    collection_id: CollectionId,
    context: ContextDep,
    chosen: SelectionDep,
    exact: Annotated[
        bool, Query(description="false: the planner's estimate (PostGIS), quick on big collections")
    ] = True,
) -> dict[str, Any]:
    return {"count": context.features.count(*split_id(collection_id), chosen, exact=exact), "exact": exact}


FeatureId = Annotated[int, Path(alias="featureId", ge=1, le=MAX_ID)]


@router.get(
    "/collections/{collectionId}/items/{featureId}",
    summary="One feature (GeoJSON)",
    response_class=Response,
    responses={200: {"content": {GEOJSON: {}}}},
    dependencies=[Depends(READ)],
)
def item(collection_id: CollectionId, feature_id: FeatureId, context: ContextDep) -> Response:
    database, name = split_id(collection_id)
    one = Selection(filter={"op": "=", "args": [{"property": "id"}, feature_id]})
    for text in context.features.geojson(database, name, one):
        return Response(text, media_type=GEOJSON)
    raise NotFoundError(f"feature {feature_id} not in collection {collection_id}")


@router.get(
    "/collections/{collectionId}/items/{featureId}/observations",
    summary="In-situ observations at a station: its parameters, or one parameter's time series",
    dependencies=[Depends(READ)],
)
def observations(
    collection_id: CollectionId,
    feature_id: FeatureId,
    context: ContextDep,
    parameter: Annotated[str | None, Query(max_length=64)] = None,
    datetime: Annotated[str | None, Query(max_length=100)] = None,
) -> dict[str, Any]:
    from cubeport.features.observations import Observations

    found = Observations(context.features)
    database, name = split_id(collection_id)
    if parameter is None:
        context.features.feature(database, name, feature_id)
        return {"station": feature_id, "parameters": found.parameters(database, name, feature_id)}
    series = found.series(database, name, feature_id, parameter, datetime)
    return {
        "station": feature_id,
        "parameter": parameter,
        "unit": series[0]["unit"] if series else "",
        "observations": [{k: v for k, v in o.items() if k != "unit"} for o in series],
    }


@router.get(
    "/collections/{collectionId}/export",
    summary="The selected features as a GeoJSON, GeoPackage or GeoParquet file",
    response_class=StreamingResponse,
    dependencies=[Depends(READ)],
)
def export_features(
    collection_id: CollectionId,
    context: ContextDep,
    chosen: SelectionDep,
    format: Annotated[str, Query(description=", ".join(FORMATS))] = "geojson",  # noqa: A002
    sortby: SortBy = None,
) -> StreamingResponse:
    database, name = split_id(collection_id)
    spec = context.features.get(database, name)
    if format not in FORMATS:
        raise InputError(f"format {format!r}: use one of {', '.join(FORMATS)}")
    media_type, suffix = FORMATS[format]
    chunks = export(context.features, spec, chosen, format, sortby=_list(sortby))
    return StreamingResponse(
        chunks,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{spec.id}{suffix}"'},
    )


# -- writes (the Python client's routes) ----------------------------------------------------------------------
class Metadata(BaseModel):
    """What users read about a collection; each may be changed later (PATCH)."""

    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not silently dropped

    title: str = Field("", max_length=256)
    description: str = Field("", max_length=20_000)
    licence: str = Field("", max_length=256, description="an SPDX id, a name or a URL")
    keywords: list[Annotated[str, Field(max_length=100)]] = Field(default_factory=list, max_length=50)
    provenance: str = Field("", max_length=20_000, description="where the data come from, how they were made")
    metadata_url: str = Field("", max_length=1024, description="an ISO 19139 or STAC record (http or https)")
    time_property: str = Field("", description="the datetime property `datetime` filters on")


class NewCollection(Metadata):
    database: str = Field(max_length=48)
    name: str = Field(max_length=48)
    properties: dict[str, str] = Field(
        default_factory=dict, description="name: string|integer|number|boolean|datetime|json"
    )
    crs: int | str = 4326
    geometry_type: str = "Geometry"
    group: str | None = Field(None, description="a group of yours to own the database (default: you)")
    project: str | None = Field(None, description="a project of yours to own the database (default: you)")


@router.get("/databases", summary="Your feature databases")
def databases(
    context: ContextDep, principal: Annotated[Principal, Depends(SIGNED_IN)]
) -> list[dict[str, str]]:
    return context.sharing.databases(principal)


@router.post(
    "/collections",
    status_code=201,
    summary="Create a collection (private to you, or to your group or project)",
)
def create_collection(
    request: Request,
    body: NewCollection,
    context: ContextDep,
    principal: Annotated[Principal, Depends(SIGNED_IN)],
) -> dict[str, Any]:
    fields = body.model_dump()
    kinds: tuple[Subject, ...] = ("group", "project")
    owners = [(kind, name) for kind in kinds if (name := fields.pop(kind)) is not None]
    if len(owners) > 1:
        raise InputError("a database has one owner: give group or project, not both")
    spec = context.sharing.create(principal, CollectionSpec(**fields), owners[0] if owners else None)
    return collection_json(spec, base_url(request, router.prefix))


@router.delete("/collections/{collectionId}", summary="Drop a collection and its features (owners, admins)")
def drop_collection(
    collection_id: CollectionId, context: ContextDep, principal: Annotated[Principal, Depends(WRITE)]
) -> dict[str, str]:
    context.sharing.check_manages(principal, collection_id)
    context.sharing.drop(*split_id(collection_id))
    return {"dropped": collection_id}


@router.patch(
    "/collections/{collectionId}",
    summary="Change a collection's metadata (the fields sent)",
    dependencies=[Depends(WRITE)],
)
def describe_collection(
    request: Request, collection_id: CollectionId, context: ContextDep, body: Metadata
) -> dict[str, Any]:
    spec = context.features.describe(*split_id(collection_id), **body.model_dump(exclude_unset=True))
    return collection_json(spec, base_url(request, router.prefix))


@router.post(
    "/collections/{collectionId}/rename", summary="Rename a collection within its database (owners, admins)"
)
def rename_collection(
    request: Request,
    collection_id: CollectionId,
    context: ContextDep,
    principal: Annotated[Principal, Depends(WRITE)],
    name: Annotated[str, Body(embed=True, max_length=48)],
) -> dict[str, Any]:
    context.sharing.check_manages(principal, collection_id)
    return collection_json(
        context.sharing.rename(*split_id(collection_id), name), base_url(request, router.prefix)
    )


@router.post(
    "/collections/{collectionId}/copy", status_code=201, summary="Copy a collection into a database of yours"
)
def copy_collection(
    request: Request,
    collection_id: CollectionId,
    context: ContextDep,
    principal: Annotated[Principal, Depends(READ)],
    database: Annotated[str, Body(max_length=48)],
    name: Annotated[str, Body(max_length=48)],
) -> dict[str, Any]:
    copied = context.sharing.copy(principal, *split_id(collection_id), database, name)
    return collection_json(copied, base_url(request, router.prefix))


@router.post(
    "/collections/{collectionId}/items",
    status_code=201,
    summary="Add features (a GeoJSON "
    "FeatureCollection or Feature in the collection's CRS); with upsert, features with an id replace theirs",
    dependencies=[Depends(WRITE)],
    openapi_extra=JSON_OBJECT_BODY,
)
def add_items(
    collection_id: CollectionId,
    context: ContextDep,
    raw: RawBody,
    upsert: bool = False,
) -> dict[str, int]:
    body = json_object(raw, "a GeoJSON FeatureCollection or Feature")  # here, in the worker thread
    features = body.get("features") if body.get("type") == "FeatureCollection" else [body]
    if not isinstance(features, list) or body.get("type") not in ("FeatureCollection", "Feature"):
        raise InputError("send a GeoJSON FeatureCollection or Feature")
    return {"written": context.features.insert(*split_id(collection_id), features, upsert=upsert)}


@router.put(
    "/collections/{collectionId}/items/{featureId}",
    summary="Replace a feature",
    dependencies=[Depends(WRITE)],
    openapi_extra=JSON_OBJECT_BODY,
)
def replace_item(
    collection_id: CollectionId,
    feature_id: FeatureId,
    context: ContextDep,
    raw: RawBody,
) -> dict[str, int]:
    body = json_object(raw, "a GeoJSON Feature")
    if body.get("type") != "Feature":
        raise InputError("send a GeoJSON Feature")
    context.features.replace(*split_id(collection_id), feature_id, body)
    return {"replaced": feature_id}


@router.delete(
    "/collections/{collectionId}/items/{featureId}", summary="Delete a feature", dependencies=[Depends(WRITE)]
)
def delete_item(collection_id: CollectionId, feature_id: FeatureId, context: ContextDep) -> dict[str, int]:
    context.features.delete_feature(*split_id(collection_id), feature_id)
    return {"deleted": 1}


@router.patch(
    "/collections/{collectionId}/items",
    summary="Set properties of the selected features",
    dependencies=[Depends(WRITE)],
)
def update_items(
    collection_id: CollectionId,
    context: ContextDep,
    chosen: SelectionDep,
    properties: Annotated[dict[str, Any], Body(embed=True)],
) -> dict[str, int]:
    return {"updated": context.features.update(*split_id(collection_id), _some(chosen), properties)}


@router.delete(
    "/collections/{collectionId}/items", summary="Delete the selected features", dependencies=[Depends(WRITE)]
)
def delete_items(collection_id: CollectionId, context: ContextDep, chosen: SelectionDep) -> dict[str, int]:
    return {"deleted": context.features.delete(*split_id(collection_id), _some(chosen))}


Subject = Literal["user", "group", "project"]


class Grant(BaseModel):
    subject_type: Subject
    subject: str = Field(min_length=1, max_length=128)
    permission: Literal["read", "write"] = "read"


@router.get(
    "/collections/{collectionId}/access",
    summary="Who may read and change the collection",
    dependencies=[Depends(WRITE)],
)
def access(collection_id: CollectionId, context: ContextDep) -> dict[str, object]:
    return context.policy.access("collection", collection_id).to_dict()


@router.put(
    "/collections/{collectionId}/access", summary="Publish (public read) or unpublish (owners, admins)"
)
def publish(
    collection_id: CollectionId,
    context: ContextDep,
    principal: Annotated[Principal, Depends(WRITE)],
    public: Annotated[bool, Body(embed=True)],
) -> dict[str, object]:
    return context.sharing.publish(principal, collection_id, public).to_dict()


@router.post(
    "/collections/{collectionId}/access/grants",
    summary="Grant read or write to a user, group or project (owners, admins)",
)
def grant(
    collection_id: CollectionId,
    context: ContextDep,
    principal: Annotated[Principal, Depends(WRITE)],
    body: Grant,
) -> dict[str, object]:
    return context.sharing.grant(
        principal, collection_id, body.subject_type, body.subject, body.permission
    ).to_dict()


@router.delete(
    "/collections/{collectionId}/access/grants/{subjectType}/{subject}",
    summary="Revoke a grant (owners, admins; never the owner's)",
)
def revoke(
    collection_id: CollectionId,
    context: ContextDep,
    principal: Annotated[Principal, Depends(WRITE)],
    subject_type: Annotated[Subject, Path(alias="subjectType")],
    subject: Annotated[str, Path(max_length=128)],
) -> dict[str, object]:
    return context.sharing.revoke(principal, collection_id, subject_type, subject).to_dict()


def _some(chosen: Selection) -> Selection:
    if chosen == Selection():
        raise InputError("select the features with filter, bbox or datetime (for all of them, filter=id > 0)")
    return chosen


def _list(text: str | None) -> list[str] | None:
    return [p.strip() for p in text.split(",") if p.strip()] if text else None


def _page(request: Request, url: str, offset: int) -> str:
    return url + "?" + urlencode({**request.query_params, "offset": str(offset)})
