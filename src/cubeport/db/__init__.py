"""The database: SQLAlchemy 2 engine and sessions, schema managed by Alembic migrations.

The same code runs on SQLite (the embedded default) and PostgreSQL (for scale).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import overload

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event, inspect
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from cubeport.errors import ConflictError, StorageError

MIGRATIONS = Path(__file__).parent / "migrations"


class Database:
    """An engine, a session factory and the migrations for one database URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        # PostgreSQL sessions in UTC, so times it writes as text (feature GeoJSON) read as the Python side's
        utc = {"options": "-c timezone=UTC"} if url.startswith("postgresql") else {}
        self.engine: Engine = create_engine(url, pool_pre_ping=True, connect_args=utc)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def upgrade(self, revision: str = "head") -> None:
        """Bring the schema to the newest (or the given) migration; idempotent."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        try:
            with self.engine.begin() as connection:
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
        except OperationalError as exc:
            raise StorageError(
                f"database {self.safe_url} unreachable: {str(exc.orig).splitlines()[0]}"
            ) from None

    def revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def tables(self) -> list[str]:
        return sorted(inspect(self.engine).get_table_names())

    @property
    def safe_url(self) -> str:
        """The URL without its password, for messages."""
        return self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on any error. Two requests that create the same
        row at once: the second gets a ConflictError (HTTP 409), not a database error."""
        try:
            with self._sessions() as session, session.begin():
                yield session
        except IntegrityError:
            raise ConflictError(
                "the same record was changed by another request at the same time; try again"
            ) from None

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA case_sensitive_like=ON")  # as in PostgreSQL and CQL2
    cursor.close()
    from cubeport.db.sqlite_spatial import register

    register(dbapi_connection)


@overload
def as_utc(moment: datetime) -> datetime: ...
@overload
def as_utc(moment: None) -> None: ...
@overload
def as_utc(moment: datetime | None) -> datetime | None: ...
def as_utc(moment: datetime | None) -> datetime | None:
    """A stored time as an aware UTC datetime (SQLite returns naive ones; every stored time is UTC)."""
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
