"""Tables of the platform. Later capabilities add their own models here and a migration beside them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    pass


class CubeRecord(Base):
    """A cube in the catalogue: what users see of it, editable without rewriting its data."""

    __tablename__ = "cubes"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    title: Mapped[str] = mapped_column(String(256))
    description: Mapped[str] = mapped_column(Text, default="")
    crs: Mapped[str] = mapped_column(Text)
    west: Mapped[float] = mapped_column(Float)
    south: Mapped[float] = mapped_column(Float)
    east: Mapped[float] = mapped_column(Float)
    north: Mapped[float] = mapped_column(Float)
    time_start: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    time_end: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    time_steps: Mapped[int] = mapped_column(default=0)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    themes: Mapped[list[str]] = mapped_column(JSON, default=list)
    attrs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now, onupdate=_now)

    variables: Mapped[list[CubeVariableRecord]] = relationship(
        back_populates="cube", cascade="all, delete-orphan", order_by="CubeVariableRecord.name"
    )


class CubeVariableRecord(Base):
    """A variable of a cube with its style (colour map and value range)."""

    __tablename__ = "cube_variables"

    cube_id: Mapped[str] = mapped_column(ForeignKey("cubes.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    dtype: Mapped[str] = mapped_column(String(32))
    units: Mapped[str | None] = mapped_column(String(64))
    long_name: Mapped[str | None] = mapped_column(String(256))
    colormap: Mapped[str] = mapped_column(String(64), default="viridis")
    vmin: Mapped[float] = mapped_column(Float, default=0.0)
    vmax: Mapped[float] = mapped_column(Float, default=1.0)
    norm: Mapped[str] = mapped_column(String(8), default="lin")  # lin | log | cat

    cube: Mapped[CubeRecord] = relationship(back_populates="variables")


# Identity and access (migration 0002). Users and groups are referred to by name: names never change.


class UserRecord(Base):
    """A person or robot account: local (argon2 password hash) or from an OIDC provider (no password)."""

    __tablename__ = "users"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    role: Mapped[str] = mapped_column(String(16), default="viewer")  # viewer | editor | admin
    password_hash: Mapped[str | None] = mapped_column(String(256))
    provider: Mapped[str] = mapped_column(String(64), default="local")  # local | an OIDC provider's name
    subject: Mapped[str | None] = mapped_column(String(256))  # the provider's `sub`
    external_groups: Mapped[list[str]] = mapped_column(
        JSON, default=list
    )  # from the provider at last sign-in
    display_name: Mapped[str | None] = mapped_column(String(256))
    email: Mapped[str | None] = mapped_column(String(256))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    last_login: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class GroupRecord(Base):
    """A group of users; a project is a group that owns resources (as DestinE projects do)."""

    __tablename__ = "groups"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default="group")  # group | project
    title: Mapped[str] = mapped_column(String(256), default="")
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)


class MembershipRecord(Base):
    __tablename__ = "memberships"

    group_name: Mapped[str] = mapped_column(ForeignKey("groups.name", ondelete="CASCADE"), primary_key=True)
    user_name: Mapped[str] = mapped_column(ForeignKey("users.name", ondelete="CASCADE"), primary_key=True)


class ApiKeyRecord(Base):
    """An API key: only its SHA-256 is stored; the key itself is shown once, at creation."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # public part of the key
    owner: Mapped[str] = mapped_column(ForeignKey("users.name", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(128), default="")
    secret_hash: Mapped[str] = mapped_column(String(64))
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    expires: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    revoked: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_used: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class SessionRecord(Base):
    """A browser session: the cookie holds a random token, the database only its SHA-256."""

    __tablename__ = "sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_name: Mapped[str] = mapped_column(String(128), index=True)
    principal: Mapped[dict[str, Any]] = mapped_column(JSON)  # who signed in, with roles and groups
    csrf_token: Mapped[str] = mapped_column(String(64))
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    expires: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)


class LoginStateRecord(Base):
    """An OIDC sign-in under way: the state, PKCE verifier and nonce until the provider calls back."""

    __tablename__ = "login_states"

    state: Mapped[str] = mapped_column(String(64), primary_key=True)
    provider: Mapped[str] = mapped_column(String(64))
    code_verifier: Mapped[str] = mapped_column(String(128))
    nonce: Mapped[str] = mapped_column(String(64))
    next_url: Mapped[str] = mapped_column(Text, default="/")
    expires: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class ResourceAccessRecord(Base):
    """Whether a resource (cube, collection, process, service) is public; without a row it follows the default."""

    __tablename__ = "resource_access"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    resource_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    public: Mapped[bool] = mapped_column(Boolean)
    owner: Mapped[str | None] = mapped_column(String(128))  # a project (group) that owns the resource


class GrantRecord(Base):
    """Read or write permission on a resource for a group (or project) or a single user."""

    __tablename__ = "grants"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    resource_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    subject_type: Mapped[str] = mapped_column(String(8), primary_key=True)  # group | user
    subject: Mapped[str] = mapped_column(String(128), primary_key=True)
    permission: Mapped[str] = mapped_column(String(8), default="read")  # read | write


class AuditRecord(Base):
    """One security-relevant event: sign-ins, failures, keys, access to restricted resources."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_event_time", "event", "time"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    time: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now, index=True)
    event: Mapped[str] = mapped_column(String(32))
    user_name: Mapped[str | None] = mapped_column(String(128), index=True)
    address: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str | None] = mapped_column(String(16))
    resource_id: Mapped[str | None] = mapped_column(String(256))
    detail: Mapped[str] = mapped_column(Text, default="")


# Data access (migration 0005): STAC items of ingested products and the remote STAC APIs searched with ours.


class StacItemRecord(Base):
    """An ingested product as a STAC item of its cube's collection; its files are kept beside the cube."""

    __tablename__ = "stac_items"
    __table_args__ = (Index("ix_stac_items_time", "collection", "datetime"),)

    collection: Mapped[str] = mapped_column(String(128), primary_key=True)  # the cube id
    id: Mapped[str] = mapped_column(String(256), primary_key=True)
    datetime: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    west: Mapped[float] = mapped_column(Float)
    south: Mapped[float] = mapped_column(Float)
    east: Mapped[float] = mapped_column(Float)
    north: Mapped[float] = mapped_column(Float)
    item: Mapped[dict[str, Any]] = mapped_column(
        JSON
    )  # the STAC item without links; asset hrefs are store keys
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)


class StacSourceRecord(Base):
    """A remote STAC API searched beside the local one, with the headers (credentials) sent to it."""

    __tablename__ = "stac_sources"

    name: Mapped[str] = mapped_column(String(48), primary_key=True)
    url: Mapped[str] = mapped_column(String(1024))
    title: Mapped[str] = mapped_column(String(256), default="")
    headers: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    timeout_seconds: Mapped[float] = mapped_column(Float, default=10.0)
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)


# Rolling cache (migration 0006): what the cache holds of remote data, and its counters.


class CacheEntryRecord(Base):
    """A remote object (or a byte range of one) in the rolling cache; its bytes sit in the cache's storage."""

    __tablename__ = "cache_entries"
    __table_args__ = (Index("ix_cache_entries_lru", "pinned", "last_used"),)

    key: Mapped[str] = mapped_column(String(2048), primary_key=True)  # the URL, with #bytes=a-b for a range
    url: Mapped[str] = mapped_column(String(2048))
    range_start: Mapped[int | None] = mapped_column(BigInteger)
    range_end: Mapped[int | None] = mapped_column(BigInteger)  # exclusive, as in Python slices
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    created: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=_now
    )  # TTL counts from here
    last_used: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    hits: Mapped[int] = mapped_column(BigInteger, default=0)


class CacheCounterRecord(Base):
    """One counter of the rolling cache (hits, misses, bytes_fetched, bytes_served, evictions), shared by
    every process that uses the same database."""

    __tablename__ = "cache_counters"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class JobRecord(Base):
    """A processing job: what ran, for whom, how it went, and what it consumed (read by accounting)."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    process_id: Mapped[str] = mapped_column(String(64))
    process_version: Mapped[str] = mapped_column(String(32))
    owner: Mapped[str] = mapped_column(String(128), index=True)
    status: Mapped[str] = mapped_column(
        String(16), index=True
    )  # accepted running successful failed dismissed
    message: Mapped[str] = mapped_column(Text, default="")
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    results: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    started: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    finished: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    updated: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    heartbeat: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    runner: Mapped[str] = mapped_column(String(256), default="")  # which executor runs it, and where
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    retry_safe: Mapped[bool] = mapped_column(Boolean, default=False)
    dismiss_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    cpu_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    wall_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    peak_memory_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_read: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_written: Mapped[int] = mapped_column(BigInteger, default=0)


class JobStepRecord(Base):
    """One step of a job (scheduling, fetching, processing, ingesting) with its own state and times."""

    __tablename__ = "job_steps"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="waiting")  # waiting running successful failed
    progress: Mapped[int] = mapped_column(Integer, default=0)
    started: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    finished: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    message: Mapped[str] = mapped_column(Text, default="")


class JobLogRecord(Base):
    """A line of a job's log, in order of `id` (what `GET /jobs/{id}/logs` follows)."""

    __tablename__ = "job_logs"
    __table_args__ = (Index("ix_job_logs_job", "job_id", "id"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    time: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    text: Mapped[str] = mapped_column(Text)


# -- near-real-time operations (cubeport.ops) -------------------------------------------------------------
class OpsSuiteRecord(Base):
    """A suite's definition (YAML) and its schedule."""

    __tablename__ = "ops_suites"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    definition: Mapped[str] = mapped_column(Text)
    suspended: Mapped[bool] = mapped_column(Boolean, default=False)
    next_run: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    updated: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)


class OpsRunRecord(Base):
    """One run of a suite (scheduled, started by a watcher's file or by an operator), with its variables."""

    __tablename__ = "ops_runs"
    __table_args__ = (Index("ix_ops_runs_suite", "suite", "created"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    suite: Mapped[str] = mapped_column(ForeignKey("ops_suites.name", ondelete="CASCADE"))
    variables: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    cause: Mapped[str] = mapped_column(String(256), default="")
    state: Mapped[str] = mapped_column(String(16))
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    finished: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class OpsNodeRecord(Base):
    """A node of a run: its ecFlow state, the suspended flag, and the current try of a task."""

    __tablename__ = "ops_nodes"

    run_id: Mapped[str] = mapped_column(ForeignKey("ops_runs.id", ondelete="CASCADE"), primary_key=True)
    path: Mapped[str] = mapped_column(String(512), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    suspended: Mapped[bool] = mapped_column(Boolean, default=False)
    run_now: Mapped[bool] = mapped_column(Boolean, default=False)
    try_no: Mapped[int] = mapped_column(Integer, default=0)
    pid: Mapped[int | None] = mapped_column(Integer)
    started: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    ended: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str] = mapped_column(Text, default="")


class OpsWatcherRecord(Base):
    """Where a watcher looks, how often, which suite its files start, and how its last look went."""

    __tablename__ = "ops_watchers"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    include: Mapped[str] = mapped_column(String(256))
    marker: Mapped[str | None] = mapped_column(String(256))
    interval_seconds: Mapped[float] = mapped_column(Float)
    suite: Mapped[str] = mapped_column(String(64))
    credentials: Mapped[str] = mapped_column(Text, default="")  # encrypted with the server's secret
    host_key: Mapped[str] = mapped_column(Text, default="")  # an SFTP server's public key (OpenSSH text)
    paused_reason: Mapped[str] = mapped_column(Text, default="")
    last_look: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    next_look: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_file: Mapped[str] = mapped_column(Text, default="")
    last_error: Mapped[str] = mapped_column(Text, default="")
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)


class OpsPendingRecord(Base):
    """A file a watcher has seen once: delivered only when its size is the same at the next look."""

    __tablename__ = "ops_pending"

    watcher: Mapped[str] = mapped_column(
        ForeignKey("ops_watchers.name", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(1024), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    seen: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)


class OpsFileRecord(Base):
    """A delivered file, recorded once by name and size: seen again, it is not processed twice."""

    __tablename__ = "ops_files"

    watcher: Mapped[str] = mapped_column(
        ForeignKey("ops_watchers.name", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(1024), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    run_id: Mapped[str | None] = mapped_column(String(36))
    recorded: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)


class OpsTargetRecord(Base):
    """A downstream portal that products of some types are delivered to."""

    __tablename__ = "ops_targets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    products: Mapped[list[str]] = mapped_column(JSON, default=list)  # file-name patterns
    credentials: Mapped[str] = mapped_column(Text, default="")  # encrypted with the server's secret
    host_key: Mapped[str] = mapped_column(Text, default="")  # an SFTP server's public key (OpenSSH text)
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)


class OpsDeliveryRecord(Base):
    """A product to a target: delivered once (target, product, checksum), retried with backoff until then."""

    __tablename__ = "ops_deliveries"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    target: Mapped[str] = mapped_column(ForeignKey("ops_targets.name", ondelete="CASCADE"))
    product: Mapped[str] = mapped_column(String(1024))
    path: Mapped[str] = mapped_column(Text)
    checksum: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(16))  # pending delivered failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_try: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str] = mapped_column(Text, default="")
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    delivered: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class OpsLeaseRecord(Base):
    """Who may act (the runner's lease): a second runner started at once waits until it expires."""

    __tablename__ = "ops_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(256))
    expires: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class NewsRecord(Base):
    """A news item admins posted: shown on the landing page and in the Atom feed (platform/news.py)."""

    __tablename__ = "news"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    author: Mapped[str] = mapped_column(String(128))
    links: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)  # [{href, title}]
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now, index=True)
    updated: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
