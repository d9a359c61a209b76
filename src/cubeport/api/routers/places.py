"""xcube-compatible place groups: `/places`, `/places/{group}` and `/datasets/{ds}/places/{group}` (the
features of a group that touch the dataset), each group with the access of the collection of its id."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from cubeport.api.deps import get_context
from cubeport.api.security import CurrentPrincipal, authorize, listing, resource
from cubeport.auth.principal import Principal
from cubeport.context import Context

router = APIRouter(tags=["xcube"])
ContextDep = Annotated[Context, Depends(get_context)]
GroupId = Annotated[str, Path(max_length=64, description="place group id")]


@router.get("/places", summary="Place groups the caller may see (without their features)")
def list_places(
    context: ContextDep, principal: Annotated[Principal, Depends(listing("collection"))]
) -> dict[str, Any]:
    groups = [
        context.places.get(g) for g in context.policy.visible(principal, "collection", context.places.ids())
    ]
    return {"placeGroups": [{"id": g["id"], "title": g["title"], "type": g["type"]} for g in groups]}


@router.get(
    "/places/{group}",
    summary="A place group as a GeoJSON FeatureCollection",
    dependencies=[Depends(resource("collection", "group"))],
)
def get_places(group: GroupId, context: ContextDep) -> dict[str, Any]:
    return context.places.get(group)


@router.get(
    "/datasets/{ds}/places/{group}",
    summary="The places of a group that touch a dataset",
    dependencies=[Depends(resource("cube", "ds"))],
)
def dataset_places(
    ds: Annotated[str, Path(max_length=128)], group: GroupId, context: ContextDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Two resources: the dataset (the route's guard) and the place group (authorised here). Each is found
    before the next is looked at, so that a hidden group and a missing one answer alike whatever the dataset."""
    bbox = context.catalogue.get(ds).bbox
    authorize(context, principal, "collection", group, "read", None)
    return context.places.get(group, within=bbox)


@router.get(
    "/places/{group}/{place}/observations",
    summary="In-situ observations of one place (a station)",
    tags=["viewer"],
    dependencies=[Depends(resource("collection", "group"))],
)
def place_observations(
    group: GroupId,
    place: Annotated[str, Path(max_length=128)],
    context: ContextDep,
    parameter: Annotated[str | None, Query(max_length=64, description="e.g. chl")] = None,
) -> dict[str, Any]:
    return {"place": place, "observations": context.places.observations(group, place, parameter)}
