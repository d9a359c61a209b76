"""The browser viewer: its page at / for browsers (API clients asking for JSON keep the landing document) and
its built files under /viewer/."""

from __future__ import annotations

import hashlib
import mimetypes
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response

from cubeport.api.deps import get_context
from cubeport.api.security import OPEN
from cubeport.context import Context
from cubeport.errors import NotFoundError
from cubeport.web import asset

router = APIRouter(tags=["viewer"])


def wants_page(request: Request) -> bool:
    """A browser navigating to the site (its Accept lists text/html), with the viewer built."""
    return "text/html" in request.headers.get("accept", "") and asset("index.html") is not None


def file_response(request: Request, name: str) -> Response:
    """The file, gzipped when the build made a .gz beside it and the browser takes gzip; ETag and 304."""
    path = asset(name)
    if path is None or name.endswith(".gz"):
        raise NotFoundError(f"no viewer file {name!r}; build the viewer with `make web`")
    packed = asset(name + ".gz") if "gzip" in request.headers.get("accept-encoding", "") else None
    content = (packed or path).read_bytes()
    etag = '"' + hashlib.sha1(content).hexdigest()[:20] + '"'
    # names are not hashed: browsers revalidate, cheaply
    headers = {"ETag": etag, "Cache-Control": "no-cache", "Vary": "Accept-Encoding"}
    if packed:
        headers["Content-Encoding"] = "gzip"
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return Response(content, media_type=media_type, headers=headers)


@router.get(
    "/viewer/{name}",
    summary="A file of the browser viewer",
    include_in_schema=False,
    dependencies=[Depends(OPEN)],
)
def viewer_file(request: Request, name: Annotated[str, Path(max_length=64)]) -> Response:
    return file_response(request, name)


@router.get(
    "/basemaps/{name}.geojson",
    summary="An offline base map layer (land polygons) as GeoJSON",
    dependencies=[Depends(OPEN)],
    response_class=Response,
    responses={200: {"content": {"application/geo+json": {}}}},
)
def basemap(
    name: Annotated[str, Path(max_length=32)], context: Annotated[Context, Depends(get_context)]
) -> Response:
    return Response(
        context.basemaps.get(name),
        media_type="application/geo+json",
        headers={"Cache-Control": "public, max-age=86400"},
    )
