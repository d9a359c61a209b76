"""xcube-compatible map tiles: `/tiles/{ds}/{var}/{z}/{y}/{x}` with xcube's parameters (crs, vmin, vmax,
cmap with `_r`/`_alpha`, norm, time, retina), PNG with ETag and Cache-Control."""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, Depends, Path, Query, Request, Response

from cubeport.api.deps import get_context
from cubeport.api.security import cache_scope, resource
from cubeport.context import Context
from cubeport.render import png
from cubeport.render.colormaps import COLOURS
from cubeport.render.tiles import palette
from cubeport.render.tms import for_xcube_crs

router = APIRouter(tags=["xcube"])
ContextDep = Annotated[Context, Depends(get_context)]
MAX_AGE = 3600


def png_response(request: Request, context: Context, cube_id: str, tile) -> Response:  # type: ignore[no-untyped-def]
    """The tile, or 304 when the client has it; restricted cubes are not for shared caches."""
    scope = cache_scope(context, "cube", cube_id)
    headers = {"ETag": tile.etag, "Cache-Control": f"{scope}, max-age={MAX_AGE}"}
    if request.headers.get("if-none-match") == tile.etag:
        return Response(status_code=304, headers=headers)
    return Response(tile.content, media_type="image/png", headers=headers)


@router.get(
    "/tiles/{ds}/{var}/{z}/{y}/{x}",
    summary="A map tile of a variable (xcube server compatible)",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}, 304: {}},
    dependencies=[Depends(resource("cube", "ds"))],
)
def xcube_tile(
    request: Request,
    context: ContextDep,
    ds: Annotated[str, Path(description="dataset (cube) id", max_length=128)],
    var: Annotated[str, Path(description="variable name", max_length=128)],
    z: Annotated[int, Path(ge=0, le=30)],
    y: Annotated[int, Path(ge=0)],
    x: Annotated[int, Path(ge=0)],
    crs: Annotated[str, Query(description="tiling: EPSG:3857 (Web Mercator) or CRS84")] = "EPSG:3857",
    vmin: Annotated[float | None, Query(description="value at the low end of the colour map")] = None,
    vmax: Annotated[float | None, Query(description="value at the high end of the colour map")] = None,
    cmap: Annotated[
        str | None, Query(max_length=64, description="colour map, e.g. viridis, thermal_r, Blues_alpha")
    ] = None,
    norm: Annotated[Literal["lin", "log", "cat"] | None, Query(description="colour scale")] = None,
    time: Annotated[
        str | None, Query(max_length=64, description="ISO time; the nearest step (default: newest)")
    ] = None,
    retina: Annotated[bool, Query(description="512 px instead of 256 px")] = False,
    resampling: Annotated[Literal["nearest", "bilinear"], Query()] = "nearest",
) -> Response:
    tiles = context.tiles
    style = tiles.style(ds, var, colormap=cmap, vmin=vmin, vmax=vmax, norm=norm)
    tile = tiles.tile(
        ds,
        var,
        tms_name=str(for_xcube_crs(crs).id),  # morecantile types the id as optional; every one here has one
        z=z,
        x=x,
        y=y,
        time=time,
        style=style,
        resampling=resampling,
        retina=retina,
    )
    return png_response(request, context, ds, tile)


@router.get(
    "/tiles/{ds}/{var}/legend",
    summary="The colour bar of a variable as a PNG",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
    dependencies=[Depends(resource("cube", "ds"))],
)
def legend(
    context: ContextDep,
    ds: Annotated[str, Path(max_length=128)],
    var: Annotated[str, Path(max_length=128)],
    cmap: Annotated[str | None, Query(max_length=64)] = None,
    norm: Annotated[Literal["lin", "log", "cat"] | None, Query()] = None,
    width: Annotated[int, Query(ge=8, le=2048)] = 256,
    height: Annotated[int, Query(ge=1, le=256)] = 16,
) -> Response:
    """A gradient from vmin (left) to vmax (right) in the variable's style or the given colour map; the style
    is the cube's, so a restricted cube's legend is not for shared caches either."""
    style = context.tiles.style(ds, var, colormap=cmap, norm=norm)
    columns = np.linspace(0, COLOURS - 1, width).astype(np.uint8)
    image = png.encode(np.tile(columns, (height, 1)), palette(style.colormap, style.norm))  # type: ignore[arg-type]
    scope = cache_scope(context, "cube", ds)
    return Response(image, media_type="image/png", headers={"Cache-Control": f"{scope}, max-age={MAX_AGE}"})
