"""The FastAPI app factory: one app per Context, every router mounted, errors as problem JSON."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from cubeport import __version__
from cubeport.api import problems
from cubeport.api.limits import BodyLimit
from cubeport.api.routers import (
    admin,
    analysis,
    auth,
    cubes,
    dashboard,
    datasets,
    features,
    landing,
    news,
    ogc,
    ops,
    places,
    processes,
    rolling_cache,
    s3,
    stac,
    tiles,
    viewer,
    wmts,
    zarr,
)
from cubeport.config import Settings
from cubeport.context import Context
from cubeport.deadline import time_budget


class TimeBudget:
    """ASGI middleware: every HTTP request runs within `deadline.time_budget(seconds)`."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app, self.seconds = app, seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with time_budget(self.seconds):
            await self.app(scope, receive, send)


OPENAPI_URL = "/api"
OPENAPI_TYPE = "application/vnd.oai.openapi+json;version=3.0"


def _serve_openapi_as_openapi(app: FastAPI, url: str) -> None:
    """/api answers with the OpenAPI media type its links announce (STAC and OGC validators compare them);
    FastAPI's own route says application/json."""

    async def openapi_document(request: Request) -> JSONResponse:
        return JSONResponse(app.openapi(), media_type=OPENAPI_TYPE)

    app.router.routes[:] = [r for r in app.router.routes if getattr(r, "path", None) != url]
    app.add_route(url, openapi_document, include_in_schema=False)


def create_app(context: Context | Settings | None = None) -> FastAPI:
    """Build the app; `context` defaults to one made from the environment."""
    if not isinstance(context, Context):
        context = Context(context)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # each worker opens the cubes before it takes requests, so the first map does not wait for it
        await run_in_threadpool(context.tiles.warm_up)
        # jobs queued in the database run in this server's executor (or on the Dask cluster it names)
        dispatcher = context.start_dispatcher() if context.settings.processing.run_jobs else None
        # What start-up made (modules, opened cubes) lives as long as the app: frozen, it is left out of
        # later full garbage collections, each of which walked its 300,000 objects (0.2 s, holding the GIL,
        # so every other request waited) when a request made many objects, e.g. a big GeoJSON body
        gc.collect()
        gc.freeze()
        yield
        gc.unfreeze()
        if dispatcher is not None:
            await run_in_threadpool(context.stop_dispatcher, dispatcher)

    app = FastAPI(
        lifespan=lifespan,
        title="Cubeport",
        version=__version__,
        description="Earth-observation data platform: cubes, tiles, time series, features, processing.",
        openapi_url=OPENAPI_URL,
        docs_url="/api.html",
        redoc_url=None,
    )
    _serve_openapi_as_openapi(app, OPENAPI_URL)
    app.state.context = context
    admin_password = context.settings.auth.admin_password
    if admin_password is not None:
        context.auth.ensure_admin(admin_password.get_secret_value())
    problems.install(app)
    # Any site may read the API, as xcube server and TiTiler allow (viewers on other origins, notebooks):
    # without credentials, so a browser never sends its session cookie cross-site; keys go in headers.
    app.add_middleware(TimeBudget, seconds=context.settings.request_seconds)
    # outside the time budget: a slow upload does not use it up
    app.add_middleware(BodyLimit, max_bytes=context.settings.max_body_bytes)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["GET", "POST", "DELETE", "HEAD", "OPTIONS"],
        allow_headers=["Authorization", "X-API-Key", "Content-Type", "If-None-Match"],
        expose_headers=["ETag"],
        max_age=3600,
    )
    app.include_router(landing.router)
    app.include_router(auth.router)
    app.include_router(admin.router)
    app.include_router(rolling_cache.router)
    app.include_router(cubes.router)
    app.include_router(datasets.router)
    app.include_router(places.router)
    app.include_router(tiles.router)
    app.include_router(analysis.router)
    app.include_router(dashboard.router)
    app.include_router(ogc.router)
    app.include_router(features.router)
    app.include_router(wmts.router)
    app.include_router(zarr.router)
    app.include_router(s3.router)
    app.include_router(stac.router)
    app.include_router(processes.router)
    app.include_router(ops.router)
    app.include_router(news.router)
    app.include_router(viewer.router)
    return app
