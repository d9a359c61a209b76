"""xcube-compatible time series and statistics: `POST /timeseries/{ds}/{var}` with a GeoJSON body (read
as JSON whatever its Content-Type, as the xcube viewer sends text/plain), `GET`/`POST /statistics/{ds}/{var}`."""

from __future__ import annotations

import functools
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from shapely.geometry import Point

from cubeport.analysis.geometry import parse_geojson
from cubeport.analysis.statistics import statistics
from cubeport.analysis.timeseries import AGGREGATIONS, time_series
from cubeport.api.deps import get_context
from cubeport.api.security import resource
from cubeport.context import Context
from cubeport.errors import InputError

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
MAX_BODY = 5_000_000


async def geojson_body(request: Request) -> Any:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise InputError(f"the GeoJSON body is larger than {MAX_BODY:,} bytes; simplify the geometry")
    return parse_geojson(body)


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
    geometry: Annotated[Any, Depends(geojson_body)],
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
    """A point reads at most a few chunks (of the twin, or up to 15 steps of a cube too short for one), so it is
    answered on the event loop, saving the thread hop; a polygon may read many and goes to a worker thread.
    The records go straight to orjson: FastAPI's encoder took longer than the computation, `json.dumps` a
    fifth of it."""
    context.tiles.entry(ds)  # 404 for a cube not in the catalogue (cached)
    methods = [m.strip() for m in agg_methods.split(",") if m.strip()]
    series = functools.partial(
        time_series,
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
    records = series() if isinstance(geometry, Point) else await run_in_threadpool(series)
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
    geometry: Annotated[Any, Depends(geojson_body)],
    time: Annotated[str | None, Query(max_length=64)] = None,
    all_touched: AllTouched = False,
) -> dict[str, Any]:
    context.tiles.entry(ds)  # 404 for a cube not in the catalogue (cached)
    return {"result": statistics(context.open_cubes, ds, var, geometry, time, all_touched=all_touched)}
