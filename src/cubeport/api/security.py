"""The HTTP edge of identity and access: who is calling, and the one guard every route declares.

Credentials are read from `X-API-Key`, `Authorization: Bearer` (an OIDC JWT or an API key) or the
session cookie. Bad credentials are a 401, never silently anonymous. Cookie-authenticated writes must
echo the session's CSRF token in `X-CSRF-Token` and come from the same origin.

Each route depends on exactly one `Guard` (tests/api/test_access.py fails otherwise):
- `OPEN`: returns nothing protected (landing page, health, sign-in pages);
- `SIGNED_IN` / `ADMIN`: needs a signed-in user / an admin (401 or 403);
- `OPERATOR`: needs an admin or a member of the `operators` group (operations: watchers, suites, deliveries);
- `listing(kind)`: the route lists resources and filters them with `context.policy.visible(...)`;
- `resource(kind, param)`: the route reads (or writes) the resource named by a path parameter; without
  access it answers 404, exactly as if the resource did not exist.

"Not yours" and "not there" are one answer: `not_found` words the 404 of a hidden resource as the core words
a missing one, and a refused write checks that the resource exists before it says 403.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Annotated, Literal
from urllib.parse import urlsplit

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyCookie, APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from cubeport.api.deps import get_context
from cubeport.auth.client_address import client_address as address_of
from cubeport.auth.policy import Action, Kind
from cubeport.auth.principal import ANONYMOUS, Principal
from cubeport.context import Context
from cubeport.cubes.catalogue import CubeEntry
from cubeport.errors import AuthenticationError, InputError, NotFoundError, PermissionDeniedError
from cubeport.logs import set_user

SESSION_COOKIE = "cubeport_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SIGN_IN_FIRST = "sign in first: send an API key, a bearer token or a session cookie"


def client_address(request: Request) -> str | None:
    auth, peer = request.app.state.context.settings.auth, request.client.host if request.client else None
    trusted = request.headers.getlist(auth.trusted_proxy_header) if auth.trusted_proxy_header else []
    return address_of(peer, trusted, hops=auth.trusted_proxy_hops)


def same_origin(request: Request) -> bool:
    """False when the browser says the request comes from another site (Origin, else Referer)."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin:
        return True  # not a browser, or one that sends neither header
    try:
        return urlsplit(origin).netloc == request.headers.get("host", request.url.netloc)
    except ValueError:  # "null" parses, a malformed URL does not
        return False


# Security schemes: they read the credentials and declare them in the OpenAPI document (and the
# "Authorize" button of /api.html).
API_KEY = APIKeyHeader(name="X-API-Key", auto_error=False, description="an API key (`cubeport keys create`)")
BEARER = HTTPBearer(auto_error=False, description="an OIDC access token, or an API key")
COOKIE = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, description="browser session (/auth/login)")


async def current_principal(
    request: Request,
    context: Annotated[Context, Depends(get_context)],
    api_key: Annotated[str | None, Depends(API_KEY)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    cookie: Annotated[str | None, Depends(COOKIE)],
) -> Principal:
    """The caller, from an API key, a bearer token or a session cookie; anonymous without credentials.
    Checking credentials may wait for the database or the OIDC provider, so it runs in a worker thread."""
    if not (api_key or bearer or cookie or request.headers.get("authorization")):
        return ANONYMOUS
    principal = await run_in_threadpool(_principal, request, context, api_key, bearer, cookie)
    set_user(principal.name)  # log lines of this request (uvicorn's access line too) name the caller
    return principal


def _principal(
    request: Request,
    context: Context,
    api_key: str | None,
    bearer: HTTPAuthorizationCredentials | None,
    cookie: str | None,
) -> Principal:
    address = client_address(request)
    if api_key:
        return context.auth.api_key(api_key.strip(), address)
    if bearer and bearer.credentials.strip():
        return context.auth.bearer(bearer.credentials.strip(), address)
    if request.headers.get("authorization"):
        raise AuthenticationError("unsupported Authorization header; send `Bearer <token or API key>`")
    if cookie and (found := context.auth.session(cookie)):
        principal, session = found
        if request.method not in SAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER, "")
            if not same_origin(request) or not secrets.compare_digest(
                sent.encode(), session.csrf_token.encode()
            ):
                raise PermissionDeniedError(
                    f"a signed-in browser write needs the {CSRF_HEADER} header from /auth/me, sent from this site"
                )
        return principal
    return ANONYMOUS


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
GuardRule = Literal["open", "signed-in", "admin", "operator", "listing", "resource"]
OPERATORS = "operators"  # the group whose members run operations without being admins


class Guard:
    """A route's access rule (a FastAPI dependency returning the caller)."""

    def __init__(
        self,
        rule: GuardRule,
        kind: Kind | None = None,
        param: str | None = None,
        action: Action = "read",
        id_of: Callable[[str], str] | None = None,
    ) -> None:
        self.rule, self.kind, self.param, self.action, self.id_of = rule, kind, param, action, id_of

    def __repr__(self) -> str:
        return f"Guard({self.rule!r}, {self.kind!r}, {self.param!r}, {self.action!r})"

    async def __call__(
        self, request: Request, principal: CurrentPrincipal, context: Annotated[Context, Depends(get_context)]
    ) -> Principal:
        if self.rule in ("signed-in", "admin", "operator") and principal.anonymous:
            raise AuthenticationError(SIGN_IN_FIRST)
        if self.rule == "admin" and not principal.is_admin:
            raise PermissionDeniedError("this needs the admin role")
        if self.rule == "operator" and not (principal.is_admin or OPERATORS in principal.groups):
            raise PermissionDeniedError(f"this needs the admin role or membership of the {OPERATORS!r} group")
        if self.rule == "resource":
            assert self.kind and self.param
            # the declared path parameter only: a query parameter of the same name names nothing
            value = request.path_params.get(self.param, "")
            if not value:
                raise not_found(self.kind, value)
            resource_id = self.id_of(value) if self.id_of else value
            # reads of public resources whose rules are cached need no thread (tiles come by the dozen)
            if self.action != "read" or not context.policy.known_public(self.kind, resource_id):
                await run_in_threadpool(
                    authorize,
                    context,
                    principal,
                    self.kind,
                    resource_id,
                    self.action,
                    client_address(request),
                )
        return principal


def not_found(kind: Kind, resource_id: str) -> NotFoundError:
    """The 404 of a resource the caller may not see, worded exactly as the core words a missing one (`cube 'x'
    not found`, `collection 'x' not found`), so that the two cannot be told apart."""
    return NotFoundError(f"{kind} {resource_id!r} not found")


def _cube_exists(context: Context, cube_id: str) -> None:
    context.catalogue.get(cube_id)


def _collection_exists(context: Context, collection_id: str) -> None:
    database, _, name = collection_id.partition(".")
    context.features.get(database, name)


# How a refused write learns whether its resource exists (NotFoundError or InputError if not): kinds that
# write routes guard. A refusal is rare, so the lookup costs nothing on the paths that matter.
EXISTS: dict[Kind, Callable[[Context, str], None]] = {"cube": _cube_exists, "collection": _collection_exists}


def authorize(
    context: Context, principal: Principal, kind: Kind, resource_id: str, action: Action, address: str | None
) -> None:
    """Apply the policy to one resource: 404 if the caller may not see it, 403 if they may see but not change
    it. A write refused on a resource that does not exist is a 404 as well: otherwise a missing resource (403,
    readable by default) and a hidden one (404) would answer differently."""
    policy = context.policy
    if not policy.allows(principal, "read", kind, resource_id):
        raise not_found(kind, resource_id)
    if action == "write" and not policy.allows(principal, "write", kind, resource_id):
        try:
            EXISTS[kind](context, resource_id)
        except (NotFoundError, InputError):
            raise not_found(kind, resource_id) from None
        raise PermissionDeniedError(f"you may read {kind} {resource_id!r} but not change it")
    if policy.is_restricted(kind, resource_id):
        context.auth.audit.restricted_read(principal.name, kind, resource_id, address)


def cache_scope(context: Context, kind: Kind, resource_id: str) -> str:
    """`public` when anonymous callers may read the resource, so shared caches may keep it; `private` else."""
    return "public" if context.policy.allows(ANONYMOUS, "read", kind, resource_id) else "private"


class _Open(Guard):
    """The guard of routes that return nothing protected: it does not even look at credentials."""

    # no parameters on purpose, so FastAPI reads no credentials for open routes
    async def __call__(self) -> None:  # type: ignore[override]
        return None


OPEN = _Open("open")
SIGNED_IN = Guard("signed-in")
ADMIN = Guard("admin")
OPERATOR = Guard("operator")


def signed_in_name(principal: Principal) -> str:
    """The name of a caller that `SIGNED_IN` or `ADMIN` let through (they refuse anonymous callers)."""
    if principal.name is None:
        raise AuthenticationError(SIGN_IN_FIRST)
    return principal.name


def listing(kind: Kind) -> Guard:
    """The route lists resources of `kind`; it shows only what `policy.visible` (or `visible_cubes`) keeps."""
    return Guard("listing", kind)


def visible_cubes(context: Context, principal: Principal, *, published: bool = True) -> list[CubeEntry]:
    """The catalogue entries the caller may see, in id order; with `published`, only cubes with data."""
    entries = {e.id: e for e in context.catalogue.list()}
    return [
        entries[i]
        for i in context.policy.visible(principal, "cube", entries)
        if not published or context.open_cubes.exists(i)
    ]


def resource(
    kind: Kind, param: str, action: Action = "read", id_of: Callable[[str], str] | None = None
) -> Guard:
    """The route reads (or writes) the resource named by path parameter `param` (or by `id_of(param)`, e.g.
    the cube of a WMTS layer `cube.variable`); an empty one is not found."""
    if action == "write" and kind not in EXISTS:
        raise ValueError(f"a write guard on {kind} needs a way to tell a missing {kind} (EXISTS)")
    return Guard("resource", kind, param, action, id_of)
