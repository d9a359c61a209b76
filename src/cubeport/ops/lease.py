"""The runner's lease: one row in the database that only its holder may renew, so that two runners started
at once (or one left running on another host) never act together. A runner that dies loses the lease when
it expires; the next one takes it over then."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import or_, update

from cubeport.db import Database
from cubeport.db.models import OpsLeaseRecord
from cubeport.errors import ConflictError


class Lease:
    def __init__(self, db: Database, name: str, owner: str, seconds: float = 30.0) -> None:
        self.db, self.name, self.owner, self.seconds = db, name, owner, seconds

    def hold(self) -> bool:
        """Take or renew the lease; False while another owner holds an unexpired one."""
        now = dt.datetime.now(dt.UTC)
        expires = now + dt.timedelta(seconds=self.seconds)
        with self.db.session() as session:
            result = session.execute(
                update(OpsLeaseRecord)
                .where(
                    OpsLeaseRecord.name == self.name,
                    or_(OpsLeaseRecord.owner == self.owner, OpsLeaseRecord.expires < now),
                )
                .values(owner=self.owner, expires=expires)
            )
            if getattr(result, "rowcount", 0) == 1:
                return True
            if session.get(OpsLeaseRecord, self.name) is not None:
                return False
        try:
            with self.db.session() as session:
                session.add(OpsLeaseRecord(name=self.name, owner=self.owner, expires=expires))
        except ConflictError:  # another runner inserted it first
            return False
        return True

    def release(self) -> None:
        with self.db.session() as session:
            session.execute(
                update(OpsLeaseRecord)
                .where(OpsLeaseRecord.name == self.name, OpsLeaseRecord.owner == self.owner)
                .values(expires=dt.datetime(1970, 1, 1, tzinfo=dt.UTC))
            )

    def holder(self) -> str | None:
        with self.db.session() as session:
            record = session.get(OpsLeaseRecord, self.name)
            if record is None:
                return None
            expires = record.expires if record.expires.tzinfo else record.expires.replace(tzinfo=dt.UTC)
            return record.owner if expires > dt.datetime.now(dt.UTC) else None
