"""Browser sessions and OIDC sign-ins under way, kept server-side.

The session cookie carries a random token; the database keeps only its SHA-256, so a leaked database
does not leak sessions. Each session has a CSRF token that cookie-authenticated writes must echo.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete

from cubeport.db import Database, as_utc
from cubeport.db.models import LoginStateRecord, SessionRecord
from cubeport.errors import AuthenticationError

LOGIN_MINUTES = 10


@dataclass(frozen=True)
class Session:
    principal: dict[str, Any]  # name, role, groups, provider at sign-in
    csrf_token: str
    expires: datetime


@dataclass(frozen=True)
class PendingLogin:
    provider: str
    code_verifier: str
    nonce: str
    next_url: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Sessions:
    def __init__(self, db: Database, hours: float) -> None:
        self.db = db
        self.lifetime = timedelta(hours=hours)

    def create(self, principal: dict[str, Any]) -> tuple[str, Session]:
        """A new session; returns the cookie token (not stored) and the session."""
        token, now = secrets.token_urlsafe(32), datetime.now(UTC)
        session = Session(principal, secrets.token_urlsafe(24), now + self.lifetime)
        with self.db.session() as db:
            db.execute(delete(SessionRecord).where(SessionRecord.expires < now))
            db.add(
                SessionRecord(
                    token_hash=_digest(token),
                    user_name=principal["name"],
                    principal=principal,
                    csrf_token=session.csrf_token,
                    created=now,
                    expires=session.expires,
                )
            )
        return token, session

    def get(self, token: str) -> Session | None:
        with self.db.session() as db:
            record = db.get(SessionRecord, _digest(token))
            if record is None:
                return None
            if as_utc(record.expires) <= datetime.now(UTC):
                db.delete(record)
                return None
            return Session(dict(record.principal), record.csrf_token, as_utc(record.expires))

    def end(self, token: str) -> None:
        with self.db.session() as db:
            db.execute(delete(SessionRecord).where(SessionRecord.token_hash == _digest(token)))

    def end_all(self, user: str) -> int:
        """End every session of a user (after a password change or when disabling the account)."""
        with self.db.session() as db:
            # Session.execute is typed as Result; a DELETE returns a CursorResult, which has the row count.
            result = cast(
                CursorResult[Any], db.execute(delete(SessionRecord).where(SessionRecord.user_name == user))
            )
            return result.rowcount

    def start_login(self, provider: str, code_verifier: str, next_url: str) -> tuple[str, str]:
        """Remember an OIDC sign-in until the provider calls back; returns its state and nonce."""
        state, nonce, now = secrets.token_urlsafe(24), secrets.token_urlsafe(24), datetime.now(UTC)
        with self.db.session() as db:
            db.execute(delete(LoginStateRecord).where(LoginStateRecord.expires < now))
            db.add(
                LoginStateRecord(
                    state=state,
                    provider=provider,
                    code_verifier=code_verifier,
                    nonce=nonce,
                    next_url=next_url,
                    expires=now + timedelta(minutes=LOGIN_MINUTES),
                )
            )
        return state, nonce

    def finish_login(self, state: str) -> PendingLogin:
        """The sign-in that `state` started; each state works once and for a few minutes only."""
        with self.db.session() as db:
            record = db.get(LoginStateRecord, state)
            if record is None or as_utc(record.expires) <= datetime.now(UTC):
                raise AuthenticationError("this sign-in link is unknown or has expired; sign in again")
            db.delete(record)
            return PendingLogin(record.provider, record.code_verifier, record.nonce, record.next_url)
