"""News items over HTTP: everyone reads them (JSON and an Atom feed), admins post, edit and remove them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field

from cubeport.api.deps import get_context
from cubeport.api.security import ADMIN, OPEN, signed_in_name
from cubeport.api.urls import base_url
from cubeport.auth.principal import Principal
from cubeport.context import Context
from cubeport.platform.news import MAX_LIST, News, NewsItem, atom

router = APIRouter(tags=["platform"])
ContextDep = Annotated[Context, Depends(get_context)]
Admin = Annotated[Principal, Depends(ADMIN)]
ItemId = Annotated[int, Path(ge=1, description="the item's id")]
ATOM_TYPE = "application/atom+xml"
FEED_ITEMS = 50
PUBLIC = {"Cache-Control": "public, max-age=60"}  # news is public: shared caches may keep it a minute


class LinkIn(BaseModel):
    href: str = Field(description="an http(s) URL, or a path on this server starting with /")
    title: str = ""


class NewsIn(BaseModel):
    """An item as an admin writes it (limits and the wording of refusals are the core's)."""

    title: str = Field(description="at most 200 characters, one line")
    body: str = Field("", description="Markdown or plain text, at most 64 KiB")
    links: list[LinkIn] = Field(default_factory=list, description="where to read more, at most 20")


def _news(context: Context) -> News:
    return News(context.db)


def _links(body: NewsIn) -> list[dict[str, str]]:
    return [link.model_dump() for link in body.links]


@router.get("/news", summary="News items, newest first (public)", dependencies=[Depends(OPEN)])
def news_list(
    request: Request,
    response: Response,
    context: ContextDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST)] = 20,
    before: Annotated[
        datetime | None, Query(description="items posted before this time (RFC 3339): the next page")
    ] = None,
) -> dict[str, Any]:
    items = _news(context).list(limit, before)
    base = base_url(request)
    links = [
        {"rel": "self", "href": str(request.url), "type": "application/json"},
        {"rel": "alternate", "href": f"{base}/news.atom", "type": ATOM_TYPE, "title": "Atom feed"},
    ]
    if len(items) == limit:
        query = urlencode({"limit": limit, "before": _cursor(items[-1])})
        links.append({"rel": "next", "href": f"{base}/news?{query}", "type": "application/json"})
    response.headers.update(PUBLIC)
    return {"items": [i.to_dict() for i in items], "links": links}


def _cursor(item: NewsItem) -> str:
    """The paging cursor: the item's creation time to the microsecond (two posts may share a second)."""
    return item.created.isoformat()


@router.get("/news.atom", summary="News items as an Atom 1.0 feed (public)", dependencies=[Depends(OPEN)])
def news_feed(request: Request, context: ContextDep) -> Response:
    feed = atom(base_url(request), _news(context).list(FEED_ITEMS))
    return Response(feed, media_type=ATOM_TYPE, headers=PUBLIC)


@router.get("/news/{item_id}", summary="One news item (public)", dependencies=[Depends(OPEN)])
def news_item(item_id: ItemId, response: Response, context: ContextDep) -> dict[str, Any]:
    response.headers.update(PUBLIC)
    return _news(context).get(item_id).to_dict()


@router.post("/news", summary="Post a news item (admins)", status_code=201)
def news_post(body: NewsIn, context: ContextDep, admin: Admin) -> dict[str, Any]:
    item = _news(context).post(body.title, body.body, signed_in_name(admin), links=_links(body))
    return item.to_dict()


@router.put("/news/{item_id}", summary="Replace a news item's title, body and links (admins)")
def news_update(item_id: ItemId, body: NewsIn, context: ContextDep, _: Admin) -> dict[str, Any]:
    item = _news(context).update(item_id, title=body.title, body=body.body, links=_links(body))
    return item.to_dict()


@router.delete("/news/{item_id}", summary="Remove a news item (admins)", status_code=204)
def news_delete(item_id: ItemId, context: ContextDep, _: Admin) -> Response:
    _news(context).delete(item_id)
    return Response(status_code=204)
