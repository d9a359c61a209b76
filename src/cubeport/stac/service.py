"""STAC item search as the API answers it: a page of a collection's items, or of a search over this server's
items and the registered remote sources the caller may use, as an ItemCollection with its links.

No HTTP here: the router passes the stores, the caller and where the request came from (`Origin`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from cubeport.auth.policy import Policy
from cubeport.auth.principal import Principal
from cubeport.errors import NotFoundError
from cubeport.stac import documents, federation
from cubeport.stac.documents import GEOJSON, link
from cubeport.stac.federation import LOCAL, Source, SourceRegistry
from cubeport.stac.products import ProductArchive
from cubeport.stac.search import SearchRequest, token_for


@dataclass(frozen=True)
class Origin:
    """Where a request came from, for the links of its answer."""

    base: str  # the server's base URL
    url: str  # the request's own URL (the self link)
    query: Mapping[str, str] = field(default_factory=dict)  # a GET's parameters, repeated by its next link
    body: dict[str, Any] | None = None  # a POST's body, sent again by its next link

    def next_links(self, endpoint: str, token: str | None) -> list[dict[str, Any]]:
        """The link to the page `token` asks for, in the request's own method (none without a token)."""
        if token is None:
            return []
        if self.body is not None:
            body = {**self.body, "token": token}
            return [link("next", endpoint, GEOJSON, method="POST", body=body, merge=False)]
        query = {k: v for k, v in self.query.items() if k != "token"}
        return [link("next", f"{endpoint}?{urlencode({**query, 'token': token})}", GEOJSON, method="GET")]


def readable_sources(registry: SourceRegistry, policy: Policy, principal: Principal) -> list[Source]:
    """The registered sources the caller may search."""
    return [s for s in registry.list() if policy.allows(principal, "read", "service", s.service_id)]


def named_sources(
    registry: SourceRegistry, policy: Policy, principal: Principal, names: list[str]
) -> list[Source]:
    """The remote sources `names` asks for (for '*', all the caller may search); an unknown or hidden one is a
    404, exactly like a missing one (and names no other)."""
    if "*" in names:
        return readable_sources(registry, policy, principal)
    chosen = []
    for name in dict.fromkeys(n for n in names if n != LOCAL):
        try:
            source: Source | None = registry.get(name)
        except NotFoundError:
            source = None
        if source is None or not policy.allows(principal, "read", "service", source.service_id):
            raise NotFoundError(f"STAC source {name!r} not found")
        chosen.append(source)
    return chosen


def collection_items(
    products: ProductArchive, collection: str, search: SearchRequest, origin: Origin
) -> dict[str, Any]:
    """A page of one collection's items (the OGC API Features items route, with STAC's search parameters)."""
    base = origin.base
    url = f"{base}/stac/collections/{quote(collection)}"
    found, following, matched = search.page(_candidates(products, [collection], search), _presenter(base))
    links = [
        link("self", origin.url, GEOJSON),
        link("collection", url),
        *origin.next_links(f"{url}/items", _token(following)),
    ]
    return documents.item_collection(found, matched, base, links)


def item_search(
    products: ProductArchive,
    cubes: list[str],
    sources: list[Source],
    search: SearchRequest,
    origin: Origin,
    secret: Callable[[], bytes],
) -> dict[str, Any]:
    """A page of a search over this server's items in `cubes` (those the caller may see) and the remote
    `sources` the search names. A federated page says per source how many matched, and which sources were
    left out; its token is signed with `secret()` (asked for only then)."""
    base = origin.base
    url = f"{base}/stac/search"
    in_scope = [c for c in cubes if search.collections is None or c in search.collections]
    if not sources:  # the plain STAC API: this server's items
        found, following, matched = search.page(_candidates(products, in_scope, search), _presenter(base))
        links = [link("self", origin.url, GEOJSON), *origin.next_links(url, _token(following))]
        return documents.item_collection(found, matched, base, links)

    def local_page(offset: int, limit: int) -> tuple[list[dict[str, Any]], int | None, int]:
        return search.page(_candidates(products, in_scope, search), _presenter(base), offset, limit)

    local = LOCAL in search.sources or "*" in search.sources
    page = federation.search(
        local_page if local else None,
        sources,
        search.to_body(),
        search.limit,
        search.token,
        lambda s, i: federation.annotated(s, i, lambda src, h: federation.proxy_href(base, src, h)),
        secret(),
    )
    links = [link("self", origin.url, GEOJSON), *origin.next_links(url, page.token)]
    result = documents.item_collection(page.items, None, base, links)
    result["cubeport:matched"] = page.matched
    if page.warnings:
        result["warnings"] = page.warnings
    return result


def _presenter(base: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda item: documents.local_item(item, base)


def _candidates(
    products: ProductArchive, collections: list[str], search: SearchRequest
) -> list[dict[str, Any]]:
    return products.query(collections, ids=search.ids, bbox=search.bounds, end=search.end)


def _token(offset: int | None) -> str | None:
    return None if offset is None else token_for(offset)
