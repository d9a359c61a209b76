"""cubeport.ops.remotes against real servers started by the tests: FTP, explicit FTPS and SFTP on loopback
(tests/file_servers.py), S3 on the SeaweedFS server, and a local folder. The same cases run on each;
files are also put on and read from the servers directly (their folders, the S3 bucket), so a test does
not check the module only against itself."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from file_servers import SilentPort
from services import free_port

from cubeport.errors import InputError, StorageError
from cubeport.ops.remotes import CHUNK, Credentials, Remote, RemoteError

KINDS = ["ftp", "ftps", "sftp", pytest.param("s3", marks=pytest.mark.s3), "folder"]


@dataclass
class Case:
    """A remote of one kind in a fresh folder, and the server's own view of that folder."""

    kind: str
    url: str
    credentials: Credentials | None
    put: Callable[[str, bytes], None]  # place a file on the server directly
    stored: Callable[[], list[str]]  # every file below the folder, as the server has it
    server: Any = None
    options: dict[str, Any] = field(default_factory=dict)

    def remote(self, **changes: Any) -> Remote:
        credentials = changes.pop("credentials", self.credentials)
        return Remote(self.url, credentials, **{**self.options, **changes})


def _on_disk(root: Path) -> tuple[Callable[[str, bytes], None], Callable[[], list[str]]]:
    def put(name: str, data: bytes) -> None:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)

    def stored() -> list[str]:
        return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())

    return put, stored


@pytest.fixture(params=KINDS)
def case(request: pytest.FixtureRequest, tmp_path: Path) -> Case:
    kind, folder = request.param, f"t-{uuid.uuid4().hex[:10]}"
    if kind in ("ftp", "ftps", "sftp"):
        server = request.getfixturevalue(f"{kind}_server")
        (server.home / folder).mkdir()
        options: dict[str, Any] = {"timeout": 10}
        if kind == "ftps":
            options["ca_file"] = str(server.ca_file)
        if kind == "sftp":
            options["host_key"] = server.host_key
        credentials = Credentials(server.user, server.password)
        return Case(kind, server.url(folder), credentials, *_on_disk(server.home / folder), server, options)
    if kind == "folder":
        (tmp_path / "remote").mkdir()
        return Case(kind, str(tmp_path / "remote"), None, *_on_disk(tmp_path / "remote"))
    s3 = request.getfixturevalue("s3_server")
    fs, base = s3.filesystem(), f"{s3.bucket}/{folder}"

    def stored() -> list[str]:
        fs.invalidate_cache()
        return sorted(path[len(base) + 1 :] for path in fs.find(base))

    credentials = Credentials(password=s3.secret_key, access_key_id=s3.access_key)
    put = lambda name, data: fs.pipe_file(f"{base}/{name}", data)  # noqa: E731
    return Case(
        kind, f"s3://{base}", credentials, put, stored, s3, {"s3_endpoint": s3.endpoint, "timeout": 10}
    )


def test_upload_list_download(case: Case, tmp_path: Path) -> None:
    data, sidecar = os.urandom(300_000), '{"checksum": "abc"}'
    (tmp_path / "scene.zip").write_bytes(data)
    (tmp_path / "scene.json").write_text(sidecar)
    with case.remote() as remote:
        remote.upload(tmp_path / "scene.zip", "2026/02/ICEYE_a.zip")
        remote.upload(tmp_path / "scene.json", "2026/02/ICEYE_a.json")
        remote.upload(tmp_path / "scene.json", "top.txt")
        # the server holds exactly the three files: no temporary upload name is left behind
        assert case.stored() == ["2026/02/ICEYE_a.json", "2026/02/ICEYE_a.zip", "top.txt"]
        [zipped] = remote.list("*.zip")
        assert (zipped.name, zipped.size) == ("2026/02/ICEYE_a.zip", len(data))
        assert zipped.modified is not None and abs(time.time() - zipped.modified.timestamp()) < 600
        assert [f.name for f in remote.list()] == ["2026/02/ICEYE_a.json", "2026/02/ICEYE_a.zip", "top.txt"]
        assert [f.name for f in remote.list(recursive=False)] == ["top.txt"]
        assert remote.download("2026/02/ICEYE_a.zip", tmp_path / "got" / "a.zip") == len(data)
        assert (tmp_path / "got" / "a.zip").read_bytes() == data
        assert not (tmp_path / "got" / "a.zip.part").exists()
        assert remote.exists("top.txt") and not remote.exists("2026/02/ICEYE_b.zip")
        assert remote.read_text("2026/02/ICEYE_a.json") == sidecar
        with pytest.raises(RemoteError) as too_big:
            remote.read_text("2026/02/ICEYE_a.zip", limit=1000)
        assert too_big.value.reason == "too_large"
        # an upload replaces a file of the same name whole
        (tmp_path / "scene.zip").write_bytes(data[:1000])
        remote.upload(tmp_path / "scene.zip", "2026/02/ICEYE_a.zip")
        remote.download("2026/02/ICEYE_a.zip", tmp_path / "again.zip")
        assert (tmp_path / "again.zip").read_bytes() == data[:1000]
        assert case.stored() == ["2026/02/ICEYE_a.json", "2026/02/ICEYE_a.zip", "top.txt"]


def test_upload_is_never_seen_in_part(case: Case, tmp_path: Path) -> None:
    """While a large upload runs, another connection listing the folder sees the file whole or not at all."""
    data = os.urandom(3 * CHUNK)
    (tmp_path / "big.zip").write_bytes(data)
    seen: list[int] = []
    done = threading.Event()

    def watch() -> None:
        with case.remote() as watcher:
            while not done.is_set():
                seen.extend(f.size for f in watcher.list("*.zip"))

    case.put("marker.txt", b"x")  # the folder exists before the watcher lists it
    thread = threading.Thread(target=watch)
    thread.start()
    try:
        with case.remote() as remote:
            remote.upload(tmp_path / "big.zip", "in/big.zip")
    finally:
        done.set()
        thread.join(30)
    assert all(size == len(data) for size in seen)
    assert case.stored() == ["in/big.zip", "marker.txt"]


def test_download_resumes_from_part(case: Case, tmp_path: Path) -> None:
    data = os.urandom(1_000_003)
    case.put("scene.zip", data)
    target = tmp_path / "scene.zip"
    part = tmp_path / "scene.zip.part"
    part.write_bytes(data[:400_000])
    received: list[int] = []
    with case.remote() as remote:
        assert remote.download("scene.zip", target, progress=received.append) == len(data) - 400_000
        assert sum(received) == len(data) - 400_000
        assert target.read_bytes() == data and not part.exists()
        part.write_bytes(os.urandom(len(data) + 10))  # longer than the file: not a prefix of it
        assert remote.download("scene.zip", target) == len(data)
        assert target.read_bytes() == data


@pytest.mark.parametrize("case", ["ftp", "ftps", "sftp"], indirect=True)
def test_dropped_connection_leaves_a_part_that_the_next_call_completes(case: Case, tmp_path: Path) -> None:
    data = os.urandom(3 * CHUNK)
    case.put("scene.zip", data)
    target = tmp_path / "scene.zip"
    with case.remote() as remote:
        case.server.drop_after = CHUNK + CHUNK // 2
        with pytest.raises(RemoteError) as dropped:
            remote.download("scene.zip", target)
        assert dropped.value.reason == "dropped", dropped.value
        kept = (tmp_path / "scene.zip.part").stat().st_size
        assert 0 < kept <= CHUNK + CHUNK // 2
        assert remote.download("scene.zip", target) == len(data) - kept  # the same Remote reconnects
    assert target.read_bytes() == data


@pytest.mark.parametrize(
    "case", ["ftp", "ftps", "sftp", pytest.param("s3", marks=pytest.mark.s3)], indirect=True
)
def test_wrong_password_is_a_login_error_that_shows_no_secret(case: Case) -> None:
    assert case.credentials is not None and case.credentials.password
    wrong = replace(case.credentials, password="wrong-" + case.credentials.password)
    remote = case.remote(credentials=wrong)
    with pytest.raises(RemoteError) as refused:
        remote.list()
    assert refused.value.reason == "login" and "login" in str(refused.value), refused.value
    for secret in (case.credentials.password, "wrong-" + case.credentials.password):
        for text in (str(refused.value), repr(remote), str(remote), repr(wrong)):
            assert secret not in text


@pytest.mark.parametrize("scheme", ["ftp", "ftps", "sftp", "s3"])
def test_unreachable_server_fails_within_the_timeout(scheme: str) -> None:
    def remote(port: int) -> Remote:
        if scheme == "s3":
            return Remote("s3://bucket/in", timeout=1, s3_endpoint=f"http://127.0.0.1:{port}")
        return Remote(f"{scheme}://127.0.0.1:{port}/in", Credentials("u", "p"), timeout=1)

    with SilentPort() as silent:
        for port, words in ((free_port(), "nothing answers"), (silent.port, "no answer")):
            started = time.monotonic()
            with pytest.raises(RemoteError) as unreachable:
                remote(port).list()
            assert time.monotonic() - started < 3  # the timeout is 1 s
            assert unreachable.value.reason == "unreachable" and words in str(unreachable.value)


def test_missing_file(case: Case, tmp_path: Path) -> None:
    case.put("2026/there.zip", b"x")
    with case.remote() as remote:
        for call in (
            lambda: remote.download("2026/none.zip", tmp_path / "none.zip"),
            lambda: remote.read_text("2026/none.txt"),
        ):
            with pytest.raises(RemoteError) as missing:
                call()
            assert missing.value.reason == "not_found" and "2026/none" in str(missing.value)
        assert not (tmp_path / "none.zip.part").exists()
        assert [f.name for f in remote.list()] == ["2026/there.zip"]  # the connection still works
        with pytest.raises(InputError):
            remote.download("../outside.zip", tmp_path / "x")
    elsewhere = Remote(case.url + "-missing", case.credentials, **case.options)
    if case.kind == "s3":
        assert elsewhere.list() == []  # a prefix without objects is empty, not missing
    else:
        with pytest.raises(RemoteError) as no_folder:
            elsewhere.list()
        assert no_folder.value.reason == "not_found" and "folder" in str(no_folder.value)


@pytest.mark.parametrize("case", ["ftp"], indirect=True)
def test_a_local_disk_error_is_not_the_remote_s(case: Case, tmp_path: Path) -> None:
    case.put("scene.zip", b"x" * 1000)
    (tmp_path / "staging").write_text("a file where the staging folder should be")
    with case.remote() as remote:
        with pytest.raises(StorageError) as local:
            remote.download("scene.zip", tmp_path / "staging" / "scene.zip")
        assert "staging" in str(local.value)
        assert remote.download("scene.zip", tmp_path / "scene.zip") == 1000


def test_ftp_permission_denied(ftp_server: Any, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    remote = Remote(ftp_server.url(), Credentials(ftp_server.reader, ftp_server.reader_password), timeout=10)
    with pytest.raises(RemoteError) as denied:
        remote.upload(tmp_path / "a.txt", f"t-{uuid.uuid4().hex}/a.txt")
    assert denied.value.reason == "permission", denied.value


def test_ftps_certificate_is_verified(ftps_server: Any) -> None:
    credentials = Credentials(ftps_server.user, ftps_server.password)
    with pytest.raises(RemoteError) as untrusted:
        Remote(ftps_server.url(), credentials, timeout=10).list()  # the system CAs do not know the test CA
    assert untrusted.value.reason == "untrusted" and "ca_file" in str(untrusted.value)
    Remote(ftps_server.url(), credentials, timeout=10, ca_file=str(ftps_server.ca_file)).list()


def test_sftp_host_key_and_private_key(sftp_server: Any) -> None:
    import asyncssh

    by_key = Credentials(sftp_server.user, private_key=sftp_server.client_key)
    Remote(sftp_server.url(), by_key, host_key=sftp_server.host_key, timeout=10).list()
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    for host_key in (None, other):  # not in ~/.ssh/known_hosts; a different key pinned
        with pytest.raises(RemoteError) as untrusted:
            Remote(sftp_server.url(), by_key, host_key=host_key, timeout=10).list()
        assert untrusted.value.reason == "untrusted" and "host_key" in str(untrusted.value)
        assert sftp_server.client_key not in str(untrusted.value)


def test_urls() -> None:
    assert Remote("/data/inbox").url == "file:///data/inbox"
    assert Remote("file:///data/inbox/").base == "/data/inbox"
    assert Remote("sftp://host/~/in").url == "sftp://host:22/~/in"
    assert Remote("ftps://host:2121").url == "ftps://host:2121"
    assert Remote("s3://bucket/a/b/").base == "bucket/a/b"
    with pytest.raises(InputError) as password_in_url:
        Remote("ftp://user:s3cret@host/in")
    assert "s3cret" not in str(password_in_url.value)
    with pytest.raises(InputError):
        Remote("http://host/in")
