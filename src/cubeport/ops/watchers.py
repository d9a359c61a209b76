"""Watchers: look for new files on an FTP, FTPS or SFTP server, an S3 prefix or a folder, and start a suite
run for each one delivered.

A file counts as delivered when its size is the same at two looks in a row (or when its marker file, e.g.
`X.done`, is there). It is then recorded once by name and size, in the same transaction that starts its
run, so a file seen again is never processed twice, across restarts; the same name with a new size is a new
delivery. The download itself is the run's first task (`fetch`: resumed after a broken connection, checked
against the size and a `.sha256`/`.md5` sidecar when there is one), so it is retried like any task and
shows in the suite's tree. A watcher that cannot reach its server records why and tries again at its next
look; it never stops the others.
"""

from __future__ import annotations

import builtins
import datetime as dt
import fnmatch
import hashlib
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select, update

from cubeport.db import Database
from cubeport.db.models import OpsFileRecord, OpsPendingRecord, OpsWatcherRecord
from cubeport.errors import ConflictError, CubeportError, InputError, NotFoundError, StorageError
from cubeport.ops.remotes import Credentials, Remote, RemoteError
from cubeport.ops.runs import Runs, now, utc
from cubeport.ops.sealed import Sealer, described

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
SCHEMES = ("ftp", "ftps", "sftp", "s3", "file")
CHECKSUMS = {".sha256": "sha256", ".md5": "md5"}


@dataclass(frozen=True)
class Watcher:
    """A watcher's settings and how its last look went (credentials: only which fields are set)."""

    name: str
    url: str
    suite: str
    include: str
    interval_seconds: float
    marker: str | None
    credentials: list[str] = field(default_factory=list)
    paused_reason: str = ""
    last_look: dt.datetime | None = None
    next_look: dt.datetime | None = None
    last_file: str = ""
    last_error: str = ""
    files: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "url": self.url,
            "suite": self.suite,
            "include": self.include,
            "interval_seconds": self.interval_seconds,
            "marker": self.marker,
            "credentials": self.credentials,
            "paused": self.paused_reason or None,
            "last_look": self.last_look.isoformat() if self.last_look else None,
            "next_look": self.next_look.isoformat() if self.next_look else None,
            "last_file": self.last_file or None,
            "last_error": self.last_error or None,
            "files": self.files,
        }


class Watchers:
    """Watchers in the database; `look` one of them, `fetch` a file of it (the suite's first task)."""

    def __init__(
        self,
        db: Database,
        runs: Runs,
        sealer: Sealer,
        *,
        staging: Path,
        max_file_bytes: int = 8 * 2**30,
        min_free_bytes: int = 2**30,
        timeout: float = 30.0,
        s3_endpoint: str | None = None,
        ca_file: str | None = None,
    ) -> None:
        self.db, self.runs, self.sealer = db, runs, sealer
        self.ca_file = ca_file
        self.staging, self.max_file_bytes, self.min_free_bytes = staging, max_file_bytes, min_free_bytes
        self.timeout, self.s3_endpoint = timeout, s3_endpoint

    # -- settings --------------------------------------------------------------------------------------
    def add(
        self,
        name: str,
        url: str,
        suite: str,
        *,
        include: str = "*",
        interval_seconds: float = 900.0,
        marker: str | None = None,
        credentials: Credentials | None = None,
        host_key: str | None = None,
    ) -> Watcher:
        """`host_key`: an SFTP server's public key (OpenSSH text) [default: ~/.ssh/known_hosts]."""
        if not _NAME.match(name):
            raise InputError(f"watcher name {name!r}: letters, digits, '_', '.', '-' (at most 64)")
        scheme = url.split("://", 1)[0] if "://" in url else "file"
        if scheme not in SCHEMES:
            raise InputError(f"watcher URL {url!r}: use one of {', '.join(s + '://' for s in SCHEMES)}")
        if interval_seconds < 1:
            raise InputError("a watcher looks at most once a second")
        self.runs.suite(suite)  # NotFoundError names a suite that is not there
        with self.db.session() as session:
            if session.get(OpsWatcherRecord, name) is not None:
                raise ConflictError(f"watcher {name!r} exists; remove it first")
            session.add(
                OpsWatcherRecord(
                    name=name,
                    url=url,
                    include=include,
                    marker=marker,
                    interval_seconds=interval_seconds,
                    suite=suite,
                    credentials=self.sealer.seal(credentials),
                    host_key=host_key or "",
                    created=now(),
                )
            )
        return self.get(name)

    def get(self, name: str) -> Watcher:
        with self.db.session() as session:
            record = session.get(OpsWatcherRecord, name)
            if record is None:
                raise NotFoundError(f"watcher {name!r} not found")
            count = session.scalar(select(func.count()).where(OpsFileRecord.watcher == name)) or 0
            return self._watcher(record, count)

    def list(self) -> list[Watcher]:
        with self.db.session() as session:
            names = list(session.scalars(select(OpsWatcherRecord.name).order_by(OpsWatcherRecord.name)))
        return [self.get(n) for n in names]

    def remove(self, name: str) -> None:
        self.get(name)
        with self.db.session() as session:
            session.execute(delete(OpsWatcherRecord).where(OpsWatcherRecord.name == name))

    def resume(self, name: str) -> None:
        """Lift a pause (e.g. after the staging area was cleaned up): looks start again."""
        self._update(name, paused_reason="", next_look=None)

    def due(self, when: dt.datetime) -> builtins.list[str]:
        with self.db.session() as session:
            rows = session.execute(
                select(OpsWatcherRecord.name, OpsWatcherRecord.next_look).where(
                    OpsWatcherRecord.paused_reason == ""
                )
            ).all()
        return [name for name, at in rows if at is None or utc(at) <= when]  # type: ignore[operator]

    # -- looking -----------------------------------------------------------------------------------------
    def look(self, name: str) -> builtins.list[str]:
        """One look: the files delivered since the last one, each recorded and handed to a new run."""
        with self.db.session() as session:
            record = session.get(OpsWatcherRecord, name)
            if record is None:
                raise NotFoundError(f"watcher {name!r} not found")
            url, include, marker, suite = record.url, record.include, record.marker, record.suite
            interval, sealed, host_key = record.interval_seconds, record.credentials, record.host_key
        started = now()
        handed: list[str] = []
        notes: list[str] = []  # refused files: this look's last_error
        try:
            with self._remote(url, sealed, host_key) as remote:
                listed = remote.list()  # every file: a marker or sidecar need not match `include`
                names = {f.name for f in listed}
                for file in listed:
                    if not fnmatch.fnmatchcase(file.name, include) or _companion(file.name, marker):
                        continue
                    ready = bool(marker) and f"{file.name}{marker}" in names
                    if self._handle(name, suite, file.name, file.size, ready, notes):
                        handed.append(file.name)
                self._forget_pending(name, names)
        except (RemoteError, StorageError) as exc:
            self._update(
                name,
                last_look=started,
                next_look=started + dt.timedelta(seconds=interval),
                last_error=str(exc),
            )
            return handed
        values: dict[str, Any] = {
            "last_look": started,
            "next_look": started + dt.timedelta(seconds=interval),
            "last_error": "; ".join(notes)[:2000],
        }
        if handed:
            values["last_file"] = handed[-1]
        self._update(name, **values)
        return handed

    def _handle(
        self, watcher: str, suite: str, file: str, size: int, ready: bool, notes: builtins.list[str]
    ) -> bool:
        """Record a listed file; True when it was delivered now (recorded, and its run started). Why a file
        is refused goes to `notes`."""
        with self.db.session() as session:
            if session.get(OpsFileRecord, (watcher, file, size)) is not None:
                return False  # seen before under this name and size
            pending = session.get(OpsPendingRecord, (watcher, file))
            if size > self.max_file_bytes:
                session.add(OpsFileRecord(watcher=watcher, name=file, size=size, run_id=None, recorded=now()))
                if pending is not None:
                    session.delete(pending)
                notes.append(f"{file}: {size} bytes, over the limit of {self.max_file_bytes}; not fetched")
                return False
            if not ready and (pending is None or pending.size != size):
                if pending is None:
                    session.add(OpsPendingRecord(watcher=watcher, name=file, size=size, seen=now()))
                else:
                    pending.size, pending.seen = size, now()
                return False
            variables = {"WATCHER": watcher, "FILE": file, "SIZE": str(size)}
            run = self.runs.start(suite, variables, cause=f"watcher {watcher}: {file}", session=session)
            session.add(OpsFileRecord(watcher=watcher, name=file, size=size, run_id=run.id, recorded=now()))
            if pending is not None:
                session.delete(pending)
        return True

    def _forget_pending(self, watcher: str, listed: set[str]) -> None:
        with self.db.session() as session:
            for pending in session.scalars(
                select(OpsPendingRecord).where(OpsPendingRecord.watcher == watcher)
            ):
                if pending.name not in listed:  # gone before it was complete
                    session.delete(pending)

    # -- fetching (a task of the run) -------------------------------------------------------------------
    def fetch(self, name: str, file: str, size: int, into: Path) -> Path:
        """Download a delivered file to the staging area (resuming a broken transfer), check it, and link it
        into `into` (the run's work folder); returns its path there."""
        with self.db.session() as session:
            record = session.get(OpsWatcherRecord, name)
            if record is None:
                raise NotFoundError(f"watcher {name!r} not found")
            url, sealed, host_key = record.url, record.credentials, record.host_key
        target = (self.staging / name / file).resolve()
        if not target.is_relative_to((self.staging / name).resolve()):
            raise InputError(f"{file!r} is not a name inside the watcher's folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        part = Path(f"{target}.part")
        have = part.stat().st_size if part.exists() else 0
        free = shutil.disk_usage(target.parent).free
        if free - (size - have) < self.min_free_bytes:
            reason = (
                f"staging area {self.staging} is full: {free} bytes free, {size - have} needed plus "
                f"{self.min_free_bytes} kept free; make room, then `cubeport watch resume {name}`"
            )
            self._update(name, paused_reason=reason)
            raise StorageError(reason)
        if target.exists() and target.stat().st_size != size:
            target.unlink()  # staged for an earlier delivery under the same name
        with self._remote(url, sealed, host_key) as remote:
            if not target.exists():
                remote.download(file, target)
            got = target.stat().st_size
            if got != size:
                target.unlink()
                raise InputError(f"{file}: {got} bytes, not {size}: it changed since the watcher saw it")
            _check_sidecar(remote, file, target)
        into.mkdir(parents=True, exist_ok=True)
        linked = into / Path(file).name
        linked.unlink(missing_ok=True)
        try:
            os.link(target, linked)
        except OSError:  # another file system
            shutil.copyfile(target, linked)
        return linked

    # -- plumbing ----------------------------------------------------------------------------------------
    def _remote(self, url: str, sealed: str, host_key: str) -> Remote:
        return Remote(
            url,
            self.sealer.unseal(sealed),
            timeout=self.timeout,
            s3_endpoint=self.s3_endpoint,
            ca_file=self.ca_file,
            host_key=host_key or None,
        )

    def _update(self, name: str, **values: Any) -> None:
        with self.db.session() as session:
            session.execute(update(OpsWatcherRecord).where(OpsWatcherRecord.name == name).values(**values))

    def _watcher(self, record: OpsWatcherRecord, files: int) -> Watcher:
        try:
            credentials = described(self.sealer.unseal(record.credentials))
        except CubeportError:
            credentials = ["(unreadable)"]
        return Watcher(
            name=record.name,
            url=record.url,
            suite=record.suite,
            include=record.include,
            interval_seconds=record.interval_seconds,
            marker=record.marker,
            credentials=credentials,
            paused_reason=record.paused_reason,
            last_look=utc(record.last_look),
            next_look=utc(record.next_look),
            last_file=record.last_file,
            last_error=record.last_error,
            files=files,
        )


def _companion(name: str, marker: str | None) -> bool:
    """A marker or checksum sidecar: part of another file's delivery, never one of its own."""
    return name.endswith((*CHECKSUMS, *([marker] if marker else [])))


def _check_sidecar(remote: Remote, file: str, local: Path) -> None:
    """When the delivery has a checksum sidecar (`X.sha256`, `X.md5`), the file must match it."""
    for suffix, algorithm in CHECKSUMS.items():
        if not remote.exists(file + suffix):
            continue
        words = remote.read_text(file + suffix, limit=4096).split()  # "<hex>  <name>" as sha256sum writes it
        expected = words[0].lower() if words else ""
        digest = hashlib.new(algorithm)
        with open(local, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        if digest.hexdigest() != expected:
            local.unlink()
            raise InputError(
                f"{file}: {algorithm} {digest.hexdigest()} does not match its sidecar ({expected or 'empty'})"
            )
        return
