"""ASGI middleware that bounds request bodies before any route reads them.

A body is read here, counted as it arrives: a Content-Length over `Settings.max_body_bytes` is refused at
once and a streamed (chunked) body as soon as it passes the limit, both with 413 problem JSON. A body that
looks like JSON is then measured (`nesting.text_depth`) and refused with 400 when it nests deeper than
`nesting.MAX_JSON_DEPTH`, before FastAPI's or a route's parser recurses into it. The route then gets the
same bytes. Routes may keep smaller limits of their own."""

from __future__ import annotations

import re

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cubeport import nesting
from cubeport.api.problems import problem

JSON_START = re.compile(rb"\s*[\[{]")  # whatever its Content-Type: xcube clients send GeoJSON as text/plain
# bytes of JSON measured on the event loop (about 20 ms a megabyte); a larger body is measured in a thread
SCAN_IN_THREAD = 1 << 20


class BodyLimit:
    """At most `max_bytes` a request body, and JSON bodies at most `nesting.MAX_JSON_DEPTH` deep."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length", "")
        if length.isdigit() and int(length) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if JSON_START.match(body):
            depth = (
                await run_in_threadpool(nesting.text_depth, body)
                if size > SCAN_IN_THREAD
                else nesting.text_depth(body)
            )
            if depth > nesting.MAX_JSON_DEPTH:
                detail = f"the JSON body nests deeper than {nesting.MAX_JSON_DEPTH} levels"
                await problem(400, detail, limit="depth", maximum=nesting.MAX_JSON_DEPTH)(
                    scope, receive, send
                )
                return
        await self.app(scope, _replay(body, receive), send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"the request body is larger than {self.max_bytes:,} bytes"
        await problem(413, detail, limit="bytes", maximum=self.max_bytes)(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the whole body once, then waits on the client (for its disconnect)."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> Message:
        return pending.pop() if pending else await receive()

    return replayed
