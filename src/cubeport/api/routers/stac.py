"""STAC API 1.0 under /stac: cubes as collections (datacube extension), the products they were built from as
items (their files served with byte ranges, so GDAL and rasterio open the hrefs), item search (GET and POST;
filter, sort, fields), queryables, and federated search over registered remote STAC APIs."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from cubeport.api.deps import RawBody, get_context, json_object
from cubeport.api.problems import problem
from cubeport.api.ranges import UnsatisfiableRange, byte_range, content_range
from cubeport.api.security import ADMIN, OPEN, listing, not_found, resource, visible_cubes
from cubeport.api.urls import base_url
from cubeport.auth.principal import Principal
from cubeport.context import Context
from cubeport.errors import InputError, NotFoundError
from cubeport.ogc.params import MAX_FILTER
from cubeport.stac import documents, federation, service
from cubeport.stac.federation import Source
from cubeport.stac.search import SOURCES_HELP, SearchRequest
from cubeport.stac.service import Origin

router = APIRouter(prefix="/stac", tags=["stac"])
ContextDep = Annotated[Context, Depends(get_context)]
CollectionId = Annotated[str, Path(max_length=128, description="collection (cube) id")]
ItemId = Annotated[str, Path(max_length=256, description="item (product) id")]
SourceName = Annotated[str, Path(max_length=64, description="a registered STAC source")]
GEOJSON = "application/geo+json"


def _geojson(body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, media_type=GEOJSON)


def _source_id(name: str) -> str:
    return f"stac-source:{name}"


@router.get("", summary="The STAC API landing page")
def landing(
    request: Request, context: ContextDep, principal: Annotated[Principal, Depends(listing("cube"))]
) -> dict[str, Any]:
    return documents.landing(base_url(request), visible_cubes(context, principal))


@router.get("/conformance", summary="The STAC API and OGC conformance classes", dependencies=[Depends(OPEN)])
def conformance() -> dict[str, Any]:
    return {"conformsTo": documents.CONFORMANCE}


@router.get(
    "/queryables",
    summary="What a filter may name, in every collection",
    dependencies=[Depends(OPEN)],
    response_class=JSONResponse,
)
def queryables(request: Request) -> JSONResponse:
    return JSONResponse(
        documents.queryables(f"{base_url(request)}/stac/queryables", "Cubeport items"),
        media_type="application/schema+json",
    )


@router.get("/collections", summary="Cubes as STAC collections")
def collections(
    request: Request, context: ContextDep, principal: Annotated[Principal, Depends(listing("cube"))]
) -> dict[str, Any]:
    base = base_url(request)
    return {
        "collections": [
            documents.collection(e, context.open_cubes.open(e.id), base)
            for e in visible_cubes(context, principal)
        ],
        "links": [
            documents.link("self", f"{base}/stac/collections"),
            documents.link("root", f"{base}/stac"),
            documents.link("parent", f"{base}/stac"),
        ],
    }


@router.get(
    "/collections/{collection}",
    summary="One cube as a STAC collection",
    dependencies=[Depends(resource("cube", "collection"))],
)
def collection(collection: CollectionId, request: Request, context: ContextDep) -> dict[str, Any]:
    return documents.collection(
        context.catalogue.get(collection), context.open_cubes.open(collection), base_url(request)
    )


@router.get(
    "/collections/{collection}/queryables",
    summary="What a filter may name in this collection",
    dependencies=[Depends(resource("cube", "collection"))],
    response_class=JSONResponse,
)
def collection_queryables(collection: CollectionId, request: Request, context: ContextDep) -> JSONResponse:
    entry = context.catalogue.get(collection)
    url = f"{base_url(request)}/stac/collections/{quote(collection)}/queryables"
    return JSONResponse(documents.queryables(url, entry.title), media_type="application/schema+json")


@router.get(
    "/collections/{collection}/items",
    summary="The products of a cube (OGC API Features items)",
    response_class=JSONResponse,
    dependencies=[Depends(resource("cube", "collection"))],
)
def items(
    collection: CollectionId,
    request: Request,
    context: ContextDep,
    bbox: Annotated[str | None, Query(max_length=200, description="west,south,east,north (CRS84)")] = None,
    datetime: Annotated[
        str | None, Query(max_length=100, description="an instant or an interval a/b")
    ] = None,
    filter: Annotated[str | None, Query(max_length=MAX_FILTER, description="CQL2 text or JSON")] = None,
    filter_lang: Annotated[str | None, Query(alias="filter-lang", max_length=16)] = None,
    sortby: Annotated[str | None, Query(max_length=500, description="e.g. -datetime,id")] = None,
    fields: Annotated[
        str | None, Query(max_length=2000, description="e.g. properties.proj:code,-assets")
    ] = None,
    limit: Annotated[int, Query(description="page size (at most 10,000)")] = 10,
    token: Annotated[str | None, Query(max_length=200)] = None,
) -> JSONResponse:
    context.catalogue.get(collection)
    search = SearchRequest.from_query(
        collections=collection,
        bbox=bbox,
        datetime=datetime,
        filter=filter,
        filter_lang=filter_lang,
        sortby=sortby,
        fields=fields,
        limit=limit,
        token=token,
    )
    return _geojson(service.collection_items(context.products, collection, search, _origin(request)))


@router.get(
    "/collections/{collection}/items/{item}",
    summary="One product as a STAC item",
    response_class=JSONResponse,
    dependencies=[Depends(resource("cube", "collection"))],
)
def item(collection: CollectionId, item: ItemId, request: Request, context: ContextDep) -> JSONResponse:
    return _geojson(documents.local_item(context.products.item(collection, item), base_url(request)))


FILE_ROUTE = "/collections/{collection}/items/{item}/files/{name}"


@router.get(
    FILE_ROUTE,
    summary="A product's file (byte ranges, for GDAL's /vsicurl/ and rasterio; HEAD too)",
    response_class=Response,
    dependencies=[Depends(resource("cube", "collection"))],
    responses={
        200: {"content": {"application/octet-stream": {}}},
        206: {"description": "a range"},
        416: {"description": "the range lies past the end"},
    },
)
def item_file(
    collection: CollectionId,
    item: ItemId,
    name: Annotated[str, Path(max_length=256)],
    request: Request,
    context: ContextDep,
    range_: Annotated[str | None, Header(alias="range", max_length=256)] = None,
) -> Response:
    parts = context.products.asset(collection, item, name)
    storage = context.storage
    kind = next(
        a["type"] for a in context.products.item(collection, item)["assets"].values() if a["href"] == name
    )
    headers = {"Accept-Ranges": "bytes", "Cache-Control": "private, max-age=3600"}
    if not storage.is_s3 and not range_:  # Starlette streams the file, with ETag and Last-Modified
        return FileResponse(storage.path(*parts), media_type=kind, headers=headers)
    size = storage.size(*parts)
    try:
        span = byte_range(range_, size)
    except UnsatisfiableRange as exc:
        refused = problem(416, f"{exc}; ask for bytes below {size}")
        refused.headers["Content-Range"] = f"bytes */{size}"
        return refused
    start, end = span or (0, size)
    headers["Content-Length"] = str(end - start)
    if span:
        headers["Content-Range"] = content_range(start, end, size)
    status = 206 if span else 200
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=kind)
    if span:
        return Response(
            storage.read_range(start, end, *parts), status_code=206, headers=headers, media_type=kind
        )
    stream = storage.fs.open(storage.path(*parts), "rb")
    return StreamingResponse(iter(lambda: stream.read(2**20), b""), headers=headers, media_type=kind)


# HEAD (GDAL asks for the size first) shares the GET route's code; one OpenAPI operation documents both
router.add_api_route(
    FILE_ROUTE,
    item_file,
    methods=["HEAD"],
    include_in_schema=False,
    response_class=Response,
    dependencies=[Depends(resource("cube", "collection"))],
)


# Search


@router.get("/search", summary="Search items (STAC item search, GET)", response_class=JSONResponse)
async def search_get(
    request: Request,
    context: ContextDep,
    principal: Annotated[Principal, Depends(listing("cube"))],
    collections: Annotated[str | None, Query(max_length=2000, description="comma-separated")] = None,
    ids: Annotated[str | None, Query(max_length=10_000, description="comma-separated")] = None,
    bbox: Annotated[str | None, Query(max_length=200, description="west,south,east,north (CRS84)")] = None,
    intersects: Annotated[str | None, Query(max_length=100_000, description="a GeoJSON geometry")] = None,
    datetime: Annotated[
        str | None, Query(max_length=100, description="an instant or an interval a/b")
    ] = None,
    filter: Annotated[str | None, Query(max_length=MAX_FILTER, description="CQL2 text or JSON")] = None,
    filter_lang: Annotated[str | None, Query(alias="filter-lang", max_length=16)] = None,
    sortby: Annotated[str | None, Query(max_length=500, description="e.g. -datetime,id")] = None,
    fields: Annotated[str | None, Query(max_length=2000)] = None,
    limit: Annotated[int, Query(description="page size (at most 10,000)")] = 10,
    token: Annotated[str | None, Query(max_length=20_000)] = None,
    sources: Annotated[str | None, Query(max_length=2000, description=SOURCES_HELP)] = None,
) -> JSONResponse:
    # parsing (CQL2, an intersects geometry of up to 100 KB) is CPU work: off the event loop, like the search
    search = await run_in_threadpool(
        SearchRequest.from_query,
        collections=collections,
        ids=ids,
        bbox=bbox,
        intersects=intersects,
        datetime=datetime,
        filter=filter,
        filter_lang=filter_lang,
        sortby=sortby,
        fields=fields,
        limit=limit,
        token=token,
        sources=sources,
    )
    return await run_in_threadpool(_search, context, principal, search, _origin(request))


# the POST search's request body in the OpenAPI document (the route takes it as bytes, `RawBody`)
SEARCH_BODY: dict[str, Any] = {
    "requestBody": {
        "content": {
            "application/json": {
                "schema": {"type": "object"},
                "examples": {
                    "bbox": {
                        "value": {
                            "bbox": [10, 53, 31, 66],
                            "datetime": "2020-01-01T00:00:00Z/..",
                            "limit": 10,
                        }
                    }
                },
            }
        },
        "required": True,
    }
}


@router.post(
    "/search",
    summary="Search items (STAC item search, POST)",
    response_class=JSONResponse,
    openapi_extra=SEARCH_BODY,
)
async def search_post(
    request: Request,
    context: ContextDep,
    principal: Annotated[Principal, Depends(listing("cube"))],
    raw: RawBody,
) -> JSONResponse:
    # the body (up to max_body_bytes) is parsed in the worker thread with the search: FastAPI would parse it
    # on the event loop (json.loads holds it for the whole parse: 1-2 s for 15 MB of small objects)
    body, search = await run_in_threadpool(_search_body, raw)
    return await run_in_threadpool(_search, context, principal, search, _origin(request, body))


def _search_body(raw: bytes) -> tuple[dict[str, Any], SearchRequest]:
    body = json_object(raw, 'a STAC search, e.g. {"collections": ["sst"], "bbox": [10, 53, 31, 66]}')
    return body, SearchRequest.from_body(body)


def _search(context: Context, principal: Principal, search: SearchRequest, origin: Origin) -> JSONResponse:
    sources = service.named_sources(context.stac_sources, context.policy, principal, search.sources)
    cubes = [e.id for e in visible_cubes(context, principal)]
    # a callable: only a federated search needs the secret (read once per process, then kept)
    return _geojson(
        service.item_search(context.products, cubes, sources, search, origin, lambda: context.secret_key)
    )


def _origin(request: Request, body: dict[str, Any] | None = None) -> Origin:
    return Origin(base_url(request), str(request.url), dict(request.query_params), body)


# Sources (federation)


class SourceBody(BaseModel):
    name: str = Field(pattern=federation.SOURCE_NAME, description="lower-case letters, digits and '-'")
    url: str = Field(max_length=2000, description="the root of the remote STAC API")
    title: str = Field("", max_length=200)
    headers: dict[str, str] = Field(default_factory=dict, description="sent with every request (credentials)")
    timeout_seconds: float = Field(10.0, gt=0, le=120, description="past it the source is left out")


@router.get("/sources", summary="The remote STAC APIs the caller may search (credentials not shown)")
def list_sources(
    context: ContextDep, principal: Annotated[Principal, Depends(listing("service"))]
) -> dict[str, Any]:
    sources = service.readable_sources(context.stac_sources, context.policy, principal)
    return {"sources": [s.public() for s in sources]}


@router.put(
    "/sources/{name}",
    summary="Register (or replace) a remote STAC API as a source (admins)",
    dependencies=[Depends(ADMIN)],
)
def put_source(name: SourceName, source: SourceBody, context: ContextDep) -> dict[str, Any]:
    if source.name != name:
        raise InputError(f"the body names source {source.name!r}, the path {name!r}")
    return context.stac_sources.add(Source(**source.model_dump()), replace=True).public()


@router.delete(
    "/sources/{name}",
    summary="Remove a source (admins)",
    status_code=204,
    response_class=Response,
    dependencies=[Depends(ADMIN)],
)
def delete_source(name: SourceName, context: ContextDep) -> Response:
    context.stac_sources.remove(name)
    return Response(status_code=204)


@router.get(
    "/sources/{name}/proxy",
    summary="A remote asset through the rolling cache (whole or a byte range)",
    response_class=Response,
    dependencies=[Depends(resource("service", "name", id_of=_source_id))],
    responses={200: {"content": {"application/octet-stream": {}}}, 206: {"description": "a range"}},
)
def proxy(
    name: SourceName,
    context: ContextDep,
    href: Annotated[str, Query(max_length=2000, description="an asset's URL under the source's base URL")],
    range_: Annotated[str | None, Header(alias="range", max_length=256)] = None,
) -> Response:
    try:
        source = context.stac_sources.get(name)
    except NotFoundError:  # worded as the guard's 404 for a source the caller may not read
        raise not_found("service", _source_id(name)) from None
    if not source.owns(href):
        raise InputError(
            f"href: not under the base URL of source {name!r} ({source.url}: same origin, a path below it)"
        )
    span = _requested_span(range_)
    found = context.cache.fetch(href, byte_range=span, source=source)
    headers = {
        "Accept-Ranges": "bytes",
        "X-Cache": "hit" if found.hit else "miss",
        "ETag": f'"{found.sha256}"',
        "Cache-Control": "private, max-age=3600",
    }
    if span:
        headers["Content-Range"] = content_range(span[0], span[0] + found.size, None)
    return Response(
        found.data, status_code=206 if span else 200, headers=headers, media_type="application/octet-stream"
    )


def _requested_span(header: str | None) -> tuple[int, int] | None:
    """A `bytes=a-b` range of an object whose size is not known here (suffix and open ranges need it)."""
    if not header:
        return None
    span = byte_range(header, 2**62)
    if span is None or span[1] >= 2**62 or header.split("=", 1)[1].startswith("-"):
        raise InputError("Range: give bytes=first-last (the proxy does not know the object's size)")
    return span
