"""RFC 9457 problem JSON for every error response, and the one table from domain errors to status codes.

The body also carries `error.message`, the shape xcube clients read, so both kinds of clients understand
one body. Unexpected exceptions become a 500 with a generic message; the details go to the log only.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cubeport.errors import (
    AuthenticationError,
    ConfigError,
    ConflictError,
    CubeportError,
    InputError,
    LimitError,
    NotFoundError,
    PermissionDeniedError,
    StorageError,
    ThrottledError,
    UnavailableError,
)

log = logging.getLogger("cubeport.api")
PROBLEM_TYPE = "application/problem+json"

STATUS_OF: dict[type[CubeportError], int] = {  # the first class that matches counts
    LimitError: 422,
    InputError: 400,
    AuthenticationError: 401,
    PermissionDeniedError: 403,
    NotFoundError: 404,
    ConflictError: 409,
    ThrottledError: 429,
    ConfigError: 500,
    StorageError: 503,
    UnavailableError: 503,
}


def _headers(exc: CubeportError) -> dict[str, str]:
    if isinstance(exc, AuthenticationError):
        return {"WWW-Authenticate": 'Bearer realm="cubeport"'}
    if isinstance(exc, ThrottledError):
        return {"Retry-After": str(exc.retry_after)}
    return {}


def problem(status: int, detail: str, **extra: Any) -> JSONResponse:
    title = HTTPStatus(status).phrase
    body = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "error": {"message": detail},
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_TYPE)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into problem JSON."""

    @app.exception_handler(CubeportError)
    async def _domain(request: Request, exc: CubeportError) -> JSONResponse:
        status = next((s for cls, s in STATUS_OF.items() if isinstance(exc, cls)), 500)
        if status >= 500:
            log.error("%s %s failed: %s", request.method, request.url.path, exc)
        extra = {"limit": exc.limit, "maximum": exc.maximum} if isinstance(exc, LimitError) else {}
        response = problem(status, str(exc), **extra)
        response.headers.update(_headers(exc))
        return response

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no route {request.url.path}; see /api for the API"
        response = problem(exc.status_code, detail)
        for key, value in (exc.headers or {}).items():
            response.headers[key] = value
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        first: dict[str, Any] = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(p for p in first["loc"] if p not in ("body", "query", "path"))
        return problem(422, f"{where}: {first['msg']}" if where else first["msg"], errors=errors)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return problem(500, "internal error; the server log has the details")
