"""Turns credentials into a Principal: passwords, API keys, OIDC bearer tokens and browser sessions.

Every sign-in, failure and key change is written to the audit log; password and key attempts are
throttled per account and per client address. No HTTP here: the API hands over plain strings.

Who a credential belongs to is cached in process for a few seconds (a lookup costs about 1 ms of
database queries per request); changes made in this process clear the cache at once, changes made by
another process take effect within `CREDENTIAL_SECONDS`.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from cubeport.auth.audit import AuditLog
from cubeport.auth.directory import Directory
from cubeport.auth.keys import ApiKey, ApiKeys, key_id, looks_like_key
from cubeport.auth.oidc import OidcProviders, pkce_pair
from cubeport.auth.principal import Principal
from cubeport.auth.sessions import Session, Sessions
from cubeport.auth.throttle import Throttle
from cubeport.config import AuthSettings
from cubeport.db import Database
from cubeport.errors import AuthenticationError, ConflictError, NotFoundError, ThrottledError
from cubeport.memory_cache import TtlCache

CREDENTIAL_SECONDS = 5.0


def _cache_key(kind: str, credential: str) -> str:
    return hashlib.sha256(f"{kind}:{credential}".encode()).hexdigest()


class Authenticator:
    def __init__(self, db: Database, settings: AuthSettings) -> None:
        self.directory = Directory(db)
        self.keys = ApiKeys(db)
        self.sessions = Sessions(db, settings.session_hours)
        self.audit = AuditLog(db)
        self.throttle = Throttle(self.audit, settings)
        self.oidc = OidcProviders(settings.oidc)
        self._known: TtlCache[str, tuple[Principal, Session | None]] = TtlCache(CREDENTIAL_SECONDS)

    def forget_credentials(self) -> None:
        """Drop cached identities, after a change to users, groups or keys."""
        self._known.clear()

    # passwords and keys

    def sign_in(self, name: str, password: str, address: str | None) -> Principal:
        """Check a local account's password: throttled, audited."""
        self._throttled(name, address, "password")
        if not self.directory.verify_password(name, password):
            self.audit.record(
                "sign-in-failed", user=name, address=address, detail="wrong user name or password"
            )
            raise AuthenticationError("wrong user name or password")
        self.audit.record("sign-in", user=name, address=address, detail="password")
        return self.directory.principal(name, "password")

    def api_key(self, key: str, address: str | None) -> Principal:
        """Check an API key. Only failures are throttled: a valid 256-bit key cannot be guessed, and checking
        the throttle on every valid request would cost every tile a query (and let others lock a key out)."""
        cache_key = _cache_key("api-key", key)
        if known := self._known.get(cache_key):
            return known[0]
        found = self.keys.verify(key)
        if found is None:
            account = f"key:{key_id(key)}" if key_id(key) else None
            self._throttled(account, address, "api-key")
            self.audit.record(
                "key-failed", user=account, address=address, detail="unknown, expired or revoked"
            )
            raise AuthenticationError("the API key is unknown, expired or revoked")
        try:
            principal = self.directory.principal(found.owner, "api-key")
        except NotFoundError:
            raise AuthenticationError("the API key's owner is disabled") from None
        lifetime = (found.expires - datetime.now(UTC)).total_seconds() if found.expires else None
        self._known.put(cache_key, (principal, None), seconds=lifetime)
        return principal

    def bearer(self, token: str, address: str | None) -> Principal:
        """An `Authorization: Bearer` value: an API key (for clients that only send bearer tokens) or a JWT."""
        if looks_like_key(token):
            return self.api_key(token, address)
        cache_key = _cache_key("jwt", token)
        if known := self._known.get(cache_key):
            return known[0]
        try:
            provider, claims = self.oidc.validate(token)
        except AuthenticationError as exc:
            self.audit.record("token-rejected", address=address, detail=str(exc))
            raise
        identity = provider.identity(claims)
        try:  # the account bound to the token's subject, bound on its first use as the browser sign-in binds
            name = self.directory.bind_external(identity.provider, identity.subject, identity.username)
            local_groups = frozenset(self.directory.groups_of(name))
        except ConflictError as exc:
            self.audit.record("token-rejected", user=identity.username, address=address, detail=str(exc))
            raise AuthenticationError(f"{exc}; ask an administrator if that account is yours") from None
        except NotFoundError:
            raise AuthenticationError("this account is disabled here") from None
        principal = Principal(name, identity.role, identity.groups | local_groups, "oidc", identity.provider)
        self._known.put(cache_key, (principal, None), seconds=float(claims["exp"]) - time.time())
        return principal

    def _throttled(self, account: str | None, address: str | None, what: str) -> None:
        try:
            self.throttle.check(account=account, address=address)
        except ThrottledError:
            self.audit.record("sign-in-throttled", user=account, address=address, detail=what)
            raise

    def create_key(
        self, owner: str, *, expires_days: int | None = None, label: str = "", by: str | None = None
    ) -> tuple[ApiKey, str]:
        """A key for `owner`. NotFoundError for an account known only from bearer tokens: its record holds
        no role or groups of its provider's until a browser sign-in records them."""
        user = self.directory.user(owner)
        if user.provider != "local" and user.last_login is None:
            raise NotFoundError(
                f"user {owner!r} has used bearer tokens only: its role and groups are recorded when it first "
                "signs in in the browser (/auth/login)"
            )
        key, secret = self.keys.create(owner, expires_days=expires_days, label=label)
        self.audit.record(
            "key-created",
            user=owner,
            detail=f"key {key.id} by {by or owner}"
            + (f", expires {key.expires:%Y-%m-%d}" if key.expires else ", no expiry"),
        )
        return key, secret

    def revoke_key(self, key_id_: str, *, by: str | None = None) -> ApiKey:
        key = self.keys.revoke(key_id_)
        self.forget_credentials()
        self.audit.record("key-revoked", user=key.owner, detail=f"key {key.id} by {by or key.owner}")
        return key

    def ensure_admin(self, password: str | None = None) -> str | None:
        """Create the first admin (`admin`) if there is none; returns its password, generated if not given."""
        if self.directory.has_admin():
            return None
        password = password or secrets.token_urlsafe(12)
        try:
            self.directory.update_user("admin", role="admin", active=True, password=password)
        except NotFoundError:
            self.directory.create_user("admin", role="admin", password=password)
        self.audit.record("access-changed", user="admin", detail="first admin created")
        return password

    # browser sessions

    def start_session(self, principal: Principal) -> tuple[str, Session]:
        """A browser session for a principal who has just signed in; returns the cookie token and session."""
        return self.sessions.create(principal.to_dict())

    def session(self, token: str) -> tuple[Principal, Session] | None:
        """The principal of a live session, with its role and groups read afresh (a disabled user is out)."""
        cache_key = _cache_key("session", token)
        if (known := self._known.get(cache_key)) and known[1] is not None:  # session entries have one
            return known[0], known[1]
        session = self.sessions.get(token)
        if session is None:
            return None
        try:
            principal = self.directory.principal(session.principal["name"], "session")
        except NotFoundError:  # deleted or disabled since
            self.sessions.end(token)
            return None
        self._known.put(
            cache_key,
            (principal, session),
            seconds=(session.expires - datetime.now(UTC)).total_seconds(),
        )
        return principal, session

    def end_session(self, token: str) -> None:
        self.sessions.end(token)
        self._known.pop(_cache_key("session", token))

    def oidc_start(self, provider_name: str, redirect_uri: str, next_url: str) -> tuple[str, str]:
        """Begin the authorization-code flow with PKCE; returns the provider's URL to send the browser to and
        the state, which the browser must bring back (so that nobody can complete a sign-in it did not start)."""
        provider = self.oidc.get(provider_name)
        verifier, challenge = pkce_pair()
        state, nonce = self.sessions.start_login(provider_name, verifier, next_url)
        return provider.authorization_url(
            redirect_uri=redirect_uri, state=state, nonce=nonce, code_challenge=challenge
        ), state

    def oidc_finish(
        self, state: str, code: str, redirect_uri: str, address: str | None
    ) -> tuple[Principal, str]:
        """Complete the flow: exchange the code, validate the ID token, record the user; returns the next URL."""
        pending = self.sessions.finish_login(state)
        provider = self.oidc.get(pending.provider)
        try:
            tokens = provider.exchange_code(
                code=code, redirect_uri=redirect_uri, code_verifier=pending.code_verifier
            )
            claims: dict[str, Any] = provider.validate(
                tokens["id_token"], audience=[provider.settings.client_id], nonce=pending.nonce
            )
        except AuthenticationError as exc:
            self.audit.record("sign-in-failed", address=address, detail=f"{provider.name}: {exc}")
            raise
        identity = provider.identity(claims)
        name = self.directory.record_external(
            identity.provider,
            identity.subject,
            identity.username,
            role=identity.role,
            groups=identity.groups,
            display_name=identity.display_name,
            email=identity.email,
        )
        try:
            principal = self.directory.principal(name, "oidc")
        except NotFoundError:
            raise AuthenticationError("this account is disabled here; ask an administrator") from None
        self.audit.record("sign-in", user=name, address=address, detail=f"oidc {provider.name}")
        return principal, pending.next_url
