"""Fixtures of the operations tests: real FTP, FTPS and SFTP servers on loopback (tests/file_servers.py),
started once per session; each test works in a fresh folder below the server's home (see test_remotes)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from file_servers import FtpServer, SftpServer


@pytest.fixture(scope="session")
def ftp_server() -> Iterator[FtpServer]:
    server = FtpServer(tls=False).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def ftps_server() -> Iterator[FtpServer]:
    """Explicit FTPS: AUTH TLS before login, PROT P for data, a certificate from the server's own CA."""
    server = FtpServer(tls=True).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sftp_server() -> Iterator[SftpServer]:
    server = SftpServer().start()
    yield server
    server.stop()
