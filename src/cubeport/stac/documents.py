"""The STAC API's documents: landing page, conformance, a cube as a collection (datacube extension), items
with their links, queryables. Pure functions of catalogue entries and a base URL, so the router stays thin."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import pandas as pd
import xarray as xr

from cubeport.cubes import cf
from cubeport.cubes.catalogue import CubeEntry
from cubeport.ogc import params

STAC_VERSION = "1.0.0"
DATACUBE = "https://stac-extensions.github.io/datacube/v2.2.0/schema.json"
CONFORMANCE = [
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/collections",
    "https://api.stacspec.org/v1.0.0/ogcapi-features",
    "https://api.stacspec.org/v1.0.0/item-search",
    "https://api.stacspec.org/v1.0.0/item-search#sort",
    "https://api.stacspec.org/v1.0.0/item-search#fields",
    "https://api.stacspec.org/v1.0.0-rc.2/item-search#filter",
    "https://api.stacspec.org/v1.0.0/ogcapi-features#sort",
    "https://api.stacspec.org/v1.0.0/ogcapi-features#fields",
    params.FEATURES_CORE,
    params.FEATURES_OAS30,
    params.FEATURES_GEOJSON,
    params.FEATURES_FILTER,
    params.FEATURES_FEATURES_FILTER,
    params.CQL2_TEXT,
    params.CQL2_JSON,
    params.CQL2_BASIC,
    params.CQL2_ADVANCED_COMPARISON,
    params.CQL2_BASIC_SPATIAL,
    params.CQL2_SPATIAL,
    params.CQL2_TEMPORAL,
]
JSON, GEOJSON = "application/json", "application/geo+json"


def link(rel: str, href: str, kind: str = JSON, **extra: Any) -> dict[str, Any]:
    return {"rel": rel, "href": href, "type": kind, **extra}


def landing(base: str, entries: list[CubeEntry]) -> dict[str, Any]:
    stac = f"{base}/stac"
    return {
        "type": "Catalog",
        "stac_version": STAC_VERSION,
        "id": "cubeport",
        "title": "Cubeport STAC API",
        "description": "Data cubes and the products they were built from, with federated STAC sources",
        "conformsTo": CONFORMANCE,
        "links": [
            link("self", stac),
            link("root", stac),
            link("conformance", f"{stac}/conformance"),
            link("data", f"{stac}/collections"),
            link("search", f"{stac}/search", GEOJSON, method="GET"),
            link("search", f"{stac}/search", GEOJSON, method="POST"),
            link(
                "http://www.opengis.net/def/rel/ogc/1.0/queryables",
                f"{stac}/queryables",
                "application/schema+json",
            ),
            link("service-desc", f"{base}/api", "application/vnd.oai.openapi+json;version=3.0"),
            link("service-doc", f"{base}/api.html", "text/html"),
            *[link("child", f"{stac}/collections/{quote(e.id)}", title=e.title) for e in entries],
        ],
    }


def collection(entry: CubeEntry, ds: xr.Dataset, base: str) -> dict[str, Any]:
    """A cube as a STAC collection: its dimensions and variables (datacube extension) and its Zarr stores as
    assets; its items are the products it was built from."""
    stac, cube = f"{base}/stac", quote(entry.id)
    url = f"{stac}/collections/{cube}"
    ydim, xdim = cf.spatial_dims(ds)
    crs = cf.crs_of(ds)
    epsg = crs.to_epsg()
    west, south, east, north = cf.bounds(ds)
    grid = cf.Grid.of(ds)
    system: Any = epsg if epsg else crs.to_wkt()
    times = cf.times_iso(ds)
    dimensions: dict[str, Any] = {
        xdim: {
            "type": "spatial",
            "axis": "x",
            "extent": [west, east],
            "step": grid.dx,
            "reference_system": system,
        },
        ydim: {
            "type": "spatial",
            "axis": "y",
            "extent": [south, north],
            "step": grid.dy,
            "reference_system": system,
        },
    }
    if "time" in ds.dims:
        dimensions["time"] = {"type": "temporal", "extent": [times[0], times[-1]] if times else [None, None]}
    variables = {
        v.name: {
            "type": "data",
            "dimensions": list(ds[v.name].dims),
            "unit": v.units or "",
            "description": v.long_name or v.name,
        }
        for v in entry.variables
        if v.name in ds
    }
    interval = [[rfc3339(t) for t in (entry.time_start, entry.time_end)]]
    return {
        "type": "Collection",
        "stac_version": STAC_VERSION,
        "stac_extensions": [DATACUBE],
        "id": entry.id,
        "title": entry.title,
        "description": entry.description or entry.title,
        "keywords": [*entry.tags, *entry.themes],
        **_license(entry.attrs.get("license")),
        "extent": {"spatial": {"bbox": [list(entry.bbox)]}, "temporal": {"interval": interval}},
        "cube:dimensions": dimensions,
        "cube:variables": variables,
        "assets": {
            "zarr": {
                "href": f"{base}/zarr/{cube}/0.zarr",
                "type": "application/vnd+zarr",
                "roles": ["data"],
                "title": "the cube, full resolution (Zarr v2, consolidated)",
            },
        },
        "links": [
            link("self", url),
            link("root", stac),
            link("parent", stac),
            link("items", f"{url}/items", GEOJSON),
            link(
                "http://www.opengis.net/def/rel/ogc/1.0/queryables",
                f"{url}/queryables",
                "application/schema+json",
            ),
            link("alternate", f"{base}/collections/{cube}", title="OGC API collection (tiles, EDR)"),
        ],
    }


def _license(text: Any) -> dict[str, str]:
    """STAC wants an SPDX id (or "other"); a licence in words, as NetCDF attributes often give it, is kept
    beside it."""
    if isinstance(text, str) and re.fullmatch(r"[\w\-.+]+", text):
        return {"license": text}
    return {"license": "other", **({"cubeport:license_text": str(text)} if text else {})}


def rfc3339(moment: Any) -> str | None:
    """A time (datetime, numpy or pandas; naive ones are UTC, as the catalogue keeps them) as RFC 3339 with Z."""
    if moment is None:
        return None
    stamp = pd.Timestamp(moment)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.isoformat().replace("+00:00", "Z")


def local_item(item: dict[str, Any], base: str) -> dict[str, Any]:
    """A stored item as served: asset hrefs as URLs of this server, and links."""
    stac, cube, name = f"{base}/stac", quote(item["collection"]), quote(item["id"])
    assets = {
        key: {**asset, "href": f"{stac}/collections/{cube}/items/{name}/files/{quote(asset['href'])}"}
        for key, asset in item["assets"].items()
    }
    return {
        **item,
        "assets": assets,
        "links": [
            link("self", f"{stac}/collections/{cube}/items/{name}", GEOJSON),
            link("parent", f"{stac}/collections/{cube}"),
            link("collection", f"{stac}/collections/{cube}"),
            link("root", stac),
        ],
    }


def item_collection(
    features: list[dict[str, Any]], matched: int | None, base: str, links: list[dict[str, Any]]
) -> dict[str, Any]:
    """A page of items; `matched` is left out when it is not known (a federated search)."""
    body: dict[str, Any] = {
        "type": "FeatureCollection",
        "features": features,
        "links": [*links, link("root", f"{base}/stac")],
        "numberReturned": len(features),
    }
    if matched is not None:
        body["numberMatched"] = matched
    return body


def queryables(url: str, title: str) -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2019-09/schema",
        "$id": url,
        "type": "object",
        "title": title,
        "properties": {
            "id": {"title": "Item id", "type": "string"},
            "collection": {"title": "Collection (cube) id", "type": "string"},
            "geometry": {"title": "Footprint (a GeoJSON geometry, CRS84)", "type": "object"},
            "datetime": {"title": "Time of the product", "type": "string", "format": "date-time"},
            "proj:code": {"title": "CRS of the product's grid", "type": "string"},
            "cubeport:variables": {
                "title": "Variables in the product",
                "type": "array",
                "items": {"type": "string"},
            },
        },
        "additionalProperties": True,
    }
