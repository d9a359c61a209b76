"""Run the STAC validators (stac-api-validator, stac-validator, stac-check, pystac) without internet.

The validators download JSON schemas from schemas.stacspec.org, stac-extensions.github.io, proj.org,
geojson.org, json-schema.org ...  These machines cannot reach them, so while :func:`offline_schemas` is active
every HTTP(S) request the validators make is routed here first:

* a request to a loopback host (``localhost``, ``127.0.0.1``, ``::1``) or to a host in ``allow_hosts`` goes
  through untouched: the API under test is a real local server;
* any other request is answered from a local copy of the document, looked up (scheme, query and fragment
  ignored) in, in this order:

  1. ``../shared/stac-schemas/<host>/<path>`` beside the repository (see its README.md),
  2. the schemas pystac bundles (``pystac/validation/jsonschemas``: STAC 1.1.0 core, GeoJSON),
  3. the JSON Schema meta-schemas bundled by ``jsonschema-specifications`` (json-schema.org);

* a request that cannot be answered locally never reaches the network: it raises
  :class:`SchemaNotAvailableOffline` (host in :data:`SCHEMA_HOSTS`) or :class:`NetworkBlockedOffline` (any
  other host) at once, with the URL in the message.  Both derive from ``requests.ConnectionError`` and
  ``urllib.error.URLError`` so the libraries treat them like any network failure; because the validators
  often swallow such failures into a message, every unanswerable schema URL is also recorded in
  :attr:`OfflineSchemas.missing`, and by default (``strict=True``) leaving the block raises
  :class:`SchemaNotAvailableOffline` listing them, so a missing schema cannot pass unnoticed.

Who makes which request (read from the installed sources), and where it is intercepted (one point each):

* requests: stac-api-validator (its Session), stac-validator (schemas, STAC files), stac-check, pystac-client
  (``StacApiIO``) -> ``requests.adapters.HTTPAdapter.send``;
* urllib3 used directly: pystac's ``DefaultStacIO`` (schemas pystac does not bundle, e.g. extension schemas;
  items read while traversing a catalog) -> ``urllib3.PoolManager.urlopen``;
* urllib.request: stac-validator's link and asset checks (``urlopen``), its fast validator, pystac without
  urllib3 -> ``urllib.request.AbstractHTTPHandler.do_open`` (this also covers the one-off opener that
  ``urlopen(..., context=...)`` builds, which an ``install_opener()`` handler would not see);
* httpx: used by none of the validators today; guarded (``HTTPTransport.handle_request``,
  ``AsyncHTTPTransport.handle_async_request``) so that a future version cannot reach the network.

The patches are class-level and process-wide while the block is active (other threads see them too); blocks
may be nested but are not meant to be entered concurrently from several threads.

:func:`run_stac_api_validator` runs stac-api-validator in-process inside :func:`offline_schemas` and returns
its ``(errors, warnings)``.
"""

from __future__ import annotations

import contextlib
import email.message
import io
import ipaddress
import json
import threading
import urllib.error
import urllib.request
import urllib.response
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import requests.adapters
import urllib3
import urllib3.poolmanager

__all__ = [
    "SCHEMA_DIR",
    "SCHEMA_HOSTS",
    "OfflineRequestError",
    "SchemaNotAvailableOffline",
    "NetworkBlockedOffline",
    "OfflineSchemas",
    "offline_schemas",
    "local_schema",
    "clear_validator_caches",
    "run_stac_api_validator",
]

#: The shared schema copies, laid out as ``<host>/<path>`` (``../shared/stac-schemas`` beside the repository).
SCHEMA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "stac-schemas"

#: Hosts whose documents are JSON schemas: an unanswerable request to one of them is a *missing schema*
#: (:class:`SchemaNotAvailableOffline`, recorded in :attr:`OfflineSchemas.missing`).
SCHEMA_HOSTS = frozenset(
    {
        "schemas.stacspec.org",
        "stac-extensions.github.io",
        "proj.org",
        "geojson.org",
        "json-schema.org",
        "cdn.staclint.com",  # stac-validator's address for STAC versions before 1.0.0
    }
    | ({p.name.lower() for p in SCHEMA_DIR.iterdir() if p.is_dir()} if SCHEMA_DIR.is_dir() else set())
)


class OfflineRequestError(requests.exceptions.ConnectionError, urllib.error.URLError):
    """A request :func:`offline_schemas` refused to send to the network; ``url`` is the URL requested.

    A ``requests.ConnectionError`` and a ``urllib.error.URLError`` (hence an ``OSError``), so that each
    library handles it like the network failure it stands for."""

    def __init__(self, url: str, message: str) -> None:
        requests.exceptions.ConnectionError.__init__(self, message)
        self.url = url
        self.reason = message  # what URLError users read

    def __str__(self) -> str:
        return str(self.args[0])


class SchemaNotAvailableOffline(OfflineRequestError):
    """A schema host was asked for a document that has no local copy."""


class NetworkBlockedOffline(OfflineRequestError):
    """A request to a host that is neither local nor a schema host (e.g. an asset on a remote server)."""


# ------------------------------------------------------------------------------------ lookup


def _key(url: str) -> tuple[str, str]:
    """(host, path) of a URL: the scheme, port, query and fragment do not select a different schema."""
    parts = urlsplit(url)
    return (parts.hostname or "").lower(), parts.path or "/"


@cache
def _bundled() -> dict[tuple[str, str], bytes]:
    """Schemas bundled with pystac and jsonschema-specifications, keyed by (host, path)."""
    docs: dict[tuple[str, str], bytes] = {}
    try:
        import jsonschema_specifications

        for uri in jsonschema_specifications.REGISTRY:
            docs[_key(uri)] = json.dumps(jsonschema_specifications.REGISTRY.contents(uri)).encode()
    except ImportError:  # pragma: no cover - jsonschema always brings it
        pass
    try:
        from pystac.validation.local_validator import get_local_schema_cache

        for uri, schema in get_local_schema_cache().items():
            docs[_key(uri)] = json.dumps(schema).encode()  # pystac's copies win over the meta-schemas
    except ImportError:  # pragma: no cover - pystac without its validation package
        pass
    return docs


def local_schema(url: str) -> bytes | None:
    """The local copy of the document at ``url`` (raw bytes), or None when there is none.

    Looks in :data:`SCHEMA_DIR` first, then in pystac's and jsonschema-specifications' bundled schemas."""
    host, path = _key(url)
    if not host:
        return None
    root = SCHEMA_DIR.resolve()
    candidate = (root / host / path.lstrip("/")).resolve()
    if candidate.is_relative_to(root / host) and candidate.is_file():
        return candidate.read_bytes()
    if (host, path) in STAND_INS:
        return local_schema(STAND_INS[(host, path)])
    return _bundled().get((host, path))


#: Schemas with no local copy, answered by a compatible one. The datacube extension v2.2.0 refers to PROJJSON
#: v0.4 in a oneOf beside "a WKT2 string" and "an EPSG code", so every branch is evaluated; the shared
#: copies start at v0.5, which only adds members, and a string or integer fails both versions alike.
STAND_INS = {
    ("proj.org", "/schemas/v0.4/projjson.schema.json"): "https://proj.org/schemas/v0.5/projjson.schema.json"
}


def _is_local(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# ------------------------------------------------------------------------------------ router


@dataclass
class OfflineSchemas:
    """What an :func:`offline_schemas` block did; the object the ``with`` statement binds.

    ``served``: URLs answered from local copies; ``missing``: schema URLs that had no local copy;
    ``blocked``: other non-local URLs that were refused (all in request order, duplicates kept)."""

    allow_hosts: frozenset[str] = frozenset()
    served: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def passes_through(self, url: str) -> bool:
        """True when ``url`` goes to the real network stack (a loopback host or one of ``allow_hosts``)."""
        host = urlsplit(url).hostname or ""
        return _is_local(host) or host.lower() in self.allow_hosts

    def answer(self, url: str) -> bytes:
        """The local copy of ``url``; else raises SchemaNotAvailableOffline or NetworkBlockedOffline."""
        body = local_schema(url)
        host = _key(url)[0]
        with self._lock:
            if body is not None:
                self.served.append(url)
                return body
            if host in SCHEMA_HOSTS:
                self.missing.append(url)
            else:
                self.blocked.append(url)
        if host in SCHEMA_HOSTS:
            raise SchemaNotAvailableOffline(
                url,
                f"schema not available offline: {url} (no copy in {SCHEMA_DIR} nor among pystac's schemas)",
            )
        raise NetworkBlockedOffline(url, f"network access blocked by offline_schemas(): {url}")


_JSON_HEADERS = {"Content-Type": "application/json", "X-Served-By": "stac_offline"}


def _urllib3_response(body: bytes, method: str, url: str, preload_content: bool = True) -> Any:
    return urllib3.HTTPResponse(
        body=io.BytesIO(b"" if method.upper() == "HEAD" else body),
        headers=dict(_JSON_HEADERS, **{"Content-Length": str(len(body))}),
        status=200,
        reason="OK",
        preload_content=preload_content,
        decode_content=False,
        request_method=method,
        request_url=url,
    )


def _patches(router: OfflineSchemas) -> list[tuple[Any, str, Any]]:
    """(owner, attribute, replacement) for every HTTP library that is installed."""
    patches: list[tuple[Any, str, Any]] = []

    # requests: every Session (requests.get, stac-api-validator, pystac-client's StacApiIO) sends through an
    # HTTPAdapter; answering there keeps hooks, raise_for_status, .json() etc. working as usual.
    adapter_send = requests.adapters.HTTPAdapter.send

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        if router.passes_through(request.url):
            return adapter_send(
                self, request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=proxies
            )
        body = router.answer(request.url)
        return self.build_response(request, _urllib3_response(body, request.method, request.url, False))

    patches.append((requests.adapters.HTTPAdapter, "send", send))

    # urllib3 used directly (pystac's DefaultStacIO: PoolManager().request(...) -> PoolManager.urlopen).
    # requests does not go through PoolManager.urlopen (it calls the pool directly): nothing is seen twice.
    pool_urlopen = urllib3.poolmanager.PoolManager.urlopen

    def urlopen(self, method, url, redirect=True, **kw):
        if router.passes_through(url):
            return pool_urlopen(self, method, url, redirect=redirect, **kw)
        body = router.answer(url)
        return _urllib3_response(body, method, url, kw.get("preload_content", True))

    patches.append((urllib3.poolmanager.PoolManager, "urlopen", urlopen))

    # urllib.request: every opener's HTTP and HTTPS handlers end in AbstractHTTPHandler.do_open, including the
    # one-off opener urlopen(..., context=...) builds, which an install_opener() handler would not see.
    do_open = urllib.request.AbstractHTTPHandler.do_open

    def open_(self, http_class, req, **http_conn_args):
        if router.passes_through(req.full_url):
            return do_open(self, http_class, req, **http_conn_args)
        body = router.answer(req.full_url)
        headers = email.message.Message()
        for name, value in dict(_JSON_HEADERS, **{"Content-Length": str(len(body))}).items():
            headers[name] = value
        resp = urllib.response.addinfourl(io.BytesIO(body), headers, req.full_url, 200)
        resp.msg = "OK"  # read by HTTPErrorProcessor like on http.client responses
        return resp

    patches.append((urllib.request.AbstractHTTPHandler, "do_open", open_))

    # httpx: unused by the validators today; guarded so that a future version cannot reach the network.
    try:
        import httpx
    except ImportError:  # pragma: no cover
        return patches

    def _httpx_response(request) -> Any:
        body = router.answer(str(request.url))
        return httpx.Response(200, headers=_JSON_HEADERS, content=body, request=request)

    sync_handle = httpx.HTTPTransport.handle_request
    async_handle = httpx.AsyncHTTPTransport.handle_async_request

    def handle_request(self, request):
        if router.passes_through(str(request.url)):
            return sync_handle(self, request)
        return _httpx_response(request)

    async def handle_async_request(self, request):
        if router.passes_through(str(request.url)):
            return await async_handle(self, request)
        return _httpx_response(request)

    patches.append((httpx.HTTPTransport, "handle_request", handle_request))
    patches.append((httpx.AsyncHTTPTransport, "handle_async_request", handle_async_request))
    return patches


@contextlib.contextmanager
def offline_schemas(*, strict: bool = True, allow_hosts: Iterable[str] = ()) -> Iterator[OfflineSchemas]:
    """Answer the validators' schema downloads from local copies while the block runs.

    Loopback hosts and ``allow_hosts`` go to the real network stack; every other HTTP(S) request made with
    requests, urllib3, urllib.request or httpx is answered from :func:`local_schema` or fails at once with an
    :class:`OfflineRequestError` naming the URL.  With ``strict`` (the default), leaving the block normally
    after a schema URL went unanswered raises :class:`SchemaNotAvailableOffline` listing every such URL, even
    if the library that asked swallowed the error.

    Yields an :class:`OfflineSchemas` recording the URLs served, missing and blocked."""
    router = OfflineSchemas(allow_hosts=frozenset(h.lower() for h in allow_hosts))
    with contextlib.ExitStack() as stack:
        for owner, name, replacement in _patches(router):
            original = owner.__dict__[name]
            setattr(owner, name, replacement)
            stack.callback(setattr, owner, name, original)
        yield router
    if strict and router.missing:
        urls = list(dict.fromkeys(router.missing))
        raise SchemaNotAvailableOffline(urls[0], "schemas not available offline: " + ", ".join(urls))


def clear_validator_caches() -> None:
    """Forget the schemas stac-validator and pystac keep between validations, so the next validation requests
    them again (a test can then see them in :attr:`OfflineSchemas.served`).  pystac's bundled schemas stay."""
    with contextlib.suppress(ImportError):
        from stac_validator import utilities

        utilities.fetch_and_parse_schema.cache_clear()
        utilities._cached_schemas.clear()
    with contextlib.suppress(ImportError):
        from pystac.validation import JsonSchemaSTACValidator, RegisteredValidator
        from pystac.validation.local_validator import get_local_schema_cache

        if isinstance(RegisteredValidator._validator, JsonSchemaSTACValidator):
            RegisteredValidator._validator.schema_cache = get_local_schema_cache()


# ------------------------------------------------------------------------------------ stac-api-validator


def _conformance_choices() -> set[str] | None:
    """The --conformance values the stac-api-validator CLI accepts (None if they cannot be read)."""
    try:
        from stac_api_validator.__main__ import main

        option = next(p for p in main.params if p.name == "conformance_classes")
        return {c.lower() for c in option.type.choices}
    except Exception:  # pragma: no cover - a future CLI layout
        return None


def run_stac_api_validator(
    root_url: str,
    conformance: list[str],
    collection: str,
    geometry: dict,
    headers: dict | None = None,
) -> tuple[list[str], list[str]]:
    """Run stac-api-validator in-process on ``root_url`` with schemas answered offline; (errors, warnings).

    Does what ``stac-api-validator --root-url ROOT --conformance C ... --collection COLL --geometry JSON
    -H ...`` does: calls ``stac_api_validator.validations.validate_api`` (which returns ``(warnings,
    errors)``; note the order) inside ``offline_schemas(strict=False)`` and returns both as lists of messages.
    Each schema URL that had no local copy is appended to the errors (``"schema not available offline:
    URL"``), each other blocked non-local URL (e.g. a remote asset href) to the warnings.  ``conformance``
    takes the CLI's values (``core``, ``collections``, ``features``, ``item-search``, ...); an unknown value
    raises ValueError instead of silently validating nothing.  Exceptions the validator raises propagate."""
    from stac_api_validator.validations import QueryConfig, validate_api

    if isinstance(conformance, str):
        raise TypeError("conformance must be a list of conformance class names, e.g. ['core', 'collections']")
    choices = _conformance_choices()
    if choices is not None and (unknown := [c for c in conformance if c.lower() not in choices]):
        known = sorted(choices)
        raise ValueError(f"unknown stac-api-validator conformance classes {unknown} (known: {known})")

    with offline_schemas(strict=False) as offline:
        warnings, errors = validate_api(
            root_url=root_url,
            ccs_to_validate=[c.lower() for c in conformance],
            collection=collection,
            geometry=json.dumps(geometry) if geometry is not None else None,
            auth_bearer_token=None,
            auth_query_parameter=None,
            fields_nested_property=None,
            validate_pagination=False,
            query_config=QueryConfig(*[None] * 13),
            transaction_collection=None,
            headers=dict(headers) if headers else None,
        )
    error_list = list(errors.as_list())
    error_list += [f"schema not available offline: {url}" for url in dict.fromkeys(offline.missing)]
    warning_list = list(warnings.as_list())
    warning_list += [f"non-local request blocked offline: {url}" for url in dict.fromkeys(offline.blocked)]
    return error_list, warning_list
