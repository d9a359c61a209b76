"""xcube-compatible time series and statistics: `POST /timeseries/{ds}/{var}` with a GeoJSON body (read
as JSON whatever its Content-Type, as the xcube viewer sends text/plain), `GET`/`POST /statistics/{ds}/{var}`."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

from cubeport.analysis.geometry import parse_geojson
from cubeport.analysis.statistics import statistics
from cubeport.analysis.timeseries import AGGREGATIONS, time_series
from cubeport.api.deps import get_context
from cubeport.api.security import resource
from cubeport.context import Context

router = APIRouter(tags=["xcube"])
ContextDep = Annotated[Context, Depends(get_context)]
DatasetId = Annotated[str, Path(description="dataset (cube) id", max_length=128)]
VarName = Annotated[str, Path(description="variable name", max_length=128)]
AllTouched = Annotated[
    bool,
    Query(
        alias="allTouched",
        description="count every pixel the polygon touches, not only those whose centre is inside",
    ),
]
MAX_BODY = 5_000_000  # bytes of GeoJSON (the app's BodyLimit has read the body and checked its nesting)
INLINE_BODY = 2_048  # bytes of GeoJSON parsed on the event loop (a point or a small polygon: microseconds)


async def geojson_body(request: Request) -> bytes:
    """The GeoJSON body as bytes; routes parse it (`parse_geojson`) in their worker thread, since parsing and
    uniting a large FeatureCollection takes seconds."""
    body = await request.body()
    if len(body) > MAX_BODY:
        raise HTTPException(413, f"the GeoJSON body is larger than {MAX_BODY:,} bytes; simplify the geometry")
    return body


GeoJsonBody = Annotated[bytes, Depends(geojson_body)]


@router.post(
    "/timeseries/{ds}/{var}",
    summary="Time series at a point or over a polygon (xcube compatible)",
    dependencies=[Depends(resource("cube", "ds"))],
    openapi_extra={
        "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}, "required": True}
    },
)
async def post_time_series(
    ds: DatasetId,
    var: VarName,
    context: ContextDep,
    body: GeoJsonBody,
    agg_methods: Annotated[
        str, Query(alias="aggMethods", description=f"comma-separated: {', '.join(AGGREGATIONS)}")
    ] = "mean",
    start_date: Annotated[str | None, Query(alias="startDate", max_length=64)] = None,
    end_date: Annotated[str | None, Query(alias="endDate", max_length=64)] = None,
    max_valids: Annotated[
        int | None,
        Query(
            alias="maxValids",
            ge=-1,
            description="-1: only steps with a value; N: the newest N steps with a value",
        ),
    ] = None,
    all_touched: AllTouched = False,
) -> Response:
    """A point reads at most a few chunks (of the twin, or up to 15 steps of a cube too short for one), so a
    small body that is a point is answered on the event loop, saving the thread hop; anything else is parsed
    and read in a worker thread. The records go straight to orjson: FastAPI's encoder took longer than the
    computation, `json.dumps` a fifth of it."""
    context.tiles.entry(ds)  # 404 for a cube not in the catalogue (cached)
    methods = [m.strip() for m in agg_methods.split(",") if m.strip()]

    def series(geometry: BaseGeometry) -> list[dict[str, Any]]:
        return time_series(
            context.open_cubes,
            ds,
            var,
            geometry,
            methods,
            start=start_date,
            end=end_date,
            max_valids=max_valids or None,
            all_touched=all_touched,
        )

    small = parse_geojson(body) if len(body) <= INLINE_BODY else None
    if isinstance(small, Point):
        records = series(small)
    else:
        records = await run_in_threadpool(lambda: series(parse_geojson(body)))
    return Response(orjson.dumps({"result": records}), media_type="application/json")


@router.get(
    "/statistics/{ds}/{var}",
    summary="The value at a point at one time (xcube compatible)",
    dependencies=[Depends(resource("cube", "ds"))],
)
def get_statistics(
    ds: DatasetId,
    var: VarName,
    context: ContextDep,
    lon: Annotated[float, Query(ge=-180, le=360)],
    lat: Annotated[float, Query(ge=-90, le=90)],
    time: Annotated[
        str | None, Query(max_length=64, description="ISO time; the nearest step (default: newest)")
    ] = None,
) -> dict[str, Any]:
    context.tiles.entry(ds)  # 404 for a cube not in the catalogue (cached)
    return {"result": statistics(context.open_cubes, ds, var, Point(lon, lat), time)}


@router.post(
    "/statistics/{ds}/{var}",
    summary="Statistics over a polygon (or at a point) at one time",
    dependencies=[Depends(resource("cube", "ds"))],
    openapi_extra={
        "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}, "required": True}
    },
)
def post_statistics(
    ds: DatasetId,
    var: VarName,
    context: ContextDep,
    body: GeoJsonBody,
    time: Annotated[str | None, Query(max_length=64)] = None,
    all_touched: AllTouched = False,
) -> dict[str, Any]:
    context.tiles.entry(ds)  # 404 for a cube not in the catalogue (cached)
    geometry = parse_geojson(body)  # in this route's worker thread
    return {"result": statistics(context.open_cubes, ds, var, geometry, time, all_touched=all_touched)}
