"""Sign-in and sign-out for browsers (login form, OIDC authorization code + PKCE), the caller's identity,
and the caller's own API keys."""

from __future__ import annotations

import html
import secrets
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Path, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, Field

from cubeport.api.deps import get_context
from cubeport.api.security import (
    CSRF_HEADER,
    OPEN,
    SESSION_COOKIE,
    SIGNED_IN,
    CurrentPrincipal,
    client_address,
    same_origin,
    signed_in_name,
)
from cubeport.auth.principal import Principal
from cubeport.context import Context
from cubeport.errors import AuthenticationError, InputError, NotFoundError, PermissionDeniedError

router = APIRouter(prefix="/auth", tags=["identity"])
ContextDep = Annotated[Context, Depends(get_context)]
LOGIN_COOKIE = "cubeport_login"  # the state of an OIDC sign-in this browser started
NextUrl = Annotated[
    str, Query(alias="next", description="where to go after signing in (a path on this site)")
]


def safe_next(url: str) -> str:
    """Only paths on this site: no open redirects to other hosts."""
    return url if url.startswith("/") and not url.startswith("//") and "\\" not in url else "/"


def _start_session(response: Response, context: Context, principal: Principal) -> str:
    token, session = context.auth.start_session(principal)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(context.settings.auth.session_hours * 3600),
        httponly=True,
        secure=context.settings.auth.cookie_secure,
        samesite="lax",
        path="/",
    )
    return session.csrf_token


def login_page(context: Context, next_url: str, message: str = "") -> str:
    providers = "".join(
        f'<p><a class="button" href="/auth/oidc/{html.escape(name)}/login?next={html.escape(quote(next_url))}">'
        f"Sign in with {html.escape(name)}</a></p>"
        for name in context.auth.oidc.by_name
    )
    error = f'<p class="error" role="alert">{html.escape(message)}</p>' if message else ""
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in: Cubeport</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font:16px system-ui,sans-serif;max-width:22rem;margin:4rem auto;padding:0 1rem}}
label,input,button{{display:block;width:100%;box-sizing:border-box;margin:.3rem 0}}input,button,.button{{padding:.5rem}}
.error{{color:#b00020}}</style></head><body><h1>Sign in to Cubeport</h1>{error}
<form method="post" action="/auth/login"><input type="hidden" name="next" value="{html.escape(next_url)}">
<label>User name <input name="username" autocomplete="username" required></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button></form>{providers}</body></html>"""


@router.get(
    "/login",
    summary="The sign-in page (login form and OIDC providers)",
    response_class=HTMLResponse,
    dependencies=[Depends(OPEN)],
)
def login_form(context: ContextDep, next_url: NextUrl = "/") -> HTMLResponse:
    return HTMLResponse(login_page(context, safe_next(next_url)))


@router.post(
    "/login",
    summary="Sign in with a local account: sets the session cookie",
    dependencies=[Depends(OPEN)],
    responses={303: {"description": "signed in; redirect to `next`"}, 401: {}, 429: {}},
)
def login(
    request: Request,
    context: ContextDep,
    username: Annotated[str, Form(max_length=128)],
    password: Annotated[str, Form(max_length=1024)],
    next_url: Annotated[str, Form(alias="next")] = "/",
) -> Response:
    if not same_origin(request):
        raise PermissionDeniedError("sign-in forms must be posted from this site")
    target = safe_next(next_url)
    try:
        principal = context.auth.sign_in(username, password, client_address(request))
    except AuthenticationError as exc:
        if "text/html" in request.headers.get("accept", ""):
            return HTMLResponse(login_page(context, target, str(exc)), status_code=401)
        raise
    response = RedirectResponse(target, status_code=303)
    _start_session(response, context, principal)
    return response


@router.post(
    "/logout",
    summary="Sign out: ends the session and clears its cookie",
    status_code=204,
    dependencies=[Depends(OPEN)],
)
def logout(request: Request, context: ContextDep, principal: CurrentPrincipal) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:  # current_principal has checked the CSRF token of this cookie-authenticated write
        context.auth.end_session(token)
        context.auth.audit.record("sign-out", user=principal.name, address=client_address(request))
    response = Response(status_code=204)
    response.delete_cookie(
        SESSION_COOKIE, path="/", secure=context.settings.auth.cookie_secure, httponly=True, samesite="lax"
    )
    return response


@router.get(
    "/oidc/{provider}/login",
    summary="Sign in through an OIDC provider (authorization code + PKCE)",
    dependencies=[Depends(OPEN)],
    responses={302: {"description": "to the provider"}},
)
def oidc_login(
    request: Request,
    context: ContextDep,
    provider: Annotated[str, Path(max_length=32)],
    next_url: NextUrl = "/",
) -> RedirectResponse:
    redirect_uri = str(request.url_for("oidc_callback", provider=provider))
    url, state = context.auth.oidc_start(provider, redirect_uri, safe_next(next_url))
    response = RedirectResponse(url, status_code=302)
    response.set_cookie(
        LOGIN_COOKIE,
        state,
        max_age=600,
        httponly=True,
        secure=context.settings.auth.cookie_secure,
        samesite="lax",
        path="/auth/oidc",
    )
    return response


@router.get(
    "/oidc/{provider}/callback",
    summary="Where the OIDC provider sends the browser back",
    dependencies=[Depends(OPEN)],
    responses={303: {"description": "signed in; to `next`"}},
)
def oidc_callback(
    request: Request,
    context: ContextDep,
    provider: Annotated[str, Path(max_length=32)],
    state: Annotated[str, Query(max_length=256)] = "",
    code: Annotated[str, Query(max_length=4096)] = "",
    error: Annotated[str, Query(max_length=256)] = "",
) -> Response:
    if error or not code or not state:
        raise AuthenticationError(f"the provider did not sign you in ({error or 'no code'}); sign in again")
    if not secrets.compare_digest(request.cookies.get(LOGIN_COOKIE, "").encode(), state.encode()):
        raise AuthenticationError("this sign-in was not started in this browser; sign in again")
    redirect_uri = str(request.url_for("oidc_callback", provider=provider))
    principal, next_url = context.auth.oidc_finish(state, code, redirect_uri, client_address(request))
    if principal.provider != provider:
        raise AuthenticationError("the sign-in came back to another provider's address; sign in again")
    response = RedirectResponse(safe_next(next_url), status_code=303)
    response.delete_cookie(LOGIN_COOKIE, path="/auth/oidc")
    _start_session(response, context, principal)
    return response


@router.get(
    "/me",
    summary="Who the caller is; for browser sessions also the CSRF token for writes",
    dependencies=[Depends(OPEN)],
)
def me(request: Request, context: ContextDep, principal: CurrentPrincipal) -> dict[str, Any]:
    body: dict[str, Any] = {
        **principal.to_dict(),
        "signed_in": not principal.anonymous,
        "providers": sorted(context.auth.oidc.by_name),
    }
    token = request.cookies.get(SESSION_COOKIE)
    if principal.via == "session" and token and (found := context.auth.session(token)):
        body["csrf_token"], body["csrf_header"] = found[1].csrf_token, CSRF_HEADER
        body["expires"] = found[1].expires.isoformat()
    return body


class KeyRequest(BaseModel):
    label: str = Field("", max_length=128, description="what the key is for, e.g. 'QGIS on my laptop'")
    expires_days: int | None = Field(
        None, ge=1, le=3650, description="days until the key expires; none: never"
    )


@router.get("/keys", summary="The caller's API keys (never the keys themselves)")
def my_keys(context: ContextDep, principal: Annotated[Principal, Depends(SIGNED_IN)]) -> dict[str, Any]:
    return {"keys": [k.to_dict() for k in context.auth.keys.list(principal.name)]}


@router.post(
    "/keys", summary="Create an API key for the caller; the key is in this response only", status_code=201
)
def create_key(
    request: KeyRequest, context: ContextDep, principal: Annotated[Principal, Depends(SIGNED_IN)]
) -> dict[str, Any]:
    try:
        name = signed_in_name(principal)
        key, secret = context.auth.create_key(
            name, expires_days=request.expires_days, label=request.label, by=name
        )
    except NotFoundError:  # an OIDC user known only from bearer tokens has no account record yet
        raise InputError(
            "sign in once in the browser (/auth/login) so that your account is recorded, then create keys"
        ) from None
    return {**key.to_dict(), "key": secret, "header": "X-API-Key"}


@router.delete("/keys/{key_id}", summary="Revoke one of the caller's API keys", status_code=204)
def revoke_key(
    key_id: Annotated[str, Path(max_length=32)],
    context: ContextDep,
    principal: Annotated[Principal, Depends(SIGNED_IN)],
) -> Response:
    if context.auth.keys.get(key_id).owner != principal.name and not principal.is_admin:
        raise NotFoundError(f"API key {key_id!r} does not exist")
    context.auth.revoke_key(key_id, by=principal.name)
    return Response(status_code=204)
