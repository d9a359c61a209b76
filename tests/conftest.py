"""Fixtures: real sample data, and the same cases on a local folder and on a real S3 server, on SQLite and
on a real PostgreSQL server. The servers are started once per session and stopped at the end."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from services import OidcProvider, PostgresServer, S3Server

from cubeport.config import S3Settings
from cubeport.cubes.store import CubeStore
from cubeport.db import Database
from cubeport.storage import Storage

DATA = Path(os.environ.get("CUBEPORT_SAMPLE_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


@pytest.fixture(scope="session")
def data() -> Path:
    """../shared/data (or $CUBEPORT_SAMPLE_DATA); missing data fails the tests loudly instead of skipping them."""
    if not (DATA / "README.md").exists():
        pytest.fail(f"sample data not found at {DATA}: the tests need ../shared/data beside the repository")
    return DATA


@pytest.fixture(scope="session")
def s3_server():
    server = S3Server().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def oidc_provider():
    """A real OIDC provider (npm oauth2-mock-server) that Cubeport trusts in the tests."""
    provider = OidcProvider().start()
    yield provider
    provider.stop()


@pytest.fixture(scope="session")
def untrusted_provider():
    """A second, equally real provider that Cubeport does not trust."""
    provider = OidcProvider().start()
    yield provider
    provider.stop()


@pytest.fixture(scope="session")
def pg_server():
    server = PostgresServer().start()
    yield server
    server.stop()


def s3_storage(server: S3Server, prefix: str | None = None) -> Storage:
    env = server.env(prefix or f"t-{uuid.uuid4().hex[:10]}")
    return Storage(
        env["CUBEPORT_DATA_ROOT"],
        S3Settings(
            endpoint_url=server.endpoint, access_key_id=server.access_key, secret_access_key=server.secret_key
        ),
    )


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def storage(request, tmp_path) -> Storage:
    """A fresh, empty data root: a local folder, then a prefix in the S3 server's bucket."""
    if request.param == "local":
        return Storage(str(tmp_path / "root"))
    return s3_storage(request.getfixturevalue("s3_server"))


@pytest.fixture
def store(storage) -> CubeStore:
    return CubeStore(storage)


@pytest.fixture
def local_store(tmp_path) -> CubeStore:
    return CubeStore(Storage(str(tmp_path / "local-root")))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request, tmp_path) -> Database:
    """A migrated, empty database: SQLite in a temporary folder, then a new PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'cubeport.db'}"
    else:
        url = request.getfixturevalue("pg_server").new_database(f"t_{uuid.uuid4().hex[:12]}")
    db = Database(url)
    db.upgrade()
    yield db
    db.dispose()


@pytest.fixture(scope="module")
def client(context):
    """A TestClient of the app on the test module's own `context` fixture (5xx answered, not raised)."""
    from fastapi.testclient import TestClient

    from cubeport.api.app import create_app

    with TestClient(create_app(context), raise_server_exceptions=False) as client:
        yield client
