"""Real services for the tests and benchmarks: a SeaweedFS S3 server and a PostgreSQL + PostGIS server.

Each is started in a temporary folder on free loopback ports and stopped afterwards. Credentials are made
up at start; nothing secret lives in the repository.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import s3fs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(check, timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(0.25)
    tail = log.read_text()[-2000:] if log and log.exists() else ""
    raise RuntimeError(f"{what} did not start in {timeout} s: {last}\n{tail}")


def _stop(process: subprocess.Popen | None, folder: Path | None) -> None:
    """End a server's process group (TERM, then KILL after 20 s) and remove its folder."""
    if process and process.poll() is None:
        os.killpg(process.pid, 15)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


def _weed() -> str:
    candidate = Path(sys.executable).parent / "weed"
    return str(candidate) if candidate.exists() else (shutil.which("weed") or "weed")


@dataclass
class S3Server:
    """SeaweedFS with its S3 gateway, which checks request signatures like AWS does."""

    bucket: str = "cubeport-test"
    access_key: str = field(default_factory=lambda: "AK" + secrets.token_hex(8).upper())
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(30))
    port: int = 0
    process: subprocess.Popen | None = None
    folder: Path | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> S3Server:
        self.folder = Path(tempfile.mkdtemp(prefix="cubeport-s3-"))
        config = self.folder / "s3.json"
        config.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "cubeport",
                            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        ports = {name: free_port() for name in ("master", "volume", "filer", "s3")}
        self.port = ports["s3"]
        data = self.folder / "data"
        data.mkdir()
        log = self.folder / "weed.log"
        self.process = subprocess.Popen(
            [
                _weed(),
                "server",
                f"-dir={data}",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                f"-master.port={ports['master']}",
                f"-master.port.grpc={free_port()}",
                f"-volume.port={ports['volume']}",
                f"-volume.port.grpc={free_port()}",
                "-filer",
                f"-filer.port={ports['filer']}",
                f"-filer.port.grpc={free_port()}",
                "-s3",
                f"-s3.port={self.port}",
                f"-s3.port.grpc={free_port()}",
                f"-s3.config={config}",
                f"-s3.port.iceberg={free_port()}",
                f"-s3.port.lance={free_port()}",
                "-master.volumeSizeLimitMB=64",
                "-s3.allowEmptyFolder=false",
                "-volume.max=100",
                "-master.telemetry=false",
            ],
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        fs = self.filesystem()
        _wait(lambda: fs.ls("", refresh=True) is not None, 60, "SeaweedFS S3", log)
        _wait(lambda: fs.mkdir(self.bucket) is None, 60, "S3 bucket", log)
        return self

    def filesystem(self) -> s3fs.S3FileSystem:
        return s3fs.S3FileSystem(
            endpoint_url=self.endpoint,
            key=self.access_key,
            secret=self.secret_key,
            client_kwargs={"region_name": "us-east-1"},
            skip_instance_cache=True,
        )

    def env(self, prefix: str = "") -> dict[str, str]:
        """Cubeport settings (as environment variables) for a data root in this server's bucket."""
        return {
            "CUBEPORT_DATA_ROOT": f"s3://{self.bucket}/{prefix}".rstrip("/"),
            "CUBEPORT_S3__ENDPOINT_URL": self.endpoint,
            "CUBEPORT_S3__ACCESS_KEY_ID": self.access_key,
            "CUBEPORT_S3__SECRET_ACCESS_KEY": self.secret_key,
        }

    def stop(self) -> None:
        _stop(self.process, self.folder)


def _pg_bin() -> Path:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not candidates:
        raise RuntimeError(
            "PostgreSQL server binaries not found: run `make test-deps` (apt postgresql postgis)"
        )
    return candidates[-1].parent


@dataclass
class PostgresServer:
    """A throw-away PostgreSQL cluster (PostGIS available) on a free port, run as the `postgres` user."""

    port: int = 0
    folder: Path | None = None
    database: str = "cubeport"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{self.database}"

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        command = list(args)
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, check=True, capture_output=True, text=True)

    def start(self) -> PostgresServer:
        self.folder = Path(tempfile.mkdtemp(prefix="cubeport-pg-"))
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.folder, user.pw_uid, user.pw_gid)
        self.port = free_port()
        data = self.folder / "data"
        pg = _pg_bin()
        self._run(str(pg / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self._run(
            str(pg / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(self.folder / "pg.log"),
            "-w",
            "-t",
            "60",
            "-o",
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off",
            "start",
        )
        self._run(
            str(pg / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", self.database
        )
        return self

    def new_database(self, name: str) -> str:
        """Create another empty database and return its URL."""
        self._run(
            str(_pg_bin() / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name
        )
        return self.url.rsplit("/", 1)[0] + f"/{name}"

    def stop(self) -> None:
        if self.folder:
            with contextlib.suppress(subprocess.CalledProcessError):
                self._run(
                    str(_pg_bin() / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate", "stop"
                )
            shutil.rmtree(self.folder, ignore_errors=True)


OIDC_DIR = Path(__file__).parent / "oidc"


@dataclass
class OidcProvider:
    """A real OIDC provider (npm oauth2-mock-server, see tests/oidc/provider.mjs) on a free port."""

    port: int = 0
    process: subprocess.Popen | None = None
    folder: Path | None = None

    @property
    def issuer(self) -> str:
        return f"http://localhost:{self.port}"

    def start(self) -> OidcProvider:
        if not (OIDC_DIR / "node_modules" / "oauth2-mock-server").is_dir():
            raise RuntimeError(
                "the test OIDC provider is not installed: run `make test` (npm ci in tests/oidc)"
            )
        self.folder = Path(tempfile.mkdtemp(prefix="cubeport-oidc-"))
        self.port = free_port()
        log = self.folder / "provider.log"
        self.process = subprocess.Popen(
            ["node", str(OIDC_DIR / "provider.mjs"), str(self.port)],
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _wait(lambda: "ready" in log.read_text(), 30, "OIDC provider", log)
        return self

    def token(self, expires_in: int = 3600, **claims: object) -> str:
        """A token signed by this provider, with `claims` on top of iss/iat/exp/nbf."""
        response = httpx.post(f"{self.issuer}/test/token", json={"claims": claims, "expiresIn": expires_in})
        response.raise_for_status()
        return str(response.json()["token"])

    def rotate_key(self) -> str:
        """Publish a new signing key and sign with it from now on; returns its kid."""
        return str(httpx.post(f"{self.issuer}/test/rotate").json()["kid"])

    def sign_in_as(self, **claims: object) -> None:
        """Claims that every token issued through the normal endpoints carries from now on."""
        httpx.post(f"{self.issuer}/test/user", json=claims).raise_for_status()

    def stop(self) -> None:
        _stop(self.process, self.folder)


class AppServer:
    """A Cubeport app served by uvicorn on a free loopback port, in a thread (for real HTTP clients)."""

    def __init__(self, app) -> None:  # type: ignore[no-untyped-def]
        import threading

        import uvicorn

        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        _wait(lambda: self.server.started, 30, "uvicorn")
        self.url = f"http://127.0.0.1:{self.server.config.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


class CubeportProcess:
    """`cubeport serve` on a data root, in its own process (for clients that block the GIL, such as GDAL's
    /vsicurl/ inside rasterio.open, which would deadlock against a server thread in the test process)."""

    def __init__(self, data_root: Path, env: dict[str, str] | None = None) -> None:
        port = free_port()
        self.log = Path(data_root) / "serve.log"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cubeport",
                "serve",
                "--data-root",
                str(data_root),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
        self.url = f"http://127.0.0.1:{port}"
        _wait(
            lambda: httpx.get(f"{self.url}/health", timeout=2).status_code == 200,
            60,
            "cubeport serve",
            self.log,
        )

    def stop(self) -> None:
        _stop(self.process, None)
