"""Delivery of products to downstream portals (e.g. the icebreakers' IBNet): SFTP, FTP(S), an S3 prefix, a
folder, or an HTTP POST hook.

A target takes the products whose file names match its patterns. Each (target, product, checksum) is
delivered once: offering the same file again does nothing, a changed file is a new delivery (and supersedes
an older version still pending, which would otherwise land after it). A failed push
is kept with its error and retried with backoff (30 s doubling, at most an hour apart) by the runner, until
`MAX_ATTEMPTS`; every attempt's outcome is shown in `/ops/status`.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import or_, select, update

from cubeport.db import Database
from cubeport.db.models import OpsDeliveryRecord, OpsTargetRecord
from cubeport.errors import ConflictError, CubeportError, InputError, NotFoundError
from cubeport.ops.remotes import Credentials, Remote
from cubeport.ops.runs import now, utc
from cubeport.ops.sealed import Sealer, described

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
SCHEMES = ("ftp", "ftps", "sftp", "s3", "file", "http", "https")
MAX_ATTEMPTS = 12
CLAIM_SECONDS = 600.0  # a push that takes longer (a dead pusher) is tried again after this
FIRST_BACKOFF = 30.0
LONGEST_BACKOFF = 3600.0


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    products: list[str]
    credentials: list[str] = field(default_factory=list)

    def takes(self, product: str) -> bool:
        return any(fnmatch.fnmatch(product, pattern) for pattern in self.products)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "url": self.url,
            "products": self.products,
            "credentials": self.credentials,
        }


@dataclass(frozen=True)
class Delivery:
    id: int
    target: str
    product: str
    checksum: str
    size: int
    state: str  # pending, delivered, failed
    attempts: int
    error: str
    created: dt.datetime
    delivered: dt.datetime | None
    next_try: dt.datetime | None

    @property
    def latency(self) -> float | None:
        """Seconds from being offered to being delivered."""
        return (self.delivered - self.created).total_seconds() if self.delivered else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "target": self.target,
            "product": self.product,
            "sha256": self.checksum,
            "size": self.size,
            "state": self.state,
            "attempts": self.attempts,
            "error": self.error or None,
            "created": self.created.isoformat(),
            "delivered": self.delivered.isoformat() if self.delivered else None,
            "next_try": self.next_try.isoformat() if self.next_try else None,
            "latency_seconds": self.latency,
        }


class Deliveries:
    """Targets and the deliveries to them."""

    def __init__(
        self,
        db: Database,
        sealer: Sealer,
        *,
        timeout: float = 60.0,
        s3_endpoint: str | None = None,
        ca_file: str | None = None,
    ) -> None:
        self.db, self.sealer, self.timeout, self.s3_endpoint = db, sealer, timeout, s3_endpoint
        self.ca_file = ca_file

    # -- targets ---------------------------------------------------------------------------------------
    def add_target(
        self,
        name: str,
        url: str,
        products: Iterable[str],
        credentials: Credentials | None = None,
        host_key: str | None = None,
    ) -> Target:
        """`host_key`: an SFTP server's public key (OpenSSH text) [default: ~/.ssh/known_hosts]."""
        if not _NAME.match(name):
            raise InputError(f"target name {name!r}: letters, digits, '_', '.', '-' (at most 64)")
        scheme = url.split("://", 1)[0] if "://" in url else "file"
        if scheme not in SCHEMES:
            raise InputError(f"target URL {url!r}: use one of {', '.join(s + '://' for s in SCHEMES)}")
        patterns = [p for p in products if p]
        if not patterns:
            raise InputError("a target needs at least one product pattern, e.g. '*_chart.gpkg'")
        with self.db.session() as session:
            if session.get(OpsTargetRecord, name) is not None:
                raise ConflictError(f"target {name!r} exists; remove it first")
            session.add(
                OpsTargetRecord(
                    name=name,
                    url=url,
                    products=patterns,
                    credentials=self.sealer.seal(credentials),
                    host_key=host_key or "",
                    created=now(),
                )
            )
        return self.target(name)

    def target(self, name: str) -> Target:
        with self.db.session() as session:
            record = session.get(OpsTargetRecord, name)
            if record is None:
                raise NotFoundError(f"target {name!r} not found")
            try:
                credentials = described(self.sealer.unseal(record.credentials))
            except CubeportError:  # sealed with another secret: listings go on, its pushes fail
                credentials = ["(unreadable)"]
            return Target(record.name, record.url, list(record.products), credentials)

    def targets(self) -> list[Target]:
        with self.db.session() as session:
            names = list(session.scalars(select(OpsTargetRecord.name).order_by(OpsTargetRecord.name)))
        return [self.target(n) for n in names]

    def remove_target(self, name: str) -> None:
        self.target(name)
        with self.db.session() as session:
            session.delete(session.get(OpsTargetRecord, name))

    # -- deliveries --------------------------------------------------------------------------------------
    def offer(self, files: Iterable[Path]) -> list[int]:
        """Queue each file for every target that takes it (once per content); returns the new deliveries."""
        targets = self.targets()
        new = []
        for path in files:
            if not path.is_file():
                raise InputError(f"{path}: no such file to deliver")
            checksum, size = _sha256(path), path.stat().st_size
            for target in targets:
                if not target.takes(path.name):
                    continue
                with self.db.session() as session:
                    known = session.scalar(
                        select(OpsDeliveryRecord.id).where(
                            OpsDeliveryRecord.target == target.name,
                            OpsDeliveryRecord.product == path.name,
                            OpsDeliveryRecord.checksum == checksum,
                        )
                    )
                    if known is not None:
                        continue
                    record = OpsDeliveryRecord(
                        target=target.name,
                        product=path.name,
                        path=str(path.resolve()),
                        checksum=checksum,
                        size=size,
                        state="pending",
                        next_try=now(),
                        created=now(),
                    )
                    session.add(record)
                    session.flush()
                    session.execute(
                        update(OpsDeliveryRecord)
                        .where(
                            OpsDeliveryRecord.target == target.name,
                            OpsDeliveryRecord.product == path.name,
                            OpsDeliveryRecord.state == "pending",
                            OpsDeliveryRecord.id != record.id,
                        )
                        .values(
                            state="failed",
                            next_try=None,
                            error=f"superseded by delivery {record.id}, a newer version of the product",
                        )
                    )
                    new.append(record.id)
        return new

    def push_due(self, when: dt.datetime | None = None) -> list[Delivery]:
        """Try every pending delivery whose time has come; returns them as they ended up."""
        when = when or now()
        with self.db.session() as session:
            due = [
                r.id
                for r in session.scalars(
                    select(OpsDeliveryRecord)
                    .where(OpsDeliveryRecord.state == "pending")
                    .order_by(OpsDeliveryRecord.id)  # older versions first
                )
                if r.next_try is None or utc(r.next_try) <= when  # type: ignore[operator]
            ]
        return [self.push(i, when) for i in due]

    def push(self, delivery_id: int, when: dt.datetime | None = None) -> Delivery:
        """Push one pending delivery whose time has come. It is claimed first (its next try moved past the
        push's time budget in one conditional update), so two pushers (`cubeport ops deliver` and the runner)
        never send it twice; a delivery not claimable is returned as it is."""
        when = when or now()
        claimed_until = when + dt.timedelta(seconds=CLAIM_SECONDS)
        with self.db.session() as session:
            record = session.get(OpsDeliveryRecord, delivery_id)
            if record is None:
                raise NotFoundError(f"delivery {delivery_id} not found")
            claim = session.execute(
                update(OpsDeliveryRecord)
                .where(
                    OpsDeliveryRecord.id == delivery_id,
                    OpsDeliveryRecord.state == "pending",
                    or_(OpsDeliveryRecord.next_try.is_(None), OpsDeliveryRecord.next_try <= when),
                )
                .values(next_try=claimed_until)
                .execution_options(synchronize_session=False)  # decided by the database, not in Python
            )
            if getattr(claim, "rowcount", 0) != 1:
                return _delivery(record)
            target_record = session.get(OpsTargetRecord, record.target)
            assert target_record is not None  # deliveries go with their target
            url, sealed, host_key = target_record.url, target_record.credentials, target_record.host_key
            path, product, checksum, attempts = (
                Path(record.path),
                record.product,
                record.checksum,
                record.attempts,
            )
        try:
            if _sha256(path) != checksum:
                raise InputError(f"{path} changed since it was offered; offer it again")
            credentials = self.sealer.unseal(sealed)
            if url.startswith(("http://", "https://")):
                _post(url, path, product, checksum, credentials, self.timeout)
            else:
                with Remote(
                    url,
                    credentials,
                    timeout=self.timeout,
                    s3_endpoint=self.s3_endpoint,
                    ca_file=self.ca_file,
                    host_key=host_key or None,
                ) as remote:
                    remote.upload(path, product)
        except (CubeportError, OSError, httpx.HTTPError) as exc:  # remote, input, unreadable secrets
            attempts += 1
            backoff = min(FIRST_BACKOFF * 2 ** (attempts - 1), LONGEST_BACKOFF)
            values: dict[str, Any] = {
                "attempts": attempts,
                "error": str(exc)[:2000] or type(exc).__name__,
                "state": "failed" if attempts >= MAX_ATTEMPTS else "pending",
                "next_try": now() + dt.timedelta(seconds=backoff),
            }
        else:
            values = {
                "attempts": attempts + 1,
                "error": "",
                "state": "delivered",
                "delivered": now(),
                "next_try": None,
            }
        with self.db.session() as session:
            session.execute(
                update(OpsDeliveryRecord)
                .where(OpsDeliveryRecord.id == delivery_id, OpsDeliveryRecord.state == "pending")
                .values(**values)
            )
        return self.delivery(delivery_id)

    def delivery(self, delivery_id: int) -> Delivery:
        with self.db.session() as session:
            record = session.get(OpsDeliveryRecord, delivery_id)
            if record is None:
                raise NotFoundError(f"delivery {delivery_id} not found")
            return _delivery(record)

    def recent(self, limit: int = 100) -> list[Delivery]:
        with self.db.session() as session:
            query = select(OpsDeliveryRecord).order_by(OpsDeliveryRecord.id.desc()).limit(limit)
            return [_delivery(r) for r in session.scalars(query)]


def _post(
    url: str, path: Path, product: str, checksum: str, credentials: Credentials | None, timeout: float
) -> None:
    """The HTTP hook: the file as the body of one POST; a bearer token from the target's password. Redirects
    are not followed (the token is for this URL only)."""
    headers = {
        "Content-Type": "application/octet-stream",
        "X-Cubeport-Product": product,
        "X-Cubeport-SHA256": checksum,
    }
    if credentials is not None and credentials.password:
        headers["Authorization"] = f"Bearer {credentials.password}"
    with open(path, "rb") as body:
        response = httpx.post(url, content=body, headers=headers, timeout=timeout, follow_redirects=False)
    if not 200 <= response.status_code < 300:
        raise InputError(f"the hook answered {response.status_code} {response.reason_phrase}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _delivery(record: OpsDeliveryRecord) -> Delivery:
    return Delivery(
        id=record.id,
        target=record.target,
        product=record.product,
        checksum=record.checksum,
        size=record.size,
        state=record.state,
        attempts=record.attempts,
        error=record.error,
        created=utc(record.created) or now(),
        delivered=utc(record.delivered),
        next_try=utc(record.next_try),
    )
