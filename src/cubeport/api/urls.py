"""The server's own URLs, for the links of its documents."""

from __future__ import annotations

from fastapi import Request


def base_url(request: Request, path: str = "") -> str:
    """The URL the client reached the server's root by, without a trailing slash, then `path` (e.g. "/stac")."""
    return str(request.base_url).rstrip("/") + path
