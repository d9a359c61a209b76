"""FastAPI dependencies shared by the routers."""

from __future__ import annotations

from fastapi import Request

from cubeport.context import Context


def get_context(request: Request) -> Context:
    return request.app.state.context
