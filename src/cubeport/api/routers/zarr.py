"""The cube stores over HTTP, read-only: `/zarr/{ds}/{store}/{key}` serves the objects of a cube's Zarr
stores (with the access checks of every data route), so that xarray, zarr and `cubeport.client` open a
served cube lazily, as a local one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response

from cubeport.api.deps import get_context
from cubeport.api.security import cache_scope, resource
from cubeport.context import Context

router = APIRouter(prefix="/zarr", tags=["zarr"])


ROUTE = "/{ds}/{store}/{key:path}"
GUARD = [Depends(resource("cube", "ds"))]


@router.get(
    ROUTE,
    summary="An object of a cube's Zarr store (read-only; HEAD: its size)",
    response_class=Response,
    dependencies=GUARD,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def zarr_object(
    ds: Annotated[str, Path(max_length=128)],
    store: Annotated[
        str, Path(max_length=32, description="0.zarr (full resolution), 1.zarr, ... or timeseries.zarr")
    ],
    key: Annotated[str, Path(max_length=512)],
    context: Annotated[Context, Depends(get_context)],
) -> Response:
    data = context.cubes.published_object(ds, store, key, context.open_cubes.pointer(ds))
    scope = cache_scope(context, "cube", ds)
    kind = "application/json" if key.rsplit("/", 1)[-1].startswith(".z") else "application/octet-stream"
    # metadata may change with an append; chunks of a published step never do
    max_age = 5 if kind == "application/json" else 3600
    return Response(data, media_type=kind, headers={"Cache-Control": f"{scope}, max-age={max_age}"})


# HEAD (fsspec's and GDAL's first question about an object) shares the GET route's code and guard; the
# server sends the headers only
router.add_api_route(
    ROUTE, zarr_object, methods=["HEAD"], include_in_schema=False, response_class=Response, dependencies=GUARD
)
