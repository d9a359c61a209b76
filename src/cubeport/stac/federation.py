"""Federated STAC: remote STAC APIs registered as sources (with the headers that carry their credentials),
searched beside the local catalogue in one call.

- **Every source at once.** A page asks each source for up to `limit` items in parallel, each within its own
  timeout, then takes items round-robin (local first) up to `limit`. The next-page token remembers, per
  source, the page it was on and how many of its items were already taken, so no item is lost or repeated.
- **Degrade, don't fail.** A source that is slow, down, or answers nonsense is left out of the page (and of
  the pages after it) with a warning in the response; the other sources still answer.
- **Where each item comes from.** Items carry `cubeport:source` and a `via` link to the original; remote
  assets get an alternate href through this server's proxy, which fetches through the rolling cache.
- **Credentials stay with their source.** A source's headers go only to URLs under its base URL (`under`):
  the same scheme, host and port, a path below the base path, no user info, no dot segments (plain or
  percent-encoded); redirects are not followed. Next-page links that leave the base URL end the source's
  pages with a warning, and the asset proxy refuses other URLs.
- **Tokens the server signed.** The next-page token carries each source's next link; it is signed with
  HMAC-SHA-256 under the server's secret, so a client can only hand back what the server gave it.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import logging
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import httpx
import sqlalchemy as sa

from cubeport.db import Database
from cubeport.db.models import StacSourceRecord
from cubeport.errors import ConflictError, InputError, NotFoundError

log = logging.getLogger("cubeport.stac")
LOCAL = "local"
TOKEN_PURPOSE = b"cubeport stac federation token\0"  # what the server secret signs here, and nothing else
_ENCODED_DOT_OR_SLASH = re.compile(r"%(2e|2f|5c)", re.IGNORECASE)
ALTERNATE = "https://stac-extensions.github.io/alternate-assets/v1.2.0/schema.json"
SOURCE_NAME = r"^[a-z][a-z0-9-]{0,62}$"
Page = tuple[list[dict[str, Any]], Any]  # items, and how to ask for the next page (None: no more)


@dataclass(frozen=True)
class Source:
    """A remote STAC API. `headers` (e.g. Authorization) are sent to it and never shown."""

    name: str
    url: str
    title: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    timeout_seconds: float = 10.0

    @property
    def service_id(self) -> str:
        """The id under which the policy decides who may search the source (kind `service`)."""
        return f"stac-source:{self.name}"

    def public(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "url": self.url,
            "title": self.title,
            "timeout_seconds": self.timeout_seconds,
            "headers": sorted(self.headers),
        }  # names only: the values are credentials

    def owns(self, href: str) -> bool:
        """Whether the source's headers (credentials) may be sent to `href`: it is under its base URL."""
        return under(self.url, href)


def under(base: str, href: str) -> bool:
    """Whether `href` is under the URL `base`: the same scheme, host and port, and a path that is the base
    path or below it. Refused, since a server may read them otherwise than this test: user info, dot
    segments (also `..;`), percent-encoded dots, slashes and backslashes in the path, backslashes, spaces and
    control characters anywhere. The URL is read by httpx, as it is then sent."""
    if not href.isprintable() or any(c in href for c in " \\"):
        return False
    try:
        mine, theirs, path = httpx.URL(base), httpx.URL(href), urlsplit(href).path
    except (httpx.InvalidURL, ValueError):
        return False
    segments = {segment.split(";")[0] for segment in path.split("/")}
    if theirs.userinfo or _ENCODED_DOT_OR_SLASH.search(path) or segments & {".", ".."}:
        return False
    if (theirs.scheme, theirs.host, theirs.port) != (mine.scheme, mine.host, mine.port):
        return False
    root = mine.path.rstrip("/")
    return theirs.path == root or theirs.path.startswith(f"{root}/")


class SourceRegistry:
    """The registered sources, in the database so that every worker sees the same ones."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def list(self) -> list[Source]:
        with self.db.session() as session:
            return [
                _source(r)
                for r in session.scalars(sa.select(StacSourceRecord).order_by(StacSourceRecord.name))
            ]

    def get(self, name: str) -> Source:
        with self.db.session() as session:
            record = session.get(StacSourceRecord, name)
            if record is None:
                raise NotFoundError(f"STAC source {name!r} not found")
            return _source(record)

    def add(self, source: Source, *, replace: bool = False) -> Source:
        if not re.match(SOURCE_NAME, source.name) or source.name == LOCAL:
            raise InputError(
                f"source name {source.name!r}: use lower-case letters, digits and '-' (not 'local')"
            )
        parts = urlsplit(source.url)
        if (
            parts.scheme not in ("http", "https")
            or not parts.netloc
            or parts.query
            or parts.fragment
            or not under(source.url, source.url)
        ):
            raise InputError(
                f"source url {source.url!r}: give the http(s) root of a STAC API, without a query, "
                "user info or dot segments"
            )
        if not 0 < source.timeout_seconds <= 120:
            raise InputError("timeout_seconds must be more than 0 and at most 120")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in source.headers.items()):
            raise InputError("headers: give names and values as strings")
        with self.db.session() as session:
            if session.get(StacSourceRecord, source.name) is not None and not replace:
                raise ConflictError(f"STAC source {source.name!r} exists; remove it first or replace it")
            session.merge(
                StacSourceRecord(
                    name=source.name,
                    url=source.url.rstrip("/"),
                    title=source.title,
                    headers=dict(source.headers),
                    timeout_seconds=source.timeout_seconds,
                )
            )
        return self.get(source.name)

    def remove(self, name: str) -> None:
        self.get(name)
        with self.db.session() as session:
            session.execute(sa.delete(StacSourceRecord).where(StacSourceRecord.name == name))


def _source(record: StacSourceRecord) -> Source:
    return Source(
        record.name, record.url, record.title or "", dict(record.headers or {}), record.timeout_seconds
    )


# Searching


@dataclass
class FederatedPage:
    items: list[dict[str, Any]]
    token: str | None  # the next page's, or None for the last page
    warnings: list[dict[str, str]]
    matched: dict[str, int | None]  # per source, where it said


LocalSearch = Callable[[int, int], tuple[list[dict[str, Any]], int | None, int]]  # (offset, limit) → page


def search(
    local: LocalSearch | None,
    sources: list[Source],
    body: dict[str, Any],
    limit: int,
    token: str | None,
    annotate: Callable[[Source, dict[str, Any]], dict[str, Any]],
    secret: bytes,
) -> FederatedPage:
    """One page of a search over `local` (None: not asked) and `sources`. `body` is the STAC search request
    as sent to each remote; `annotate` adds the proxy links to a remote item; `secret` signs the token."""
    names = ([LOCAL] if local else []) + [s.name for s in sources]
    state = _state(token, names, secret)
    by_name = {s.name: s for s in sources}
    warnings: list[dict[str, str]] = []
    pages: dict[str, Page] = {}
    matched: dict[str, int | None] = {}

    if local and state[LOCAL] is not None:
        offset = state[LOCAL]["page"] or 0
        items, following, count = local(offset, limit)
        pages[LOCAL] = (
            [{**i, "properties": {**i["properties"], "cubeport:source": LOCAL}} for i in items],
            following,
        )
        matched[LOCAL] = count

    asked = [by_name[n] for n in names if n != LOCAL and state[n] is not None]
    if asked:
        pool = ThreadPoolExecutor(max_workers=min(8, len(asked)), thread_name_prefix="stac-federation")
        futures = {s.name: pool.submit(_remote_page, s, body, limit, state[s.name]["page"]) for s in asked}
        wait(futures.values(), timeout=max(s.timeout_seconds for s in asked) + 1)
        pool.shutdown(wait=False, cancel_futures=True)
        for source in asked:
            future = futures[source.name]
            error = future.exception() if future.done() else None
            if not future.done():
                problem = f"no answer within {source.timeout_seconds:g} s"
            elif error is not None:
                problem = _describe(error)
            else:
                (items, following), said = future.result()
                pages[source.name] = ([annotate(source, i) for i in items], following)
                matched[source.name] = said
                continue
            log.warning("STAC source %s left out: %s", source.name, problem)
            warnings.append(
                {
                    "source": source.name,
                    "message": f"source {source.name!r} is left out of this search: {problem}",
                }
            )
            state[source.name] = None  # left out of the following pages too: a client must not loop on it

    taken = _round_robin({n: p[0][state[n]["skip"] :] for n, p in pages.items()}, limit)
    items = [item for _, item in taken]
    used = {n: sum(1 for m, _ in taken if m == n) for n in pages}
    for name, (page_items, following) in pages.items():
        skip = state[name]["skip"] + used[name]
        if skip < len(page_items):
            state[name] = {"page": state[name]["page"], "skip": skip}
        else:
            state[name] = {"page": following, "skip": 0} if following is not None else None
    more = any(v is not None for v in state.values())
    return FederatedPage(items, _token(state, secret) if more else None, warnings, matched)


def _round_robin(lists: dict[str, list[dict[str, Any]]], limit: int) -> list[tuple[str, dict[str, Any]]]:
    taken: list[tuple[str, dict[str, Any]]] = []
    depth = 0
    while len(taken) < limit and any(depth < len(v) for v in lists.values()):
        for name, values in lists.items():
            if depth < len(values) and len(taken) < limit:
                taken.append((name, values[depth]))
        depth += 1
    return taken


def _remote_page(source: Source, body: dict[str, Any], limit: int, page: Any) -> tuple[Page, int | None]:
    """One page from a remote: the first by POST /search (GET when POST is not allowed), later ones by its
    own next link (from a signed token, and checked again). Returns (items, next link or None) and
    numberMatched. Redirects are not followed: they would take the headers along."""
    headers = {"Accept": "application/geo+json", **source.headers}
    with httpx.Client(timeout=source.timeout_seconds, headers=headers, follow_redirects=False) as client:
        if page is None:
            response = client.post(f"{source.url}/search", json={**body, "limit": limit})
            if response.status_code in (404, 405, 501):
                response = client.get(f"{source.url}/search?{urlencode(_query(body, limit))}")
        else:
            href = page["href"]
            if not source.owns(href):
                raise ValueError("its next link leaves its base URL")
            if page["method"] == "POST":
                sent = {**body, "limit": limit, **page["body"]} if page["merge"] else page["body"]
                response = client.post(href, json=sent)
            else:
                response = client.get(href)
    response.raise_for_status()
    document = response.json()
    if not isinstance(document, dict) or not isinstance(document.get("features"), list):
        raise ValueError("its answer is not a STAC ItemCollection")  # noqa: TRY004 (a bad answer, not a bug)
    following = next((link for link in document.get("links", []) if link.get("rel") == "next"), None)
    items = [i for i in document["features"] if isinstance(i, dict) and isinstance(i.get("properties"), dict)]
    count = document.get("numberMatched", document.get("context", {}).get("matched"))
    return (items, _kept_link(source, following)), count if isinstance(count, int) else None


def _kept_link(source: Source, link: Any) -> dict[str, Any] | None:
    """What the token keeps of a remote's next link: a GET or POST under the source's base URL."""
    if link is None:
        return None
    href, method, body = link.get("href"), str(link.get("method", "GET")).upper(), link.get("body", {})
    if not isinstance(href, str) or not source.owns(href):
        raise ValueError("its next link leaves its base URL")
    if method not in ("GET", "POST") or not isinstance(body, dict):
        raise ValueError("its next link is neither a GET nor a POST with a JSON object")
    return {"href": href, "method": method, "body": body, "merge": bool(link.get("merge"))}


def _query(body: dict[str, Any], limit: int) -> dict[str, str]:
    """A search body as GET parameters."""
    query: dict[str, str] = {"limit": str(limit)}
    for name, value in body.items():
        if name in ("collections", "ids", "bbox"):
            query[name] = ",".join(str(v) for v in value)
        elif name in ("intersects", "filter") and isinstance(value, dict):
            query[name] = json.dumps(value)
        elif name == "sortby":
            query[name] = ",".join(("-" if s.get("direction") == "desc" else "+") + s["field"] for s in value)
        elif name == "fields":
            query[name] = ",".join([*value.get("include", []), *("-" + f for f in value.get("exclude", []))])
        else:
            query[name] = str(value)
    if isinstance(body.get("filter"), dict):
        query["filter-lang"] = "cql2-json"
    return query


def annotated(source: Source, item: dict[str, Any], proxy: Callable[[Source, str], str]) -> dict[str, Any]:
    """A remote item as served here: where it comes from, and its assets also through this server's proxy."""
    item = copy.deepcopy(item)
    item.setdefault("properties", {})["cubeport:source"] = source.name
    original = next((link["href"] for link in item.get("links", []) if link.get("rel") == "self"), None)
    if original:
        item["links"].append(
            {
                "rel": "via",
                "href": original,
                "type": "application/geo+json",
                "title": f"the item at {source.title or source.name}",
            }
        )
    for asset in (item.get("assets") or {}).values():
        href = asset.get("href") if isinstance(asset, dict) else None
        if isinstance(href, str) and source.owns(href):
            asset.setdefault("alternate", {})["cubeport"] = {
                "href": proxy(source, href),
                "title": "through Cubeport's rolling cache",
            }
    extensions = item.setdefault("stac_extensions", [])
    if ALTERNATE not in extensions:
        extensions.append(ALTERNATE)
    return item


def proxy_href(base: str, source: Source, href: str) -> str:
    return f"{base}/stac/sources/{quote(source.name)}/proxy?href={quote(href, safe='')}"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        return f"it answered HTTP {exc.response.status_code}"
    if isinstance(exc, httpx.TimeoutException):
        return "it did not answer in time"
    if isinstance(exc, httpx.TransportError):
        return f"it cannot be reached ({type(exc).__name__})"
    if isinstance(exc, ValueError):
        return str(exc) or "its answer is not JSON"
    return type(exc).__name__


def _token(state: dict[str, Any], secret: bytes) -> str:
    """The state as `payload.signature`, both base64url."""
    payload = _b64(json.dumps(state, separators=(",", ":")).encode())
    return f"{payload}.{_signature(payload, secret)}"


def _signature(payload: str, secret: bytes) -> str:
    return _b64(hmac.new(secret, TOKEN_PURPOSE + payload.encode(), hashlib.sha256).digest())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _state(token: str | None, names: list[str], secret: bytes) -> dict[str, Any]:
    """Per source {page, skip}, or None for a source that has no more; a fresh search starts every source.
    Only a token this server signed is read."""
    if not token:
        return {n: {"page": None, "skip": 0} for n in names}
    payload, _, signature = token.partition(".")
    try:
        if not hmac.compare_digest(signature.encode(), _signature(payload, secret).encode()):
            raise ValueError
        state = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        if (
            not isinstance(state, dict)
            or set(state) != set(names)
            or not all(
                v is None or (isinstance(v, dict) and isinstance(v.get("skip"), int) and v["skip"] >= 0)
                for v in state.values()
            )
        ):
            raise ValueError
        return state
    except (ValueError, UnicodeDecodeError):
        raise InputError(
            "token: not one this server gave for these sources; follow the 'next' link"
        ) from None
