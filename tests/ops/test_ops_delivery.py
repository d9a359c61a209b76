"""Delivery to downstream portals on real servers: folder, FTP, SFTP (host key pinned), S3 (SeaweedFS) and an
HTTP POST hook served on loopback by the test. A product is delivered once per content; a target that is
down keeps the delivery pending with its error and a growing backoff, delivers it once back, and gives up
after MAX_ATTEMPTS; redirects are not followed; each target gets only its product types."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from services import free_port

from cubeport.db import Database
from cubeport.ops.delivery import FIRST_BACKOFF, LONGEST_BACKOFF, MAX_ATTEMPTS
from cubeport.ops.remotes import Credentials
from cubeport.ops.runs import now
from cubeport.ops.service import Operations

SECRET = b"delivery tests: the server's secret"
TOKEN = "ibnet-hook-token"
TARGETS = ["folder", "ftp", "sftp", pytest.param("s3", marks=pytest.mark.s3)]


@dataclass
class Place:
    """A fresh folder on one kind of server, as a target reaches it and as the portal sees it (`stored`)."""

    kind: str
    url: str
    stored: Callable[[], dict[str, bytes]]  # every file below the folder and its bytes
    credentials: Credentials | None = None
    host_key: str | None = None
    s3_endpoint: str | None = None


def _on_disk(root: Path) -> Callable[[], dict[str, bytes]]:
    root.mkdir(parents=True, exist_ok=True)
    return lambda: {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture(params=TARGETS)
def place(request: pytest.FixtureRequest, tmp_path: Path) -> Place:
    kind, folder = request.param, f"d-{uuid.uuid4().hex[:10]}"
    if kind == "folder":
        return Place(kind, str(tmp_path / "portal"), _on_disk(tmp_path / "portal"))
    if kind in ("ftp", "sftp"):
        server = request.getfixturevalue(f"{kind}_server")
        stored = _on_disk(server.home / folder)
        credentials = Credentials(server.user, server.password)
        return Place(
            kind, server.url(folder), stored, credentials, server.host_key if kind == "sftp" else None
        )
    s3 = request.getfixturevalue("s3_server")
    fs, base = s3.filesystem(), f"{s3.bucket}/{folder}"

    def in_bucket() -> dict[str, bytes]:
        fs.invalidate_cache()
        return {path[len(base) + 1 :]: fs.cat_file(path) for path in fs.find(base)}

    credentials = Credentials(password=s3.secret_key, access_key_id=s3.access_key)
    return Place(kind, f"s3://{base}", in_bucket, credentials, s3_endpoint=s3.endpoint)


@pytest.fixture
def operations(tmp_path: Path) -> Iterator[Callable[..., Operations]]:
    """Operations on one SQLite database in tmp_path; calling it again is another process's view."""
    made: list[Database] = []

    def create(secret: bytes = SECRET, **options: Any) -> Operations:
        db = Database(f"sqlite:///{tmp_path / 'ops.db'}")
        db.upgrade()
        made.append(db)
        return Operations.create(db, secret, tmp_path / "ops", **{"timeout": 5, **options})

    yield create
    for db in made:
        db.dispose()


@dataclass
class Hook:
    """A portal's HTTP hook on loopback: records every request (path, headers, body) and answers each path
    with the next of its status codes (200 once they run out); `/moved` redirects to `/ok`."""

    port: int = 0
    answers: dict[str, list[int]] = field(default_factory=dict)
    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> Hook:
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hook.received.append((self.path, dict(self.headers.items()), body))
                queued = hook.answers.get(self.path, [])
                status = queued.pop(0) if queued else 200
                self.send_response(status)
                if status in (301, 302, 307, 308):
                    self.send_header("Location", "/ok")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = int(self._server.server_address[1])
        threading.Thread(target=self._server.serve_forever, name="hook", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def bodies(self, path: str) -> list[bytes]:
        return [body for at, _, body in self.received if at == path]


@pytest.fixture
def hook() -> Iterator[Hook]:
    server = Hook().start()
    yield server
    server.stop()


def _product(folder: Path, name: str, data: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    return folder / name


def test_a_product_is_delivered_once_per_content(
    place: Place, operations: Callable[..., Operations], tmp_path: Path
) -> None:
    ops = operations(s3_endpoint=place.s3_endpoint)
    ops.deliveries.add_target("portal", place.url, ["*.gpkg"], place.credentials, host_key=place.host_key)
    data = os.urandom(150_000)
    chart = _product(tmp_path / "out", "20260214_chart.gpkg", data)
    [first] = ops.deliveries.offer([chart])
    assert ops.deliveries.offer([chart]) == []  # offered twice: one delivery
    [done] = ops.deliveries.push_due()
    assert done.id == first and (done.state, done.attempts, done.error) == ("delivered", 1, "")
    assert done.checksum == hashlib.sha256(data).hexdigest() and done.size == len(data)
    assert done.delivered is not None and done.latency is not None and done.latency >= 0
    assert place.stored() == {"20260214_chart.gpkg": data}
    assert ops.deliveries.push_due(now() + dt.timedelta(days=1)) == []  # nothing left to push
    assert ops.deliveries.offer([chart]) == []  # nor to offer again, in another process either
    assert operations(s3_endpoint=place.s3_endpoint).deliveries.offer([chart]) == []

    chart.write_bytes(data[:1000])  # reprocessed: a new delivery, replacing the portal's copy
    [second] = ops.deliveries.offer([chart])
    [again] = ops.deliveries.push_due()
    assert again.id == second != first and again.state == "delivered"
    assert place.stored() == {"20260214_chart.gpkg": data[:1000]}
    shown = [(d["product"], d["state"], d["sha256"]) for d in ops.status()["deliveries"]]
    assert shown == [
        ("20260214_chart.gpkg", "delivered", hashlib.sha256(data[:1000]).hexdigest()),
        ("20260214_chart.gpkg", "delivered", hashlib.sha256(data).hexdigest()),
    ]


def test_the_http_hook(hook: Hook, operations: Callable[..., Operations], tmp_path: Path) -> None:
    ops = operations()
    for name, path in (("ibnet", "/ok"), ("moved", "/moved"), ("flaky", "/flaky")):
        ops.deliveries.add_target(name, hook.url(path), [f"*_{name}.gpkg"], Credentials(password=TOKEN))
    hook.answers = {"/moved": [302, 302], "/flaky": [500]}
    data = os.urandom(70_000)
    products = [_product(tmp_path / "out", f"a_{name}.gpkg", data) for name in ("ibnet", "moved", "flaky")]
    assert len(ops.deliveries.offer(products)) == 3
    pushed = {d.target: d for d in ops.deliveries.push_due()}

    assert pushed["ibnet"].state == "delivered"
    [(path, headers, body)] = [r for r in hook.received if r[0] == "/ok"]
    assert body == data
    headers = {k.lower(): v for k, v in headers.items()}
    assert headers["authorization"] == f"Bearer {TOKEN}"
    assert headers["x-cubeport-sha256"] == hashlib.sha256(data).hexdigest()
    assert headers["x-cubeport-product"] == "a_ibnet.gpkg"
    assert headers["content-type"] == "application/octet-stream"

    # a redirect is not followed (the token is for that URL only): a failed attempt
    moved = pushed["moved"]
    assert (moved.state, moved.attempts) == ("pending", 1) and "302" in moved.error
    assert len(hook.bodies("/moved")) == 1 and len(hook.bodies("/ok")) == 1
    # 500, then 200: retried after the backoff and delivered
    flaky = pushed["flaky"]
    assert (flaky.state, flaky.attempts) == ("pending", 1) and "500" in flaky.error
    later = {d.target: d for d in ops.deliveries.push_due(now() + dt.timedelta(seconds=FIRST_BACKOFF + 1))}
    assert (later["flaky"].state, later["flaky"].attempts, later["flaky"].error) == ("delivered", 2, "")
    assert hook.bodies("/flaky") == [data, data]
    assert later["moved"].state == "pending" and later["moved"].attempts == 2
    assert len(hook.bodies("/ok")) == 1  # still not followed


def test_a_target_that_is_down_is_retried_with_backoff_until_it_is_back(
    operations: Callable[..., Operations], tmp_path: Path
) -> None:
    ops = operations()
    port = free_port()  # nothing listens there yet
    ops.deliveries.add_target(
        "portal", f"http://127.0.0.1:{port}/in", ["*.gpkg"], Credentials(password=TOKEN)
    )
    data = os.urandom(10_000)
    ops.deliveries.offer([_product(tmp_path / "out", "c.gpkg", data)])
    [down] = ops.deliveries.push_due()
    assert (down.state, down.attempts) == ("pending", 1) and "refused" in down.error.lower()
    assert down.next_try is not None
    assert FIRST_BACKOFF - 5 < (down.next_try - now()).total_seconds() <= FIRST_BACKOFF
    [shown] = ops.status()["deliveries"]
    assert (shown["state"], shown["attempts"], shown["error"]) == ("pending", 1, down.error)
    assert ops.deliveries.push_due() == []  # not due before its next try

    [still] = ops.deliveries.push_due(now() + dt.timedelta(seconds=FIRST_BACKOFF + 1))
    assert (still.state, still.attempts) == ("pending", 2)
    assert still.next_try is not None and still.next_try - down.next_try > dt.timedelta(
        seconds=FIRST_BACKOFF - 5
    )

    back = Hook(port=port).start()  # the portal is back
    try:
        [done] = ops.deliveries.push_due(now() + dt.timedelta(seconds=2 * FIRST_BACKOFF + 1))
        assert (done.state, done.attempts, done.error, done.next_try) == ("delivered", 3, "", None)
        assert back.bodies("/in") == [data]
        assert ops.deliveries.push_due(now() + dt.timedelta(days=1)) == []
        assert back.bodies("/in") == [data]  # delivered once
    finally:
        back.stop()


def test_a_delivery_fails_for_good_after_max_attempts(
    operations: Callable[..., Operations], tmp_path: Path
) -> None:
    ops = operations()
    ops.deliveries.add_target(
        "portal", f"sftp://127.0.0.1:{free_port()}/in", ["*.gpkg"], Credentials("ibnet", "password")
    )
    ops.deliveries.offer([_product(tmp_path / "out", "c.gpkg", b"c" * 100)])
    waits = []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        when = now()
        [tried] = ops.deliveries.push_due(when + dt.timedelta(hours=2))
        assert tried.attempts == attempt and "nothing answers" in tried.error
        assert tried.state == ("failed" if attempt == MAX_ATTEMPTS else "pending")
        assert tried.next_try is not None
        waits.append((tried.next_try - when).total_seconds())
    expected = [min(FIRST_BACKOFF * 2**n, LONGEST_BACKOFF) for n in range(MAX_ATTEMPTS)]  # 30 s doubling
    assert all(abs(wait - e) < 5 for wait, e in zip(waits, expected, strict=True)), waits
    assert ops.deliveries.push_due(now() + dt.timedelta(days=30)) == []  # given up
    assert ops.status()["deliveries"][0]["state"] == "failed"


def test_each_target_gets_only_its_product_types(
    operations: Callable[..., Operations], tmp_path: Path
) -> None:
    ops = operations()
    charts, grids = _on_disk(tmp_path / "charts"), _on_disk(tmp_path / "grids")
    ops.deliveries.add_target("charts", str(tmp_path / "charts"), ["*_chart.gpkg", "*_chart.png"])
    ops.deliveries.add_target("grids", str(tmp_path / "grids"), ["*.tif"])
    out = tmp_path / "out"
    files = [
        _product(out, name, name.encode())
        for name in ("a_chart.gpkg", "a_chart.png", "a_sic.tif", "a_drift.gpkg", "notes.txt")
    ]
    assert len(ops.deliveries.offer(files)) == 3
    assert {d.state for d in ops.deliveries.push_due()} == {"delivered"}
    assert charts() == {"a_chart.gpkg": b"a_chart.gpkg", "a_chart.png": b"a_chart.png"}
    assert grids() == {"a_sic.tif": b"a_sic.tif"}


def test_unreadable_credentials_fail_one_delivery_not_the_round(
    operations: Callable[..., Operations], sftp_server: Any, tmp_path: Path
) -> None:
    """A server secret that changed: the target's stored password cannot be read; its delivery fails with
    the reason, and the other target's delivery goes on."""
    before = operations()
    before.deliveries.add_target(
        "sealed",
        sftp_server.url("in"),
        ["*.gpkg"],
        Credentials(sftp_server.user, sftp_server.password),
        host_key=sftp_server.host_key,
    )
    before.deliveries.add_target("open", str(tmp_path / "portal"), ["*.gpkg"])
    ops = operations(secret=b"another secret")
    shown = {t["name"]: t["credentials"] for t in ops.status()["targets"]}
    assert shown == {"open": [], "sealed": ["(unreadable)"]}
    assert len(ops.deliveries.offer([_product(tmp_path / "out", "c.gpkg", b"c")])) == 2
    pushed = {d.target: d for d in ops.deliveries.push_due()}
    assert pushed["open"].state == "delivered"
    assert pushed["sealed"].state == "pending" and "secret" in pushed["sealed"].error


def test_a_newer_version_is_never_overwritten_by_an_older_one(
    operations: Callable[..., Operations], tmp_path: Path
) -> None:
    """The same product from two runs while the portal is down: the older one, further into its backoff,
    must not land after the newer one (it is superseded, with the reason)."""
    ops = operations()
    port = free_port()
    ops.deliveries.add_target("portal", f"http://127.0.0.1:{port}/in", ["*.gpkg"])
    [old] = ops.deliveries.offer([_product(tmp_path / "run1", "c.gpkg", b"old chart")])
    ops.deliveries.push_due()
    ops.deliveries.push_due(now() + dt.timedelta(seconds=FIRST_BACKOFF + 1))  # now 60 s until its next try
    [new] = ops.deliveries.offer([_product(tmp_path / "run2", "c.gpkg", b"new chart")])
    back = Hook(port=port).start()
    try:
        [delivered] = ops.deliveries.push_due()
        assert (delivered.id, delivered.state) == (new, "delivered")
        assert ops.deliveries.push_due(now() + dt.timedelta(days=1)) == []
        assert back.bodies("/in") == [b"new chart"]
    finally:
        back.stop()
    superseded = ops.deliveries.delivery(old)
    assert superseded.state == "failed" and f"superseded by delivery {new}" in superseded.error
