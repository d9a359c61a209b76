"""The analysis dashboard's numbers: WFD-style classes, summer means, daily means and a histogram of a variable
over a water body of a place group (class limits from the feature's `{variable}_class_limits`) or over a
drawn polygon (limits given)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from shapely.geometry import shape

from cubeport.analysis.classes import class_report
from cubeport.analysis.geometry import parse_geojson
from cubeport.api.deps import get_context
from cubeport.api.routers.analysis import AllTouched, DatasetId, GeoJsonBody, VarName
from cubeport.api.security import CurrentPrincipal, authorize, resource
from cubeport.context import Context
from cubeport.errors import InputError

router = APIRouter(tags=["viewer"])
ContextDep = Annotated[Context, Depends(get_context)]
Limits = Annotated[
    str | None,
    Query(max_length=200, description="four class limits, comma-separated (High|Good|Moderate|Poor|Bad)"),
]
StartDate = Annotated[str | None, Query(alias="startDate", max_length=64)]
EndDate = Annotated[str | None, Query(alias="endDate", max_length=64)]


def parse_limits(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise InputError(f"limits {text!r}: give four numbers separated by commas, e.g. 2,3.5,6,10") from None


@router.get(
    "/dashboards/{ds}/{var}/places/{group}/{place}",
    summary="Classes, summer means and daily values of a variable over one place (a water body)",
    dependencies=[Depends(resource("cube", "ds"))],
)
def place_dashboard(
    ds: DatasetId,
    var: VarName,
    group: Annotated[str, Path(max_length=64)],
    place: Annotated[str, Path(max_length=128)],
    context: ContextDep,
    principal: CurrentPrincipal,
    limits: Limits = None,
    start_date: StartDate = None,
    end_date: EndDate = None,
    all_touched: AllTouched = False,
) -> dict[str, Any]:
    """Two resources: the dataset (the route's guard) and the place group (authorised here)."""
    context.tiles.entry(ds)  # first the dataset: a missing one answers the same whatever the group
    authorize(context, principal, "collection", group, "read", None)
    feature = context.places.feature(group, place)
    if not isinstance(feature.get("geometry"), dict):
        raise InputError(f"place {place!r} of group {group!r} has no geometry")
    chosen = parse_limits(limits) or (feature.get("properties") or {}).get(f"{var}_class_limits")
    if chosen is None:
        raise InputError(f"place {place!r} has no {var}_class_limits property: give limits=")
    report = class_report(
        context.open_cubes,
        ds,
        var,
        shape(feature["geometry"]),
        chosen,
        start=start_date,
        end=end_date,
        all_touched=all_touched,
    )
    return {
        "place": {"group": group, "id": place, "name": (feature.get("properties") or {}).get("name", place)},
        **report,
    }


@router.post(
    "/dashboards/{ds}/{var}",
    summary="Classes, summer means and daily values over a GeoJSON polygon",
    dependencies=[Depends(resource("cube", "ds"))],
    openapi_extra={
        "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}, "required": True}
    },
)
def polygon_dashboard(
    ds: DatasetId,
    var: VarName,
    context: ContextDep,
    body: GeoJsonBody,
    limits: Limits = None,
    start_date: StartDate = None,
    end_date: EndDate = None,
    all_touched: AllTouched = False,
) -> dict[str, Any]:
    chosen = parse_limits(limits)
    if chosen is None:
        raise InputError("give the four class limits: limits=2,3.5,6,10")
    context.tiles.entry(ds)
    geometry = parse_geojson(body)  # in this route's worker thread
    return class_report(
        context.open_cubes, ds, var, geometry, chosen, start=start_date, end=end_date, all_touched=all_touched
    )
