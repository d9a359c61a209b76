"""FastAPI dependencies shared by the routers."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import Depends, Request

from cubeport.context import Context
from cubeport.errors import InputError


async def get_context(request: Request) -> Context:  # async: FastAPI runs sync dependencies in a thread
    context: Context = request.app.state.context
    return context


async def raw_body(request: Request) -> bytes:
    """The body unparsed. Routes whose bodies can be megabytes parse it (`json_object`) in their worker
    thread, so a large body never holds up the event loop; `api/limits.BodyLimit` has bounded its size and
    nesting before it gets here."""
    return await request.body()


RawBody = Annotated[bytes, Depends(raw_body)]

# the OpenAPI request body of a route that takes `RawBody` and parses it as a JSON object
JSON_OBJECT_BODY: dict[str, Any] = {
    "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}, "required": True}
}


def json_object(raw: bytes, what: str) -> dict[str, Any]:
    """A body parsed as one JSON object; InputError saying what to send otherwise."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"the body is not JSON ({exc}); send {what}") from None
    if not isinstance(value, dict):
        raise InputError(f"send {what} as a JSON object")
    return value
