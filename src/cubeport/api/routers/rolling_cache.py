"""The rolling cache over HTTP (admins only): its numbers, its entries, purging and pinning."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from cubeport.api.deps import get_context
from cubeport.api.security import ADMIN
from cubeport.auth.principal import Principal
from cubeport.context import Context

router = APIRouter(prefix="/admin/cache", tags=["admin"])
ContextDep = Annotated[Context, Depends(get_context)]
Admin = Annotated[Principal, Depends(ADMIN)]
# a key is a URL (with #bytes=a-b for a range, after source:NAME| for a STAC source's entry): send it
# percent-encoded, slashes may stay
Key = Annotated[
    str, Path(max_length=2048, description="the entry's key (source:NAME|URL#bytes=a-b), percent-encoded")
]


class PurgeRequest(BaseModel):
    all: bool = Field(False, description="every entry (pinned ones only with include_pinned)")
    expired: bool = Field(False, description="the entries older than the TTL (pinned entries never expire)")
    prefix: str | None = Field(
        None,
        min_length=1,
        max_length=2048,
        description="the entries whose key starts so (e.g. source:NAME| for a STAC source's)",
    )
    include_pinned: bool = Field(False, description="remove pinned entries too")


@router.get("", summary="The cache's quota, use, watermarks and counters (shared by every worker)")
def cache_stats(context: ContextDep, _: Admin) -> dict[str, Any]:
    return context.cache.stats().to_dict()


@router.get("/entries", summary="The cache's entries, most recently used first")
def cache_entries(
    context: ContextDep,
    _: Admin,
    prefix: Annotated[str | None, Query(max_length=2048, description="keys starting so")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> dict[str, Any]:
    return {"entries": [e.to_dict() for e in context.cache.entries(prefix, limit)]}


@router.post("/purge", summary="Remove every entry, the expired ones, or those of a key prefix")
def cache_purge(request: PurgeRequest, context: ContextDep, _: Admin) -> dict[str, Any]:
    removed = context.cache.purge(
        everything=request.all,
        expired=request.expired,
        prefix=request.prefix,
        include_pinned=request.include_pinned,
    )
    return {"removed": removed}


@router.put("/entries/{key:path}/pin", summary="Pin an entry: never evicted nor expired until unpinned")
def cache_pin(key: Key, context: ContextDep, _: Admin) -> dict[str, Any]:
    return context.cache.pin(key).to_dict()


@router.delete("/entries/{key:path}/pin", summary="Unpin an entry")
def cache_unpin(key: Key, context: ContextDep, _: Admin) -> dict[str, Any]:
    return context.cache.unpin(key).to_dict()
