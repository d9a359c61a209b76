"""ASGI middleware that bounds request bodies before any route reads them.

A body is read here, counted as it arrives: a Content-Length over `Settings.max_body_bytes` is refused at
once and a streamed (chunked) body as soon as it passes the limit, both with 413 problem JSON. A body that
looks like JSON is measured as it arrives too (`nesting.DepthScan`, a slice at a time on the event loop,
which answers other requests between slices) and refused with 400 as soon as it nests deeper than
`nesting.MAX_JSON_DEPTH`, before FastAPI's or a route's parser recurses into it. The route then gets the
same bytes. Routes may keep smaller limits of their own."""

from __future__ import annotations

import asyncio

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cubeport import nesting
from cubeport.api.problems import problem

LEADING = b" \t\n\r\xef\xbb\xbf"  # what may come before JSON's first value: whitespace, a UTF-8 BOM
# bytes measured before the event loop takes other work: 16 KiB is about half a millisecond of the slowest JSON
# to scan (short strings). One scan of a whole 15 MB body of them held the loop (or, in a thread, the GIL)
# for 1.4 s; sliced, four such bodies at once keep /health under 0.3 s.
SLICE = 1 << 14


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
        scan: nesting.DepthScan | None = None  # once the first byte that is not a space says JSON
        json_or_not: bool | None = None
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
            if json_or_not is None and (first := chunk.lstrip(LEADING)[:1]):
                json_or_not = first in (b"[", b"{")  # whatever its Content-Type: xcube sends GeoJSON as text
                scan = nesting.DepthScan() if json_or_not else None
            if scan is not None and await _too_deep(scan, chunk):
                detail = f"the JSON body nests deeper than {nesting.MAX_JSON_DEPTH} levels"
                await problem(400, detail, limit="depth", maximum=nesting.MAX_JSON_DEPTH)(
                    scope, receive, send
                )
                return
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"the request body is larger than {self.max_bytes:,} bytes"
        await problem(413, detail, limit="bytes", maximum=self.max_bytes)(scope, receive, send)


async def _too_deep(scan: nesting.DepthScan, chunk: bytes) -> bool:
    """Measure a chunk a slice at a time, letting the event loop run between slices; whether the body so far
    nests deeper than allowed (then the rest need not be read)."""
    for start in range(0, len(chunk), SLICE):
        if start:
            await asyncio.sleep(0)
        if scan.feed(chunk[start : start + SLICE]) > nesting.MAX_JSON_DEPTH:
            return True
    await asyncio.sleep(0)  # a chunk that was waiting already comes back from receive() without a pause
    return False


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the whole body once, then waits on the client (for its disconnect)."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> Message:
        return pending.pop() if pending else await receive()

    return replayed
