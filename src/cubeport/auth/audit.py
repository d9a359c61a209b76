"""The audit log: sign-ins, failed sign-ins, keys, access changes and reads of restricted resources.

It also serves the throttle: failures are counted from the log, so every API worker sees the same count.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select

from cubeport.db import Database, as_utc
from cubeport.db.models import AuditRecord
from cubeport.memory_cache import TtlCache

FAILURES = ("sign-in-failed", "key-failed")
EVENTS = (
    "sign-in",
    "sign-out",
    "token-rejected",
    "sign-in-throttled",
    "key-created",
    "key-revoked",
    "access-changed",
    "restricted-read",
    *FAILURES,
)


@dataclass(frozen=True)
class AuditEvent:
    id: int
    time: datetime
    event: str
    user: str | None
    address: str | None
    kind: str | None
    resource_id: str | None
    detail: str

    def to_dict(self) -> dict[str, object]:
        return {**self.__dict__, "time": self.time.isoformat()}


class AuditLog:
    READ_EVERY_SECONDS = 600.0  # one restricted-read entry per user and resource in this time, not per tile

    def __init__(self, db: Database) -> None:
        self.db = db
        self._reads: TtlCache[tuple[str | None, str, str], bool] = TtlCache(self.READ_EVERY_SECONDS)

    def record(
        self,
        event: str,
        *,
        user: str | None = None,
        address: str | None = None,
        kind: str | None = None,
        resource_id: str | None = None,
        detail: str = "",
    ) -> None:
        with self.db.session() as session:
            session.add(
                AuditRecord(
                    event=event,
                    user_name=user,
                    address=address,
                    kind=kind,
                    resource_id=resource_id,
                    detail=detail[:1000],
                    time=datetime.now(UTC),
                )
            )

    def restricted_read(self, user: str | None, kind: str, resource_id: str, address: str | None) -> None:
        """Log a read of a restricted resource, at most once per user and resource every few minutes."""
        key = (user, kind, resource_id)
        if self._reads.get(key):
            return
        self._reads.put(key, True)
        self.record("restricted-read", user=user, address=address, kind=kind, resource_id=resource_id)

    def query(
        self,
        *,
        event: str | None = None,
        user: str | None = None,
        address: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[AuditEvent]:
        """Newest first."""
        query = select(AuditRecord).order_by(AuditRecord.id.desc()).limit(min(max(limit, 1), 10_000))
        if event:
            query = query.where(AuditRecord.event == event)
        if user:
            query = query.where(AuditRecord.user_name == user)
        if address:
            query = query.where(AuditRecord.address == address)
        if since:  # a time without a zone is UTC, as every stored time
            query = query.where(AuditRecord.time >= as_utc(since))
        with self.db.session() as session:
            return [
                AuditEvent(
                    r.id, as_utc(r.time), r.event, r.user_name, r.address, r.kind, r.resource_id, r.detail
                )
                for r in session.scalars(query)
            ]

    def failures(
        self, *, since: datetime, user: str | None = None, address: str | None = None
    ) -> tuple[int, datetime | None]:
        """How many failed attempts since `since` for an account, from an address, or for an account from an
        address (both given), and when the last was."""
        if not (user or address):
            raise ValueError("count failures of an account, an address or both")
        query = select(func.count(), func.max(AuditRecord.time)).where(
            AuditRecord.event.in_(FAILURES), AuditRecord.time >= since
        )
        if user:
            query = query.where(AuditRecord.user_name == user)
        if address:
            query = query.where(AuditRecord.address == address)
        with self.db.session() as session:
            count, last = session.execute(query).one()
        return int(count), as_utc(last)
