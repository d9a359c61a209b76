"""Landing page and health: what a client asks first."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from cubeport import __version__
from cubeport.api.deps import get_context
from cubeport.api.routers.viewer import file_response, wants_page
from cubeport.api.security import OPEN
from cubeport.api.urls import base_url
from cubeport.context import Context

router = APIRouter(tags=["platform"])


@router.get(
    "/", summary="Landing page with links to the API (browsers get the viewer)", dependencies=[Depends(OPEN)]
)
def landing(request: Request) -> Any:
    if wants_page(request):
        return file_response(request, "index.html")
    base = base_url(request)
    return {
        "title": "Cubeport",
        "description": "Earth-observation data platform: data cubes, map tiles, time series, features.",
        "version": __version__,
        "links": [
            {"rel": "self", "href": f"{base}/", "type": "application/json", "title": "this document"},
            {
                "rel": "service-desc",
                "href": f"{base}/api",
                "type": "application/vnd.oai.openapi+json;version=3.0",
                "title": "OpenAPI definition",
            },
            {
                "rel": "service-doc",
                "href": f"{base}/api.html",
                "type": "text/html",
                "title": "API documentation",
            },
            {
                "rel": "conformance",
                "href": f"{base}/conformance",
                "type": "application/json",
                "title": "OGC API conformance classes",
            },
            {
                "rel": "data",
                "href": f"{base}/collections",
                "type": "application/json",
                "title": "collections (OGC API)",
            },
            {
                "rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes",
                "href": f"{base}/tileMatrixSets",
                "type": "application/json",
                "title": "tile matrix sets",
            },
            {
                "rel": "data",
                "href": f"{base}/datasets",
                "type": "application/json",
                "title": "datasets (xcube API)",
            },
            {"rel": "data", "href": f"{base}/cubes", "type": "application/json", "title": "cube catalogue"},
            {
                "rel": "service",
                "href": f"{base}/wmts/1.0.0/WMTSCapabilities.xml",
                "type": "application/xml",
                "title": "WMTS",
            },
            {
                "rel": "http://www.opengis.net/def/rel/ogc/1.0/processes",
                "href": f"{base}/processes",
                "type": "application/json",
                "title": "processes (OGC API - Processes)",
            },
            {
                "rel": "http://www.opengis.net/def/rel/ogc/1.0/job-list",
                "href": f"{base}/jobs",
                "type": "application/json",
                "title": "your jobs",
            },
            {"rel": "status", "href": f"{base}/health", "type": "application/json", "title": "health"},
            {"rel": "login", "href": f"{base}/auth/login", "type": "text/html", "title": "sign in"},
        ],
    }


@router.get("/health", summary="Whether the database and the storage answer", dependencies=[Depends(OPEN)])
def health(context: Annotated[Context, Depends(get_context)]) -> JSONResponse:
    checks: dict[str, str] = {}
    for name, check in (("database", context.db.revision), ("storage", context.storage.check)):
        try:
            check()
            checks[name] = "ok"
        except Exception as exc:  # a health route reports failures, it does not raise them
            checks[name] = f"failing: {(str(exc).splitlines() or [type(exc).__name__])[0][:200]}"
    healthy = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if healthy else "failing", "version": __version__, "checks": checks},
        status_code=200 if healthy else 503,
    )
