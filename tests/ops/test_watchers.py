"""Watchers on real servers (FTP and SFTP on loopback, S3 on SeaweedFS, a folder): a delivery is handed to a
suite once its size is stable (or its marker is there), once only, across restarts; `fetch` downloads it to
the staging area (resuming a dropped transfer), checks it and links it into the run's folder; the faults of
issue 22 (corrupt, vanished, oversized deliveries, a full staging area, a wrong password, a server that is
not there, two runners) are refused cleanly, recorded, and never stop the other watchers."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from services import free_port

from cubeport.db import Database
from cubeport.errors import InputError, StorageError
from cubeport.ops.remotes import CHUNK, Credentials, RemoteError
from cubeport.ops.runs import now
from cubeport.ops.service import Operations
from cubeport.ops.suites import NodeState

SECRET = b"watcher tests: the server's secret"
SUITE = f"""
suite: got
nodes:
  - task: noop
    command: "{sys.executable} -c pass"
"""
SOURCES = ["folder", "ftp", "sftp", pytest.param("s3", marks=pytest.mark.s3)]


@dataclass
class Source:
    """A fresh folder on one kind of server, as a watcher sees it (URL, credentials) and as the provider
    fills it (`put`, `remove`: straight into the server's folder or bucket)."""

    kind: str
    url: str
    put: Callable[[str, bytes], None]
    remove: Callable[[str], None]
    credentials: Credentials | None = None
    host_key: str | None = None
    server: Any = None
    s3_endpoint: str | None = None


def _on_disk(root: Path) -> tuple[Callable[[str, bytes], None], Callable[[str], None]]:
    root.mkdir(parents=True, exist_ok=True)

    def put(name: str, data: bytes) -> None:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)

    return put, lambda name: (root / name).unlink()


@pytest.fixture(params=SOURCES)
def source(request: pytest.FixtureRequest, tmp_path: Path) -> Source:
    kind, folder = request.param, f"w-{uuid.uuid4().hex[:10]}"
    if kind == "folder":
        return Source(kind, str(tmp_path / "inbox"), *_on_disk(tmp_path / "inbox"))
    if kind in ("ftp", "sftp"):
        server = request.getfixturevalue(f"{kind}_server")
        put, remove = _on_disk(server.home / folder)
        host_key = server.host_key if kind == "sftp" else None
        credentials = Credentials(server.user, server.password)
        return Source(kind, server.url(folder), put, remove, credentials, host_key, server)
    s3 = request.getfixturevalue("s3_server")
    fs, base = s3.filesystem(), f"{s3.bucket}/{folder}"
    return Source(
        kind,
        f"s3://{base}",
        lambda name, data: fs.pipe_file(f"{base}/{name}", data),
        lambda name: fs.rm_file(f"{base}/{name}"),
        Credentials(password=s3.secret_key, access_key_id=s3.access_key),
        server=s3,
        s3_endpoint=s3.endpoint,
    )


@pytest.fixture
def operations(tmp_path: Path) -> Iterator[Callable[..., Operations]]:
    """Operations on one SQLite database in tmp_path; calling it again is a restart (a new process's view)."""
    made: list[Database] = []

    def create(**options: Any) -> Operations:
        db = Database(f"sqlite:///{tmp_path / 'ops.db'}")
        db.upgrade()
        made.append(db)
        options = {"timeout": 10, "min_free_bytes": 0, "poll_seconds": 0.1, **options}
        ops = Operations.create(db, SECRET, tmp_path / "ops", **options)
        ops.runs.save_suite(SUITE)
        return ops

    yield create
    for db in made:
        db.dispose()


def _watch(ops: Operations, source: Source, name: str = "inbox", **options: Any) -> None:
    options = {"include": "*.zip", "interval_seconds": 60, **options}
    ops.watchers.add(
        name, source.url, "got", credentials=source.credentials, host_key=source.host_key, **options
    )


def _handed(ops: Operations) -> list[tuple[str, str]]:
    """(file, size) of every run the watchers started, oldest first."""
    return sorted((r.variables["FILE"], r.variables["SIZE"]) for r in ops.runs.runs("got", limit=1000))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_delivery_is_handed_once_when_its_size_is_stable(
    source: Source, operations: Callable[..., Operations]
) -> None:
    ops = operations(s3_endpoint=source.s3_endpoint)
    _watch(ops, source, marker=".done")

    def look() -> list[str]:
        return ops.watchers.look("inbox")

    data = os.urandom(50_000)
    source.put("2026/a.zip", data)
    source.put("notes.txt", b"not a delivery: the include pattern is *.zip")
    assert look() == []  # seen once: pending
    assert look() == ["2026/a.zip"]  # the same size at the second look: delivered
    [run] = ops.runs.runs("got")
    assert run.variables == {"WATCHER": "inbox", "FILE": "2026/a.zip", "SIZE": "50000"}
    assert run.cause == "watcher inbox: 2026/a.zip" and run.state == NodeState.queued
    assert look() == []  # recorded once

    source.put("b.zip", data[:10_000])
    assert look() == []
    source.put("b.zip", data[:20_000])  # still being uploaded
    assert look() == []
    assert look() == ["b.zip"]
    assert ("b.zip", "20000") in _handed(ops)

    source.put("c.zip", b"c" * 100)
    source.put("c.zip.done", b"")  # the provider says it is complete: no second look needed
    assert look() == ["c.zip"]
    assert look() == []

    source.put("e.zip", b"e" * 10)
    assert look() == []
    source.remove("e.zip")  # gone before it was complete: forgotten
    assert look() == []
    source.put("e.zip", b"e" * 10)
    assert look() == []  # pending again, not delivered at once

    source.put("2026/a.zip", data + b"reprocessed")  # the same name with a new size: a new delivery
    assert look() == ["e.zip"]
    assert look() == ["2026/a.zip"]
    sizes = [size for file, size in _handed(ops) if file == "2026/a.zip"]
    assert sizes == ["50000", str(len(data) + 11)]

    source.put("d.zip", b"d" * 10)
    assert look() == []  # pending when the process ends
    again = operations(s3_endpoint=source.s3_endpoint)  # a restart: a new Operations on the same database
    assert again.watchers.look("inbox") == ["d.zip"]
    assert again.watchers.look("inbox") == []
    assert [file for file, _ in _handed(again)] == [
        "2026/a.zip",
        "2026/a.zip",
        "b.zip",
        "c.zip",
        "d.zip",
        "e.zip",
    ]
    watcher = again.watchers.get("inbox")
    assert (watcher.last_file, watcher.last_error, watcher.files) == ("d.zip", "", 6)
    assert watcher.last_look is not None and watcher.next_look == watcher.last_look + dt.timedelta(seconds=60)


def test_fetch_downloads_checks_and_links_into_the_run(
    source: Source, operations: Callable[..., Operations], tmp_path: Path
) -> None:
    ops = operations(s3_endpoint=source.s3_endpoint)
    _watch(ops, source)
    staging = tmp_path / "ops" / "staging" / "inbox"
    data = os.urandom(200_000)
    source.put("in/s.zip", data)
    source.put("in/s.zip.sha256", f"{_sha256(data).upper()}  s.zip\n".encode())  # as sha256sum writes it
    work = tmp_path / "run" / "work"
    linked = ops.watchers.fetch("inbox", "in/s.zip", len(data), work / "delivery")
    assert linked == work / "delivery" / "s.zip" and linked.read_bytes() == data
    assert linked.stat().st_ino == (staging / "in" / "s.zip").stat().st_ino  # a link, not a second copy
    assert not (staging / "in" / "s.zip.part").exists()

    # corrupt: the checksum of its sidecar does not match; nothing is kept
    source.put("bad.zip", data[:1000])
    source.put("bad.zip.sha256", f"{_sha256(b'what the provider sent')}  bad.zip\n".encode())
    with pytest.raises(InputError, match="sha256") as corrupt:
        ops.watchers.fetch("inbox", "bad.zip", 1000, work / "bad")
    assert "bad.zip" in str(corrupt.value) and "sidecar" in str(corrupt.value)
    assert sorted(p.name for p in staging.iterdir()) == ["in"] and not (work / "bad" / "bad.zip").exists()
    source.put("good.zip", data[:1000])
    source.put("good.zip.md5", hashlib.md5(data[:1000]).hexdigest().encode())
    assert ops.watchers.fetch("inbox", "good.zip", 1000, work / "good").read_bytes() == data[:1000]

    # the file changed since the watcher recorded its size: refused, and the message says what it has
    source.put("grew.zip", data[:3000])
    with pytest.raises(InputError, match="3000 bytes, not 2000"):
        ops.watchers.fetch("inbox", "grew.zip", 2000, work / "grew")
    assert not (staging / "grew.zip").exists() and not (staging / "grew.zip.part").exists()

    # the same name delivered again with a new size: the new file, not the one staged before
    source.put("in/s.zip", data[:5000])
    source.put("in/s.zip.sha256", _sha256(data[:5000]).encode())
    assert ops.watchers.fetch("inbox", "in/s.zip", 5000, work / "again").read_bytes() == data[:5000]

    # a delivery that disappears between the look and the fetch
    source.put("gone.zip", b"g" * 10)
    ops.watchers.look("inbox")
    assert "gone.zip" in ops.watchers.look("inbox")
    source.remove("gone.zip")
    with pytest.raises(RemoteError) as gone:
        ops.watchers.fetch("inbox", "gone.zip", 10, work / "gone")
    assert gone.value.reason == "not_found" and "gone.zip" in str(gone.value)
    assert not any(staging.glob("gone.zip*"))


@pytest.mark.parametrize("source", ["ftp", "sftp"], indirect=True)
def test_a_dropped_connection_is_resumed_by_the_next_fetch(
    source: Source, operations: Callable[..., Operations], tmp_path: Path
) -> None:
    ops = operations()
    _watch(ops, source)
    data = os.urandom(3 * CHUNK)
    source.put("big.zip", data)
    source.put("big.zip.sha256", _sha256(data).encode())
    part = tmp_path / "ops" / "staging" / "inbox" / "big.zip.part"
    source.server.drop_after = CHUNK + CHUNK // 2
    with pytest.raises(RemoteError) as dropped:
        ops.watchers.fetch("inbox", "big.zip", len(data), tmp_path / "work")
    assert dropped.value.reason == "dropped", dropped.value
    kept = part.stat().st_size
    assert 0 < kept < len(data)
    again = operations()  # the task's next try is another process
    assert again.watchers.fetch("inbox", "big.zip", len(data), tmp_path / "work").read_bytes() == data
    assert not part.exists()


def test_a_full_staging_area_pauses_the_watcher_until_resumed(
    operations: Callable[..., Operations], tmp_path: Path
) -> None:
    source = Source("folder", str(tmp_path / "inbox"), *_on_disk(tmp_path / "inbox"))
    ops = operations(min_free_bytes=2**62)  # more than any disk has
    _watch(ops, source)
    source.put("a.zip", b"a" * 1000)
    with pytest.raises(StorageError, match="staging area .* is full") as full:
        ops.watchers.fetch("inbox", "a.zip", 1000, tmp_path / "work")
    assert "cubeport watch resume inbox" in str(full.value)
    assert not any((tmp_path / "ops" / "staging" / "inbox").iterdir())  # refused before a byte was written
    watcher = ops.watchers.get("inbox")
    assert watcher.paused_reason == str(full.value)
    [shown] = ops.status()["watchers"]
    assert shown["paused"] == str(full.value)
    assert ops.watchers.due(now() + dt.timedelta(days=1)) == []  # a paused watcher does not look
    runner = ops.runner()
    assert runner.tick() and ops.watchers.get("inbox").last_look is None
    runner.lease.release()

    ops.watchers.min_free_bytes = 0  # an operator made room
    ops.watchers.resume("inbox")
    assert ops.watchers.get("inbox").paused_reason == "" and ops.watchers.due(now()) == ["inbox"]
    assert ops.watchers.fetch("inbox", "a.zip", 1000, tmp_path / "work").read_bytes() == b"a" * 1000


def test_an_oversized_delivery_is_recorded_not_handed_and_said(
    operations: Callable[..., Operations], tmp_path: Path
) -> None:
    source = Source("folder", str(tmp_path / "inbox"), *_on_disk(tmp_path / "inbox"))
    ops = operations(max_file_bytes=1000)
    _watch(ops, source)
    source.put("huge.zip", b"h" * 5000)
    source.put("small.zip", b"s" * 10)
    assert ops.watchers.look("inbox") == []
    watcher = ops.watchers.get("inbox")
    assert "huge.zip" in watcher.last_error and "over the limit of 1000" in watcher.last_error
    assert watcher.files == 1  # recorded: never looked at again
    assert ops.watchers.look("inbox") == ["small.zip"]
    assert ops.watchers.look("inbox") == []
    assert _handed(ops) == [("small.zip", "10")]


def test_markers_and_checksum_sidecars_are_no_deliveries_of_their_own(
    operations: Callable[..., Operations], tmp_path: Path
) -> None:
    source = Source("folder", str(tmp_path / "inbox"), *_on_disk(tmp_path / "inbox"))
    ops = operations()
    _watch(ops, source, include="*", marker=".done")
    source.put("x.zip", b"x" * 10)
    source.put("x.zip.sha256", _sha256(b"x" * 10).encode())
    source.put("x.zip.done", b"")
    source.put("y.tif.md5", b"0" * 32)  # its file is not there yet
    assert ops.watchers.look("inbox") == ["x.zip"]
    assert ops.watchers.look("inbox") == []
    assert _handed(ops) == [("x.zip", "10")]


def _until_done(ops: Operations, runner: Any, timeout: float = 30.0) -> None:
    """Tick until every run has ended (their tasks are processes: none is left behind by a test)."""
    deadline = time.monotonic() + timeout
    while ops.runs.runs(unfinished=True) and time.monotonic() < deadline:
        runner.tick()
        time.sleep(0.1)
    assert not ops.runs.runs(unfinished=True)


def test_a_watcher_that_cannot_log_in_or_reach_its_server_does_not_stop_the_others(
    operations: Callable[..., Operations], ftp_server: Any, sftp_server: Any, tmp_path: Path
) -> None:
    ops = operations(timeout=5)
    folder = f"w-{uuid.uuid4().hex[:10]}"
    (ftp_server.home / folder).mkdir()
    (ftp_server.home / folder / "a.zip").write_bytes(b"x" * 10)
    wrong = Credentials(ftp_server.user, "wrong-" + ftp_server.password)
    ops.watchers.add("locked", ftp_server.url(folder), "got", interval_seconds=120, credentials=wrong)
    ops.watchers.add(
        "nowhere",
        f"sftp://127.0.0.1:{free_port()}/in",
        "got",
        interval_seconds=120,
        credentials=Credentials(sftp_server.user, sftp_server.password),
        host_key=sftp_server.host_key,
    )
    source = Source("folder", str(tmp_path / "inbox"), *_on_disk(tmp_path / "inbox"))
    _watch(ops, source, name="open", marker=".done", interval_seconds=120)
    source.put("a.zip", b"a" * 10)
    source.put("a.zip.done", b"")

    before = now()
    runner = ops.runner()
    assert runner.tick()
    locked, nowhere, open_ = (ops.watchers.get(n) for n in ("locked", "nowhere", "open"))
    assert "refused the login" in locked.last_error and ftp_server.password not in locked.last_error
    assert "nothing answers" in nowhere.last_error
    for failed in (locked, nowhere):
        assert failed.last_look is not None and failed.last_look >= before
        assert failed.next_look == failed.last_look + dt.timedelta(seconds=120)  # tries again next round
        assert failed.paused_reason == "" and failed.files == 0
    assert (open_.last_file, open_.last_error) == ("a.zip", "")
    [run] = ops.runs.runs("got")
    assert run.variables["WATCHER"] == "open"
    assert ops.watchers.due(now()) == []
    assert sorted(ops.watchers.due(now() + dt.timedelta(seconds=121))) == ["locked", "nowhere", "open"]
    status = {w["name"]: w for w in ops.status()["watchers"]}
    assert status["locked"]["last_error"] == locked.last_error and status["open"]["last_error"] is None
    _until_done(ops, runner)
    assert ops.runs.run(run.id).state == NodeState.complete


def test_two_runners_one_acts(operations: Callable[..., Operations], tmp_path: Path) -> None:
    ops = operations()
    source = Source("folder", str(tmp_path / "inbox"), *_on_disk(tmp_path / "inbox"))
    _watch(ops, source, name="open", marker=".done")
    source.put("z.zip", b"z")
    source.put("z.zip.done", b"")
    first, second = ops.runner(), ops.runner()
    assert first.tick()
    assert ops.status()["runner"]["holder"] == first.lease.owner
    source.put("y.zip", b"y")
    source.put("y.zip.done", b"")
    ops.watchers.resume("open")  # due again now
    assert not second.tick()  # the first one holds the lease: the second does nothing
    assert _handed(ops) == [("z.zip", "1")]
    first.lease.release()
    assert second.tick()
    assert _handed(ops) == [("y.zip", "1"), ("z.zip", "1")]
    assert not first.tick()
    _until_done(ops, second)
