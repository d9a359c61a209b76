"""FastAPI dependencies shared by the routers."""

from __future__ import annotations

from fastapi import Request

from cubeport.context import Context


async def get_context(request: Request) -> Context:  # async: FastAPI runs sync dependencies in a thread
    context: Context = request.app.state.context
    return context
