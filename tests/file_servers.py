"""Real file servers for the tests: FTP and FTPS (pyftpdlib) and SFTP (asyncssh), on loopback.

Each runs in a background thread of the test process with a home folder in a temporary directory and a
user whose password is made up at start. The FTPS server speaks explicit TLS only (AUTH TLS required
before login, PROT P required for data) with a certificate from a CA generated at start (`ca_file`).
Both can drop the next download's connection after a number of bytes (`drop_after`), once, for the
resume tests. `SilentPort` accepts connections and never answers, for the timeout tests.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import logging
import secrets
import shutil
import socket
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def _password() -> str:
    return secrets.token_urlsafe(12)


# -- FTP / FTPS --------------------------------------------------------------------------------------------
class _DroppingData:
    """Mixed into pyftpdlib's data channel: the first download after `server.drop_after` is set sends that
    many bytes, then closes its data connection (the server answers 426), as a broken line would."""

    test_server: FtpServer
    _limit: int | None = None
    _dropped = False

    def use_sendfile(self) -> bool:
        return False  # every byte goes through send(), where the limit is counted

    def send(self, data: bytes) -> int:
        downloading = not self.receive and self.file_obj is not None  # type: ignore[attr-defined]  # not a listing
        if self._limit is None and downloading and self.test_server.drop_after is not None:
            self._limit, self.test_server.drop_after = self.test_server.drop_after, None
        if self._limit is None:
            return int(super().send(data))  # type: ignore[misc]
        if self._dropped:
            return 0
        room = self._limit - self.tot_bytes_sent  # type: ignore[attr-defined]
        sent = int(super().send(data[:room])) if room > 0 else 0  # type: ignore[misc]
        if self.tot_bytes_sent >= self._limit:  # type: ignore[attr-defined]
            self._dropped = True
            self.ioloop.call_later(0, self.handle_close)  # type: ignore[attr-defined]
        return sent


def _certificate(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 and localhost signed by it: (ca, cert, key) PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cubeport test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


@dataclass
class FtpServer:
    """pyftpdlib on a free loopback port: `user` may do everything in `home`, `reader` only list and read."""

    tls: bool = False
    user: str = "provider"
    password: str = field(default_factory=_password)
    reader: str = "reader"
    reader_password: str = field(default_factory=_password)
    port: int = 0
    folder: Path | None = None
    ca_file: Path | None = None
    drop_after: int | None = None  # the next download's data connection closes after this many bytes
    _server: Any = None
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    @property
    def scheme(self) -> str:
        return "ftps" if self.tls else "ftp"

    @property
    def home(self) -> Path:
        assert self.folder is not None
        return self.folder / "home"

    def url(self, path: str = "") -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/{path}"

    def start(self) -> FtpServer:
        from pyftpdlib.authorizers import DummyAuthorizer
        from pyftpdlib.handlers import DTPHandler, FTPHandler
        from pyftpdlib.ioloop import IOLoop
        from pyftpdlib.servers import FTPServer

        # a handler of its own keeps pyftpdlib from installing one on stderr; records still reach pytest
        logger = logging.getLogger("pyftpdlib")
        if not logger.handlers:
            logger.addHandler(logging.NullHandler())
        self.folder = Path(tempfile.mkdtemp(prefix=f"cubeport-{self.scheme}-"))
        self.home.mkdir()
        authorizer = DummyAuthorizer()
        authorizer.add_user(self.user, self.password, str(self.home), perm="elradfmwMT")
        authorizer.add_user(self.reader, self.reader_password, str(self.home), perm="elr")
        control: type = FTPHandler
        data: type = DTPHandler
        options: dict[str, Any] = {}
        if self.tls:
            try:
                from pyftpdlib.handlers import TLS_DTPHandler, TLS_FTPHandler
            except ImportError as exc:
                raise RuntimeError(
                    "the FTPS test server needs pyOpenSSL (the test extra in pyproject.toml): run `make test`"
                ) from exc
            control, data = TLS_FTPHandler, TLS_DTPHandler
            self.ca_file, cert, key = _certificate(self.folder)
            options = {
                "certfile": str(cert),
                "keyfile": str(key),
                "tls_control_required": True,
                "tls_data_required": True,
            }
        dtp = type("DroppingDTPHandler", (_DroppingData, data), {"test_server": self})
        handler = type(
            "TestFTPHandler",
            (control,),
            {
                "authorizer": authorizer,
                "dtp_handler": dtp,
                "banner": "cubeport test server",
                "auth_failed_timeout": 0.1,  # a wrong password is answered after 3 s by default
                **options,
            },
        )
        # an IOLoop of its own: the default one is shared by every server of the process
        self._server = FTPServer(("127.0.0.1", 0), handler, ioloop=IOLoop())
        self.port = int(self._server.address[1])
        self._thread = threading.Thread(target=self._serve, name=f"{self.scheme}-server", daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        while not self._stop.is_set():
            self._server.ioloop.loop(timeout=0.05, blocking=False)
        self._server.close_all()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(10)
        if self.folder:
            shutil.rmtree(self.folder, ignore_errors=True)


# -- SFTP --------------------------------------------------------------------------------------------------
@dataclass
class SftpServer:
    """asyncssh's SSH server with only the SFTP subsystem, rooted at `home` (chroot), in a thread with its
    own event loop. Logins: `user` with `password`, or with the private key `client_key`. `host_key` is
    the server's public key (OpenSSH text) for clients to pin."""

    user: str = "provider"
    password: str = field(default_factory=_password)
    port: int = 0
    folder: Path | None = None
    host_key: str = ""
    client_key: str = ""
    drop_after: int | None = None  # the next read reaching past this offset aborts the connection
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _acceptor: Any = None

    @property
    def home(self) -> Path:
        assert self.folder is not None
        return self.folder / "home"

    def url(self, path: str = "") -> str:
        return f"sftp://127.0.0.1:{self.port}/{path}"

    def start(self) -> SftpServer:
        import asyncssh

        self.folder = Path(tempfile.mkdtemp(prefix="cubeport-sftp-"))
        self.home.mkdir()
        server = self
        host_key = asyncssh.generate_private_key("ssh-ed25519")
        client_key = asyncssh.generate_private_key("ssh-ed25519")
        self.host_key = host_key.export_public_key().decode()
        self.client_key = client_key.export_private_key().decode()

        class Logins(asyncssh.SSHServer):
            def begin_auth(self, username: str) -> bool:
                return True

            def password_auth_supported(self) -> bool:
                return True

            def validate_password(self, username: str, password: str) -> bool:
                return username == server.user and secrets.compare_digest(password, server.password)

        class Files(asyncssh.SFTPServer):
            def __init__(self, chan: Any) -> None:
                super().__init__(chan, chroot=str(server.home).encode())

            def read(self, file_obj: Any, offset: int, size: int) -> Any:
                limit = server.drop_after
                if limit is not None and offset + size > limit:
                    server.drop_after = None
                    self.connection.abort()
                    raise asyncssh.SFTPFailure("connection dropped by the test")
                return super().read(file_obj, offset, size)

        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="sftp-server", daemon=True)
        self._thread.start()

        async def listen() -> Any:
            return await asyncssh.listen(
                "127.0.0.1",
                0,
                server_host_keys=[host_key],
                server_factory=Logins,
                sftp_factory=Files,
                authorized_client_keys=asyncssh.import_authorized_keys(
                    client_key.export_public_key().decode()
                ),
                allow_scp=False,
            )

        self._acceptor = asyncio.run_coroutine_threadsafe(listen(), self._loop).result(30)
        self.port = int(self._acceptor.get_port())
        return self

    def stop(self) -> None:
        if self._loop and self._acceptor:

            async def close() -> None:
                self._acceptor.close()
                await self._acceptor.wait_closed()
                sessions = asyncio.all_tasks() - {asyncio.current_task()}  # connections still open
                for task in sessions:
                    task.cancel()
                await asyncio.gather(*sessions, return_exceptions=True)

            asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(10)
        if self._loop and not self._loop.is_running():
            self._loop.close()
        if self.folder:
            shutil.rmtree(self.folder, ignore_errors=True)


class SilentPort:
    """A loopback port that accepts TCP connections (the kernel's backlog) and never says a word."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(16)
        self.port = int(self.socket.getsockname()[1])

    def __enter__(self) -> SilentPort:
        return self

    def __exit__(self, *exc: object) -> None:
        self.socket.close()
