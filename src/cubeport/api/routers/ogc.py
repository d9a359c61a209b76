"""OGC API for cubes: conformance, collections (one per cube), tile matrix sets, map tiles per collection
and variable (OGC API Tiles), and EDR position and area queries answered in CoverageJSON."""

from __future__ import annotations

import json
from typing import Annotated, Any

import shapely.wkt
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from shapely.errors import ShapelyError

from cubeport.analysis.coveragejson import series
from cubeport.analysis.geometry import parse_geojson
from cubeport.analysis.timeseries import time_series
from cubeport.api.deps import get_context
from cubeport.api.routers.tiles import png_response
from cubeport.api.security import OPEN, listing, resource, visible_cubes
from cubeport.api.urls import base_url
from cubeport.auth.principal import Principal
from cubeport.context import Context
from cubeport.cubes.catalogue import CubeEntry
from cubeport.errors import InputError
from cubeport.ogc import params
from cubeport.render.tms import TILE_MATRIX_SETS, tile_matrix_set

router = APIRouter(tags=["ogc"])
ContextDep = Annotated[Context, Depends(get_context)]
CollectionId = Annotated[str, Path(max_length=128, description="collection (cube) id")]
CONFORMANCE = [
    params.COMMON_CORE,
    params.COMMON_LANDING_PAGE,
    params.COMMON_JSON,
    params.COMMON_OAS30,
    params.COMMON_COLLECTIONS,
    params.TILES_CORE,
    params.TILES_TILESET,
    params.TILES_TILESETS_LIST,
    params.TILES_GEODATA_TILESETS,
    params.TILES_PNG,
    params.TMS_TILEMATRIXSET,
    params.EDR_CORE,
    params.EDR_POSITION,
    params.EDR_AREA,
    params.EDR_COVJSON,
    params.PROCESSES_CORE,
    params.PROCESSES_DESCRIPTION,
    params.PROCESSES_JSON,
    params.PROCESSES_JOB_LIST,
    params.PROCESSES_DISMISS,
    params.PROCESSES_OAS30,
]


def collection_json(entry: CubeEntry, base: str) -> dict[str, Any]:
    url = f"{base}/collections/{entry.id}"
    interval = [[t.isoformat() if t else None for t in (entry.time_start, entry.time_end)]]
    return {
        "id": entry.id,
        "title": entry.title,
        "description": entry.description,
        "itemType": "coverage",
        "extent": {
            "spatial": {"bbox": [list(entry.bbox)], "crs": params.CRS84},
            "temporal": {"interval": interval},
        },
        "crs": [params.CRS84],
        "parameter_names": {
            v.name: {
                "type": "Parameter",
                "description": v.long_name or v.name,
                "unit": {"symbol": v.units or ""},
                "observedProperty": {"label": v.long_name or v.name},
            }
            for v in entry.variables
        },
        "data_queries": {
            q: {"link": {"href": f"{url}/{q}", "rel": "data", "templated": False}}
            for q in ("position", "area")
        },
        "links": [
            {"rel": "self", "href": url, "type": "application/json"},
            {
                "rel": "http://www.opengis.net/def/rel/ogc/1.0/tilesets-map",
                "href": f"{url}/map/tiles",
                "type": "application/json",
                "title": "map tiles",
            },
            {
                "rel": "data",
                "href": f"{url}/position",
                "type": "application/prs.coverage+json",
                "title": "EDR position",
            },
            {
                "rel": "data",
                "href": f"{url}/area",
                "type": "application/prs.coverage+json",
                "title": "EDR area",
            },
            {"rel": "describedby", "href": f"{base}/datasets/{entry.id}", "type": "application/json"},
        ],
    }


@router.get("/conformance", summary="The OGC API conformance classes", dependencies=[Depends(OPEN)])
def conformance() -> dict[str, Any]:
    return {"conformsTo": CONFORMANCE}


@router.get("/collections", summary="Cubes as OGC API collections")
def collections(
    request: Request, context: ContextDep, principal: Annotated[Principal, Depends(listing("cube"))]
) -> dict[str, Any]:
    base = base_url(request)
    return {
        "collections": [collection_json(e, base) for e in visible_cubes(context, principal)],
        "links": [{"rel": "self", "href": f"{base}/collections", "type": "application/json"}],
    }


@router.get(
    "/collections/{collection}",
    summary="One cube as an OGC API collection",
    dependencies=[Depends(resource("cube", "collection"))],
)
def collection(collection: CollectionId, request: Request, context: ContextDep) -> dict[str, Any]:
    return collection_json(context.catalogue.get(collection), base_url(request))


def tile_matrix_set_json(name: str) -> dict[str, Any]:
    return tile_matrix_set(name).model_dump(mode="json", exclude_none=True, by_alias=True)


@router.get(
    "/tileMatrixSets",
    summary="The tile matrix sets: WebMercatorQuad, WorldCRS84Quad, TM35FIN",
    dependencies=[Depends(OPEN)],
)
def tile_matrix_sets(request: Request) -> dict[str, Any]:
    base = base_url(request)
    return {
        "tileMatrixSets": [
            {
                "id": n,
                "title": tile_matrix_set(n).title,
                "links": [{"rel": "self", "href": f"{base}/tileMatrixSets/{n}"}],
            }
            for n in TILE_MATRIX_SETS
        ]
    }


@router.get(
    "/tileMatrixSets/{tms}", summary="One tile matrix set (OGC TMS 2.0 JSON)", dependencies=[Depends(OPEN)]
)
def one_tile_matrix_set(tms: Annotated[str, Path(max_length=32)]) -> dict[str, Any]:
    return tile_matrix_set_json(tms)


@router.get(
    "/collections/{collection}/map/tiles",
    summary="The map tilesets of a collection",
    dependencies=[Depends(resource("cube", "collection"))],
)
def tilesets(collection: CollectionId, request: Request, context: ContextDep) -> dict[str, Any]:
    context.catalogue.get(collection)
    base = base_url(request)
    return {
        "tilesets": [
            {
                "title": f"{collection} in {name}",
                "dataType": "map",
                "crs": str(tile_matrix_set(name).crs),
                "tileMatrixSetURI": f"{base}/tileMatrixSets/{name}",
                "links": [
                    {"rel": "self", "href": f"{base}/collections/{collection}/map/tiles/{name}"},
                    {
                        "rel": "item",
                        "type": "image/png",
                        "templated": True,
                        "href": f"{base}/collections/{collection}/map/tiles/{name}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}"
                        "?variable={variable}&datetime={datetime}",
                    },
                ],
            }
            for name in TILE_MATRIX_SETS
        ]
    }


@router.get(
    "/collections/{collection}/map/tiles/{tms}/{z}/{row}/{col}",
    summary="A map tile of one variable of a collection (OGC API Tiles)",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
    dependencies=[Depends(resource("cube", "collection"))],
)
def map_tile(
    request: Request,
    context: ContextDep,
    collection: CollectionId,
    tms: Annotated[str, Path(max_length=32)],
    z: Annotated[int, Path(ge=0, le=30)],
    row: Annotated[int, Path(ge=0)],
    col: Annotated[int, Path(ge=0)],
    variable: Annotated[str | None, Query(max_length=128, description="default: the first variable")] = None,
    datetime: Annotated[str | None, Query(max_length=64, description="ISO time; the nearest step")] = None,
    colormap: Annotated[str | None, Query(max_length=64)] = None,
    vmin: Annotated[float | None, Query()] = None,
    vmax: Annotated[float | None, Query()] = None,
) -> Response:
    entry = context.tiles.entry(collection)
    if not variable and not entry.variables:
        raise InputError(f"collection {collection!r} has no variables to draw")
    name = variable or entry.variables[0].name
    style = context.tiles.style(collection, name, colormap=colormap, vmin=vmin, vmax=vmax)
    tile = context.tiles.tile(collection, name, tms_name=tms, z=z, x=col, y=row, time=datetime, style=style)
    return png_response(request, context, collection, tile)


def _edr(
    context: Context,
    collection: str,
    coords: str,
    parameter_name: str | None,
    datetime: str | None,
    kind: str,
) -> dict[str, Any]:
    entry = context.tiles.entry(collection)
    try:
        geometry = shapely.wkt.loads(coords)
    except (ShapelyError, ValueError, TypeError):
        raise InputError(
            f"coords {coords[:80]!r} is not WKT, e.g. POINT(20.5 60.1) or POLYGON((...))"
        ) from None
    wanted = ("Point",) if kind == "position" else ("Polygon", "MultiPolygon")
    if geometry.geom_type not in wanted:
        raise InputError(
            f"{kind} queries take a {' or '.join(w.upper() for w in wanted)}, "
            f"not a {geometry.geom_type.upper()}"
        )
    geometry = parse_geojson(shapely.geometry.mapping(geometry))  # lon/lat range and validity
    names = [
        n.strip()
        for n in (parameter_name or ",".join(v.name for v in entry.variables)).split(",")
        if n.strip()
    ]
    if not names:
        raise InputError(
            "parameter-name lists no parameter; give names from the collection's parameter_names"
        )
    variables = {name: entry.variable(name) for name in names}  # NotFoundError naming the variables
    start, end = params.interval_ends(datetime) if datetime else (None, None)
    records = {
        name: time_series(context.open_cubes, collection, name, geometry, ["mean"], start=start, end=end)
        for name in names
    }
    return series(geometry, records, variables)


COVJSON: dict[str, Any] = {"content": {"application/prs.coverage+json": {}}}


@router.get(
    "/collections/{collection}/position",
    summary="EDR: time series at a point, as CoverageJSON",
    dependencies=[Depends(resource("cube", "collection"))],
    responses={200: COVJSON},
)
def position(
    collection: CollectionId,
    context: ContextDep,
    coords: Annotated[str, Query(max_length=200, description="WKT POINT(lon lat)")],
    parameter_name: Annotated[str | None, Query(alias="parameter-name", max_length=1000)] = None,
    datetime: Annotated[str | None, Query(max_length=100, description="instant or start/end")] = None,
) -> Response:
    return _covjson(_edr(context, collection, coords, parameter_name, datetime, "position"))


@router.get(
    "/collections/{collection}/area",
    summary="EDR: mean time series over a polygon, as CoverageJSON",
    dependencies=[Depends(resource("cube", "collection"))],
    responses={200: COVJSON},
)
def area(
    collection: CollectionId,
    context: ContextDep,
    coords: Annotated[str, Query(max_length=100_000, description="WKT POLYGON((lon lat, ...))")],
    parameter_name: Annotated[str | None, Query(alias="parameter-name", max_length=1000)] = None,
    datetime: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    return _covjson(_edr(context, collection, coords, parameter_name, datetime, "area"))


def _covjson(body: dict[str, Any]) -> Response:
    return Response(json.dumps(body), media_type="application/prs.coverage+json")
