"""API keys for scripts, notebooks and QGIS.

A key reads `cpk_<id>_<secret>`: the id finds the record, the secret (256 random bits) is checked against
its SHA-256. A slow hash like argon2 protects guessable passwords; a random 256-bit secret needs none,
and a fast check keeps every API request cheap. The key itself is shown once, at creation.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from cubeport.db import Database, as_utc
from cubeport.db.models import ApiKeyRecord, UserRecord
from cubeport.errors import InputError, NotFoundError

PREFIX = "cpk_"
KEY_PATTERN = re.compile(r"^cpk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class ApiKey:
    id: str
    owner: str
    label: str
    created: datetime
    expires: datetime | None
    revoked: datetime | None
    last_used: datetime | None

    def to_dict(self) -> dict[str, str | None]:
        """What clients see of a key (never the key itself)."""

        def iso(moment: datetime | None) -> str | None:
            return moment.isoformat() if moment else None

        return {
            "id": self.id,
            "owner": self.owner,
            "label": self.label,
            "status": self.status,
            "created": iso(self.created),
            "expires": iso(self.expires),
            "last_used": iso(self.last_used),
        }

    @property
    def status(self) -> str:
        if self.revoked:
            return "revoked"
        if self.expires and self.expires <= datetime.now(UTC):
            return "expired"
        return "active"


def looks_like_key(text: str) -> bool:
    return text.startswith(PREFIX)


def key_id(text: str) -> str | None:
    """The public id of a well-formed key (for throttling and the audit log), else None."""
    match = KEY_PATTERN.match(text)
    return match.group(1) if match else None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKeys:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, owner: str, *, expires_days: int | None = None, label: str = "") -> tuple[ApiKey, str]:
        """A new key for `owner`; returns its record and the key, which is not stored and cannot be shown again."""
        if expires_days is not None and expires_days < 1:
            raise InputError("--expires-days must be at least 1")
        key_id_, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        with self.db.session() as session:
            if session.get(UserRecord, owner) is None:
                raise NotFoundError(f"user {owner!r} does not exist; create it with `cubeport users create`")
            record = ApiKeyRecord(
                id=key_id_,
                owner=owner,
                label=label[:128],
                secret_hash=_digest(secret),
                created=now,
                expires=now + timedelta(days=expires_days) if expires_days else None,
            )
            session.add(record)
            session.flush()
            return _key(record), f"{PREFIX}{key_id_}_{secret}"

    def verify(self, key: str) -> ApiKey | None:
        """The record of a valid, unexpired, unrevoked key; None otherwise."""
        match = KEY_PATTERN.match(key)
        if not match:
            return None
        now = datetime.now(UTC)
        with self.db.session() as session:
            record = session.get(ApiKeyRecord, match.group(1))
            if record is None or not hmac.compare_digest(record.secret_hash, _digest(match.group(2))):
                return None
            if record.revoked or (record.expires and as_utc(record.expires) <= now):
                return None
            if record.last_used is None or now - as_utc(record.last_used) > timedelta(minutes=1):
                record.last_used = now  # at most one write a minute per key
            return _key(record)

    def list(self, owner: str | None = None) -> list[ApiKey]:
        query = select(ApiKeyRecord).order_by(ApiKeyRecord.owner, ApiKeyRecord.created)
        if owner is not None:
            query = query.where(ApiKeyRecord.owner == owner)
        with self.db.session() as session:
            return [_key(r) for r in session.scalars(query)]

    def get(self, key_id_: str) -> ApiKey:
        with self.db.session() as session:
            record = session.get(ApiKeyRecord, key_id_)
            if record is None:
                raise NotFoundError(f"API key {key_id_!r} does not exist")
            return _key(record)

    def revoke(self, key_id_: str) -> ApiKey:
        with self.db.session() as session:
            record = session.get(ApiKeyRecord, key_id_)
            if record is None:
                raise NotFoundError(f"API key {key_id_!r} does not exist")
            record.revoked = record.revoked or datetime.now(UTC)
            return _key(record)


def _key(record: ApiKeyRecord) -> ApiKey:
    return ApiKey(
        record.id,
        record.owner,
        record.label,
        as_utc(record.created),
        as_utc(record.expires),
        as_utc(record.revoked),
        as_utc(record.last_used),
    )
