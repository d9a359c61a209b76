"""OpenID Connect: bearer-token validation and the browser's authorization-code flow with PKCE.

Each trusted provider is found through its discovery document; its signing keys (JWKS) are cached and
fetched again when a token names an unknown key id, at most every `jwks_min_refresh_seconds`. A token
must carry a trusted issuer, an accepted audience, a valid expiry (and not-before, if present) and be
signed with an allowed asymmetric algorithm by one of the provider's keys. PyJWT does the JOSE work;
the code flow is a few HTTP calls, written here against httpx (Authlib would bring a second HTTP stack).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt

from cubeport.auth.principal import ROLES, Role
from cubeport.config import OidcProviderSettings
from cubeport.errors import AuthenticationError, NotFoundError, UnavailableError

DISCOVERY_SECONDS = 3600.0


@dataclass(frozen=True)
class Identity:
    """What a validated token says about its user."""

    provider: str
    subject: str
    username: str
    role: Role
    groups: frozenset[str]
    display_name: str | None = None
    email: str | None = None


def pkce_pair() -> tuple[str, str]:
    """A code verifier and its S256 challenge (RFC 7636)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


class OidcProvider:
    def __init__(self, settings: OidcProviderSettings, http: httpx.Client | None = None) -> None:
        self.settings = settings
        self.name = settings.name
        self.issuer = settings.issuer.rstrip("/")
        self._http = http or httpx.Client(timeout=5.0)
        self._metadata: tuple[float, dict[str, Any]] | None = None
        self._keys: dict[str, tuple[jwt.PyJWK, str | None]] = {}  # kid -> key, the algorithm it declares
        self._keys_fetched = 0.0
        self._lock = threading.Lock()

    # discovery and keys

    def metadata(self) -> dict[str, Any]:
        if self._metadata and self._metadata[0] > time.monotonic():
            return self._metadata[1]
        document = self._get_json(f"{self.issuer}/.well-known/openid-configuration")
        if str(document.get("issuer", "")).rstrip("/") != self.issuer:
            raise UnavailableError(
                f"OIDC provider {self.name}: discovery names issuer {document.get('issuer')!r}, "
                f"not the configured {self.issuer!r}"
            )
        self._metadata = (time.monotonic() + DISCOVERY_SECONDS, document)
        return document

    def signing_key(self, kid: str | None) -> tuple[jwt.PyJWK, str | None]:
        with self._lock:
            if (
                kid not in self._keys
                and time.monotonic() - self._keys_fetched >= self.settings.jwks_min_refresh_seconds
            ):
                self._refresh_keys()
            if kid is None and len(self._keys) == 1:
                return next(iter(self._keys.values()))
            key = self._keys.get(kid) if kid else None
        if key is None:
            raise AuthenticationError(
                f"token signed with a key ({kid!r}) that provider {self.name} does not have"
            )
        return key

    def _refresh_keys(self) -> None:
        jwks = self._get_json(self.endpoint("jwks_uri"))
        keys = {}
        for data in jwks.get("keys") or []:
            if not isinstance(data, dict) or data.get("use", "sig") != "sig" or "kid" not in data:
                continue
            try:
                keys[data["kid"]] = (jwt.PyJWK(data), data.get("alg"))
            except jwt.PyJWTError:
                continue  # a key type PyJWT cannot use; tokens signed with it fail as unknown
        self._keys, self._keys_fetched = keys, time.monotonic()

    def endpoint(self, name: str) -> str:
        """A URL from the discovery document (`jwks_uri`, `token_endpoint`, ...)."""
        url = self.metadata().get(name)
        if not isinstance(url, str):
            raise UnavailableError(f"OIDC provider {self.name}: its discovery document has no {name}")
        return url

    def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = self._http.get(url)
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise UnavailableError(f"OIDC provider {self.name} unreachable at {url}: {exc}") from None
        if not isinstance(document, dict):
            raise UnavailableError(f"OIDC provider {self.name}: {url} is not a JSON object")
        return document

    # tokens

    def validate(
        self, token: str, *, audience: list[str] | None = None, nonce: str | None = None
    ) -> dict[str, Any]:
        """The claims of a valid token from this provider; AuthenticationError says why one is not."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthenticationError("the bearer token is not a well-formed JWT") from None
        algorithm = header.get("alg")
        if algorithm not in self.settings.algorithms:
            raise AuthenticationError(
                f"token algorithm {algorithm!r} is not allowed; "
                f"allowed: {', '.join(self.settings.algorithms)}"
            )
        key, declared = self.signing_key(header.get("kid"))
        if declared and declared != algorithm:
            raise AuthenticationError(f"token algorithm {algorithm!r} does not match its key's ({declared})")
        try:
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=[algorithm],
                issuer=self.issuer,
                audience=audience or self.settings.audience,
                leeway=self.settings.leeway_seconds,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthenticationError("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise AuthenticationError("the token is not valid yet (nbf/iat in the future)") from None
        except jwt.InvalidAudienceError:
            raise AuthenticationError("the token is not meant for this service (audience)") from None
        except jwt.InvalidIssuerError:
            raise AuthenticationError("the token's issuer is not trusted") from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthenticationError(f"the token lacks the {exc.claim!r} claim") from None
        except jwt.InvalidSignatureError:
            raise AuthenticationError("the token's signature is not valid") from None
        except jwt.PyJWTError as exc:
            raise AuthenticationError(f"the token is not valid: {exc}") from None
        if nonce is not None and not secrets.compare_digest(str(claims.get("nonce", "")), nonce):
            raise AuthenticationError("the ID token's nonce does not match this sign-in")
        return claims

    def identity(self, claims: dict[str, Any]) -> Identity:
        """Map a token's claims to a user, a role and groups, as configured."""
        settings = self.settings
        roles = {
            str(r)
            for path in settings.role_claims
            for r in _as_list(_claim(claims, path.format(client_id=settings.client_id)))
        }
        mapped = {
            settings.role_map[r] for r in roles if r in settings.role_map
        }  # unmapped roles grant nothing
        granted = [r for r in ROLES if r in mapped]  # in ROLES order, so the last is the highest
        role: Role = granted[-1] if granted else "viewer"
        groups = frozenset(
            str(g).strip("/") for path in settings.group_claims for g in _as_list(_claim(claims, path))
        )
        username = str(claims.get(settings.username_claim) or claims["sub"])
        return Identity(
            self.name,
            str(claims["sub"]),
            username,
            role,
            groups - {""},
            claims.get("name"),
            claims.get("email"),
        )

    # authorization code flow

    def authorization_url(self, *, redirect_uri: str, state: str, nonce: str, code_challenge: str) -> str:
        query = {
            "response_type": "code",
            "client_id": self.settings.client_id,
            "redirect_uri": redirect_uri,
            "scope": self.settings.scopes,
            "state": state,
            "nonce": nonce,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
        }
        return f"{self.endpoint('authorization_endpoint')}?{urlencode(query)}"

    def exchange_code(self, *, code: str, redirect_uri: str, code_verifier: str) -> dict[str, Any]:
        """Trade the authorization code for tokens at the token endpoint."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": self.settings.client_id,
            "code_verifier": code_verifier,
        }
        secret = self.settings.client_secret
        # a public client sends no credentials (the client of this provider has no default auth)
        auth = (
            httpx.BasicAuth(self.settings.client_id, secret.get_secret_value())
            if secret is not None
            else httpx.USE_CLIENT_DEFAULT
        )
        try:
            response = self._http.post(self.endpoint("token_endpoint"), data=form, auth=auth)
        except httpx.HTTPError as exc:
            raise UnavailableError(f"OIDC provider {self.name} unreachable: {exc}") from None
        if response.status_code >= 400:
            raise AuthenticationError(
                f"provider {self.name} refused the sign-in ({response.status_code}); start again"
            )
        try:
            tokens = response.json()
        except ValueError:
            raise UnavailableError(
                f"provider {self.name} answered the token request with something not JSON"
            ) from None
        if not isinstance(tokens, dict) or not isinstance(tokens.get("id_token"), str):
            raise AuthenticationError(
                f"provider {self.name} returned no ID token; is the `openid` scope allowed?"
            )
        return tokens


class OidcProviders:
    """The trusted providers; a token goes to the one whose issuer it names."""

    def __init__(self, settings: list[OidcProviderSettings]) -> None:
        self.by_name = {p.name: OidcProvider(p) for p in settings}
        self._by_issuer = {p.issuer: p for p in self.by_name.values()}

    def get(self, name: str) -> OidcProvider:
        if name not in self.by_name:
            raise NotFoundError(f"no OIDC provider {name!r}; configured: {', '.join(self.by_name) or 'none'}")
        return self.by_name[name]

    def validate(self, token: str) -> tuple[OidcProvider, dict[str, Any]]:
        try:
            issuer = str(jwt.decode(token, options={"verify_signature": False}).get("iss", "")).rstrip("/")
        except jwt.PyJWTError:
            raise AuthenticationError(
                "the bearer token is neither an API key nor a well-formed JWT"
            ) from None
        provider = self._by_issuer.get(issuer)
        if provider is None:
            raise AuthenticationError("the token's issuer is not trusted")
        return provider, provider.validate(token)


def _claim(claims: dict[str, Any], path: str) -> Any:
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple, set)) else [value]
