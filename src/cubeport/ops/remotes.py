"""One way to reach files elsewhere: list, download with resume and upload on FTP, FTPS, SFTP, S3 and folders.

Watchers poll a provider's server for deliveries and delivery targets push products to a portal; both
speak through `Remote`. The protocols come from fsspec (ftplib underneath for FTP and FTPS, sshfs on
asyncssh for SFTP, s3fs for S3); this module adds what operations need on top of them: downloads into a
`.part` file that resume after a dropped connection and are checked against the remote size, uploads that
appear whole under their final name, strict server verification (TLS certificates, SSH host keys), and
one readable line per failure (`RemoteError`) that never shows a credential. Everything blocks; callers
run it in worker threads. One `Remote` keeps one connection, opened on first use and again after a
failure; a lock lets one thread use it at a time.
"""

from __future__ import annotations

import contextlib
import fnmatch
import ftplib
import os
import posixpath
import socket
import ssl
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Literal
from urllib.parse import unquote, urlsplit

import fsspec
from fsspec.implementations.ftp import FTPFileSystem

from cubeport.errors import CubeportError, InputError, StorageError, UnavailableError

#: Bytes per read of a download (one ranged GET on S3, one pipelined batch on SFTP) and per progress call.
CHUNK = 4 << 20
#: Suffix of the temporary name an upload writes before its rename; `list()` never reports such names.
UPLOAD_SUFFIX = ".uploading"
SCHEMES = ("ftp", "ftps", "sftp", "s3", "file")
_DEFAULT_PORTS = {"ftp": 21, "ftps": 21, "sftp": 22}

_FILE_REASONS = ("not_found", "permission", "too_large")  # failures about one file: the connection is fine
_Entries = list[dict[str, Any]]  # fsspec listing entries ("list" is a method name inside Remote)
Reason = Literal[
    "unreachable", "login", "untrusted", "not_found", "permission", "dropped", "too_large", "failed"
]


class RemoteError(UnavailableError):
    """A remote server could not be reached or refused an operation; the message is one line that names
    the remote, what failed and how to fix it.

    `reason` lets a caller decide without parsing text: try again next round ("unreachable", "dropped"),
    wait for an operator ("login", "untrusted", "permission"), or skip the file ("not_found", "too_large").
    """

    def __init__(self, message: str, reason: Reason = "failed") -> None:
        super().__init__(message)
        self.reason: Reason = reason

    def __reduce__(self) -> tuple[type[RemoteError], tuple[str, Reason]]:
        return type(self), (str(self), self.reason)  # keeps the reason across processes


@dataclass(frozen=True)
class Credentials:
    """What a remote needs to let us in. Secrets stay out of repr() (and so out of logs)."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)  # FTP/FTPS/SFTP password, or the S3 secret key
    private_key: str | None = field(default=None, repr=False)  # SFTP: PEM or OpenSSH private key text
    access_key_id: str | None = None  # S3

    def secrets(self) -> list[str]:
        return [value for value in (self.password, self.private_key) if value]


@dataclass(frozen=True)
class RemoteFile:
    """A file below a remote's base: its POSIX path relative to the base, its size and (when the server
    tells) its modification time in UTC."""

    name: str
    size: int
    modified: datetime | None


class Remote:
    """A base URL (ftp://host:port/dir, ftps://..., sftp://host:port/dir, s3://bucket/prefix, file:///dir or a
    plain path) and its credentials.

    - FTPS is explicit TLS (AUTH TLS) with a protected data channel (PROT P). The certificate is verified
      against the system's CAs, or `ca_file`; `verify=False` turns that off.
    - SFTP trusts the host key given as `host_key` (OpenSSH public key text), else ~/.ssh/known_hosts;
      `verify=False` accepts any key. Only the given password or private key is tried (no agent, no
      ~/.ssh keys or config), so credentials go only to the remote they belong to. sftp://host/~/dir is
      relative to the login's home folder.
    - S3 talks to `s3_endpoint` (or AWS) and nowhere else; without credentials it reads anonymously,
      never with the credentials of the environment.
    - `timeout` bounds connecting and every wait for the server.
    """

    def __init__(
        self,
        url: str,
        credentials: Credentials | None = None,
        *,
        timeout: float = 30.0,
        s3_endpoint: str | None = None,
        verify: bool = True,
        ca_file: str | None = None,
        host_key: str | None = None,
    ) -> None:
        parts = urlsplit(url)
        scheme = parts.scheme.lower() if "://" in url else "file"
        host = parts.hostname or ""
        port = self._port(parts) if scheme != "file" else None
        self.scheme = scheme
        self.host = host
        self.port = port or _DEFAULT_PORTS.get(scheme)
        if scheme not in SCHEMES:
            raise InputError(
                f"remote {scheme}://{host}: unknown scheme {scheme!r}; "
                "use ftp://, ftps://, sftp://, s3://, file:// or a folder path"
            )
        if parts.password:
            raise InputError(
                f"remote {scheme}://{host}: the URL holds a password; give it in the credentials instead"
            )
        if scheme != "file" and not host:
            raise InputError(f"remote {url!r} names no host (or bucket)")
        credentials = credentials or Credentials()
        if parts.username and not credentials.username:
            credentials = Credentials(
                unquote(parts.username),
                credentials.password,
                credentials.private_key,
                credentials.access_key_id,
            )
        self.credentials = credentials
        self.timeout = float(timeout)
        self.s3_endpoint = s3_endpoint
        self.verify = verify
        self.ca_file = ca_file
        self.host_key = host_key
        self.base = self._base(scheme, host, unquote(parts.path) if "://" in url else url)
        if scheme in ("s3", "file"):
            self.url = f"{scheme}://{self.base}"
        else:
            folder = (
                self.base
                if self.base.startswith("/")
                else "/~" + ("" if self.base == "." else f"/{self.base}")
            )
            shown = f"[{host}]" if ":" in host else host
            self.url = f"{scheme}://{shown}:{self.port}{'' if folder == '/' else folder}"
        self._fs: Any = None
        self._lock = threading.RLock()

    @staticmethod
    def _port(parts: Any) -> int | None:
        try:
            port: int | None = parts.port
        except ValueError as exc:
            raise InputError(f"remote {parts.scheme}://{parts.hostname}: the port is not a number") from exc
        return port

    @staticmethod
    def _base(scheme: str, host: str, path: str) -> str:
        if scheme == "s3":
            prefix = path.strip("/")
            return f"{host}/{prefix}" if prefix else host
        if scheme == "file":
            return Path(path).expanduser().absolute().as_posix().rstrip("/") or "/"
        if scheme == "sftp" and (path in ("", "/~") or path.startswith("/~/")):
            return posixpath.normpath(path[3:]) if len(path) > 3 else "."  # below the login's home
        return posixpath.normpath("/" + path.strip("/")) if path.strip("/") else "/"

    # -- public API ------------------------------------------------------------------------------------
    def list(self, include: str = "*", recursive: bool = True) -> list[RemoteFile]:
        """Files below the base whose relative name matches `include` (fnmatch: `*` also spans folders, so
        "*.zip" finds zips at any depth), sorted by name. A missing base folder is a RemoteError
        ("not_found"); an S3 prefix without objects is simply empty."""
        with self._lock, self._guard("listing"):
            fs = self._filesystem()
            if self.scheme == "s3":
                found = fs.find(self.base, maxdepth=None if recursive else 1, withdirs=False, detail=True)
                entries = [info for info in found.values() if info.get("type") == "file"]
            else:
                entries = self._walk(fs, recursive)
            files = []
            for info in entries:
                name = self._relative(str(info["name"]))
                leaf = name.rsplit("/", 1)[-1]
                if leaf.startswith(".") and leaf.endswith(UPLOAD_SUFFIX):
                    continue  # an upload in flight (ours or another Remote's): not a file yet
                if fnmatch.fnmatchcase(name, include):
                    files.append(RemoteFile(name, int(info.get("size") or 0), _modified(info)))
            return sorted(files, key=lambda f: f.name)

    def exists(self, name: str) -> bool:
        """Whether `name` (file or folder) exists; a server that cannot be asked is a RemoteError, not False."""
        path = self._path(name)
        with self._lock, self._guard(f"checking {name}"):
            fs = self._filesystem()
            try:
                fs.info(path)
            except FileNotFoundError:
                return False
            return True

    def download(self, name: str, target: Path, *, progress: Callable[[int], None] | None = None) -> int:
        """Copy `name` to `target`, through `target` + ".part", which a later call resumes (after a dropped
        connection) instead of starting again; returns the bytes transferred by this call. `progress` is
        called with the bytes received since its last call. The result must have the remote's size, or
        this is a RemoteError; a .part longer than the remote file is not a prefix of it and starts over.
        (A remote file replaced by another of at least the same size is not detected: check checksums.)"""
        path = self._path(name)
        target = Path(target)
        part = target.with_name(target.name + ".part")
        with self._lock, self._guard(f"download of {name}"):
            fs = self._filesystem()
            info = fs.info(path)
            if info.get("type") != "file":
                raise RemoteError(f"{self.url}: {name} is a folder, not a file", "not_found")
            size = int(info["size"])
            received = 0

            def write(out: BinaryIO, data: bytes) -> None:
                nonlocal received
                with _local_errors(part):
                    out.write(data)
                received += len(data)
                if progress is not None:
                    progress(len(data))

            with _local_errors(part):
                target.parent.mkdir(parents=True, exist_ok=True)
                offset = part.stat().st_size if part.exists() else 0
                if offset > size:
                    part.unlink()
                    offset = 0
                out = open(part, "ab")  # noqa: SIM115  # closed below; its errors are local, not remote
            with out:
                if offset < size:
                    if self.scheme in ("ftp", "ftps"):
                        self._fetch_ftp(fs, path, out, offset, lambda data: write(out, data))
                    else:
                        self._fetch(fs, path, offset, size, lambda data: write(out, data))
            have = part.stat().st_size
            if have != size:
                if have > size:
                    part.unlink()
                raise RemoteError(
                    f"{self.url}: download of {name} ended at {have} of {size} bytes; the file changed or "
                    "the connection dropped: the next download resumes (or restarts) it",
                    "dropped",
                )
            with _local_errors(target):
                os.replace(part, target)
            return received

    def upload(self, source: Path, name: str) -> None:
        """Copy the local file `source` to `name`, creating folders. Readers never see a part of it: it is
        written under a hidden temporary name in the same folder, then renamed (FTP RNFR/RNTO, SFTP
        posix-rename, os.replace); an S3 PUT or multipart upload appears only when complete."""
        source = Path(source)
        if not source.is_file():
            raise InputError(f"upload to {self.url}: {source} is not a file")
        path = self._path(name)
        with self._lock, self._guard(f"upload of {name}"):
            fs = self._filesystem()
            if self.scheme == "s3":
                fs.put_file(str(source), path)
                return
            folder, leaf = posixpath.split(path)
            temporary = posixpath.join(folder, f".{leaf}.{uuid.uuid4().hex[:12]}{UPLOAD_SUFFIX}")
            try:
                if self.scheme in ("ftp", "ftps"):
                    self._put_ftp(fs, source, folder, temporary, path)
                elif self.scheme == "sftp":
                    fs.put_file(str(source), temporary)  # creates the folders
                    self._rename_sftp(fs, temporary, path)
                else:
                    fs.makedirs(folder, exist_ok=True)
                    fs.put_file(str(source), temporary)
                    os.replace(temporary, path)
            except BaseException:
                self._remove_quietly(temporary)
                raise

    def read_text(self, name: str, limit: int = 1 << 20) -> str:
        """The UTF-8 text of a small file (a checksum list, a marker); a file over `limit` bytes is refused
        ("too_large") rather than read into memory."""
        path = self._path(name)
        with self._lock, self._guard(f"reading {name}"):
            fs = self._filesystem()
            size = int(fs.info(path).get("size") or 0)
            if size > limit:
                raise RemoteError(
                    f"{self.url}: {name} has {size} bytes, more than the {limit} read_text takes; "
                    "download it instead",
                    "too_large",
                )
            if self.scheme in ("ftp", "ftps"):
                chunks: list[bytes] = []
                self._fetch_ftp(fs, path, None, 0, chunks.append)
                data = b"".join(chunks)
            else:
                with fs.open(path, "rb") as f:
                    data = f.read(limit + 1)
            if len(data) > limit:
                raise RemoteError(f"{self.url}: {name} grew beyond {limit} bytes while read", "too_large")
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise RemoteError(f"{self.url}: {name} is not UTF-8 text ({exc.reason})") from None

    def close(self) -> None:
        """Close the connection (a later call opens a new one)."""
        with self._lock:
            self._discard(polite=True)

    def __enter__(self) -> Remote:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        user = f", user={self.credentials.username!r}" if self.credentials.username else ""
        return f"Remote({self.url!r}{user})"

    def __str__(self) -> str:
        return self.url

    # -- paths -----------------------------------------------------------------------------------------
    def _path(self, name: str) -> str:
        """The server path of `name`, which must stay below the base (no absolute names, no "..")."""
        clean = posixpath.normpath(name) if name else ""
        if not name or name.startswith("/") or clean in (".", "..") or clean.startswith("../"):
            raise InputError(f"{self.url}: {name!r} is not a file name relative to the remote's folder")
        if self.base == "/":
            return "/" + clean
        return clean if self.base == "." else f"{self.base}/{clean}"

    def _relative(self, full: str) -> str:
        full = full.rstrip("/")
        if self.base == "/":
            return full.lstrip("/")
        if self.base == ".":
            return full.removeprefix("./")
        return full[len(self.base) + 1 :] if full.startswith(self.base + "/") else full

    def _walk(self, fs: Any, recursive: bool) -> _Entries:
        """Files below the base, folder by folder (FTP, SFTP, local): fsspec's own walk would hide a
        failing server behind an empty listing."""
        files: _Entries = []
        folders = [self.base]
        while folders:
            folder = folders.pop()
            try:
                entries = fs.ls(folder, detail=True)
            except FileNotFoundError:
                if folder == self.base:
                    raise RemoteError(
                        f"{self.url}: the folder does not exist; check the URL's path", "not_found"
                    ) from None
                continue  # removed while we listed
            for entry in entries:
                kind = entry.get("type")
                if kind == "link":  # follow links to files and folders (stat, not lstat)
                    with contextlib.suppress(FileNotFoundError):
                        entry = {**fs.info(entry["name"]), "name": entry["name"]}
                        kind = entry.get("type")
                if kind == "directory" and recursive:
                    folders.append(str(entry["name"]))
                elif kind == "file":
                    files.append(entry)
        return files

    # -- connections -----------------------------------------------------------------------------------
    def _filesystem(self) -> Any:
        if self._fs is None:
            try:
                self._fs = self._connect()
            except RemoteError:
                raise
            except Exception as exc:
                reason, text = self._describe(exc, connecting=True)
                raise RemoteError(self._scrub(f"{self.url}: connecting failed: {text}"), reason) from exc
        return self._fs

    def _connect(self) -> Any:
        credentials = self.credentials
        if self.scheme in ("ftp", "ftps"):
            return _FTPFileSystem(
                self.host,
                self.port,
                username=credentials.username,
                password=credentials.password,
                timeout=self.timeout,
                tls=self.scheme == "ftps",
                ssl_context=self._ssl_context() if self.scheme == "ftps" else None,
                use_listings_cache=False,
            )
        if self.scheme == "sftp":
            return self._connect_sftp()
        if self.scheme == "s3":
            options: dict[str, Any] = {
                "skip_instance_cache": True,
                "use_listings_cache": False,
                "client_kwargs": {"region_name": "us-east-1"},
                "config_kwargs": {
                    "connect_timeout": self.timeout,
                    "read_timeout": self.timeout,
                    "retries": {"total_max_attempts": 1, "mode": "standard"},
                },
            }
            if self.s3_endpoint:
                options["endpoint_url"] = self.s3_endpoint
            if credentials.access_key_id and credentials.password:
                options["key"], options["secret"] = credentials.access_key_id, credentials.password
            else:
                options["anon"] = True  # never the environment's credentials: they belong to another store
            fs = fsspec.filesystem("s3", **options)
            fs.retries = (
                1  # (a class attribute of s3fs) the caller's next round retries; timeouts must not add up
            )
            return fs
        return fsspec.filesystem("file")

    def _ssl_context(self) -> ssl.SSLContext:
        if not self.verify:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return context
        return ssl.create_default_context(cafile=self.ca_file)

    def _connect_sftp(self) -> Any:
        import asyncssh
        import sshfs

        credentials = self.credentials
        known_hosts: Any = ()  # asyncssh's default: ~/.ssh/known_hosts (nothing trusted without it)
        if self.host_key:
            keys = [asyncssh.import_public_key(line) for line in self.host_key.splitlines() if line.strip()]
            known_hosts = (keys, [], [])
        elif not self.verify:
            known_hosts = None
        options: dict[str, Any] = {
            "port": self.port,
            "known_hosts": known_hosts,
            "client_keys": [asyncssh.import_private_key(credentials.private_key)]
            if credentials.private_key
            else None,
            "password": credentials.password,
            "agent_path": None,
            "config": None,
            "connect_timeout": self.timeout,
            "login_timeout": self.timeout,
            "keepalive_interval": max(1.0, self.timeout / 3),  # a silent peer counts as dropped
            "keepalive_count_max": 3,
            "timeout": self.timeout,
            "skip_instance_cache": True,
        }
        if credentials.username:
            options["username"] = credentials.username
        return sshfs.SSHFileSystem(self.host, **options)

    def _discard(self, polite: bool = False) -> None:
        """Forget the connection (after a failure its state is unknown); the next call opens a new one."""
        fs, self._fs = self._fs, None
        if fs is None:
            return
        with contextlib.suppress(Exception):
            if isinstance(fs, FTPFileSystem):
                if polite:
                    fs.ftp.quit()
                fs.ftp.close()
            elif self.scheme == "sftp":
                fs.loop.call_soon_threadsafe(fs.client.close)

    # -- transfers -------------------------------------------------------------------------------------
    def _fetch(self, fs: Any, path: str, offset: int, size: int, write: Callable[[bytes], None]) -> None:
        """Read bytes offset..size with seek and sized reads: ranged GETs on S3, pipelined reads on SFTP."""
        options = {"block_size": CHUNK, "cache_type": "none"} if self.scheme == "s3" else {}
        with fs.open(path, "rb", **options) as source:
            source.seek(offset)
            position = offset
            while position < size:
                data = source.read(min(CHUNK, size - position))
                if not data:
                    break
                write(data)
                position += len(data)

    @staticmethod
    def _fetch_ftp(
        fs: Any, path: str, out: BinaryIO | None, offset: int, write: Callable[[bytes], None]
    ) -> None:
        """One RETR, from `offset` with REST, straight into `write`. ftplib directly, not fsspec's FTPFile:
        that file reads in blocks, each a new RETR with REST followed by ABOR (a data connection per 64 KiB),
        and fsspec's cat_file holds the whole file in memory."""
        try:
            fs.ftp.retrbinary(f"RETR {path}", write, blocksize=1 << 16, rest=offset or None)
        except (ftplib.error_perm, ftplib.error_reply) as exc:
            code = str(exc)[:3]
            no_restart = code in ("500", "501", "502", "504") or code.startswith("2")  # REST not understood
            if not (offset and out is not None and no_restart):
                raise
            # the server cannot restart a transfer (no REST): start the file again
            out.seek(0)
            out.truncate()
            fs.ftp.retrbinary(f"RETR {path}", write, blocksize=1 << 16)

    @staticmethod
    def _put_ftp(fs: Any, source: Path, folder: str, temporary: str, path: str) -> None:
        """One STOR, then RNFR/RNTO. ftplib directly: fsspec's FTPFile stores each 64 KiB block with its own
        STOR and REST, one data connection per block."""
        fs.makedirs(folder, exist_ok=True)
        with open(source, "rb") as f:
            fs.ftp.storbinary(f"STOR {temporary}", f, blocksize=1 << 16)
        try:
            fs.ftp.rename(temporary, path)
        except ftplib.error_perm:
            # some servers refuse to rename over an existing file: replace it (the only non-atomic moment)
            fs.ftp.delete(path)
            fs.ftp.rename(temporary, path)

    @staticmethod
    def _rename_sftp(fs: Any, source: str, target: str) -> None:
        """posix-rename (replaces the target in one step); plain SFTP rename, after removing the target,
        where the server lacks it. Not fsspec's mv, whose fallback copies through a shell that
        SFTP-only accounts do not have."""
        from asyncssh.sftp import SFTPOpUnsupported
        from fsspec.asyn import sync

        async def rename() -> None:
            async with fs.client.start_sftp_client() as sftp:
                try:
                    await sftp.posix_rename(source, target)
                except SFTPOpUnsupported:
                    if await sftp.exists(target):
                        await sftp.remove(target)
                    await sftp.rename(source, target)

        sync(fs.loop, rename)

    def _remove_quietly(self, path: str) -> None:
        fs = self._fs
        if fs is None:
            return
        with contextlib.suppress(Exception):
            if isinstance(fs, FTPFileSystem):
                fs.ftp.delete(path)
            else:
                fs.rm_file(path)

    # -- errors ----------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        """Turn any client library's exception into one RemoteError line; drop the connection unless the
        failure was about one file."""
        try:
            yield
        except CubeportError as exc:  # ours: RemoteError, InputError, StorageError (the local disk)
            if not isinstance(exc, InputError) and getattr(exc, "reason", None) not in _FILE_REASONS:
                self._discard()
            raise
        except Exception as exc:
            reason, text = self._describe(exc, connecting=False)
            if reason not in _FILE_REASONS:
                self._discard()
            raise RemoteError(self._scrub(f"{self.url}: {action} failed: {text}"), reason) from exc

    def _scrub(self, text: str) -> str:
        for secret in self.credentials.secrets():
            text = text.replace(secret, "***")
        return text

    def _describe(self, exc: BaseException, connecting: bool) -> tuple[Reason, str]:
        """The reason and one line (what happened; what to do) for a client library's exception."""
        detail = _short(exc)
        name = type(exc).__name__
        where = self.s3_endpoint or "AWS S3" if self.scheme == "s3" else f"{self.host}:{self.port}"
        login_hint = (
            "check the access key id and secret key"
            if self.scheme == "s3"
            else "check the user name and password (or private key)"
        )
        if isinstance(exc, ssl.SSLCertVerificationError):
            return "untrusted", (
                f"the server's TLS certificate is not trusted ({exc.verify_message}); "
                "pass ca_file with the CA that issued it (or verify=False to skip the check)"
            )
        if name == "HostKeyNotVerifiable":
            return "untrusted", (
                f"the server's SSH host key is not trusted ({detail}); pass its public key as host_key "
                "or add it to ~/.ssh/known_hosts"
            )
        if isinstance(exc, ConnectionRefusedError) or name == "EndpointConnectionError":
            return "unreachable", (
                f"nothing answers at {where} ({detail}); check the host, the port and that the server runs"
            )
        if isinstance(exc, socket.gaierror):
            return "unreachable", f"the host {self.host} is not known ({detail}); check the host name"
        if isinstance(exc, TimeoutError) or name in (
            "FSTimeoutError",
            "ConnectTimeoutError",
            "ReadTimeoutError",
        ):
            if connecting or self.scheme == "s3":  # S3 connects per request
                return "unreachable", (
                    f"no answer from {where} within {self.timeout:g} s; "
                    "check the host, the port, a firewall, and that the server runs"
                )
            return "dropped", (
                f"the server stopped answering for {self.timeout:g} s; try again (downloads resume)"
            )
        if isinstance(exc, ftplib.error_perm | ftplib.error_temp | ftplib.error_reply):
            code = str(exc)[:3]
            lower = detail.lower()
            if code in ("530", "331", "332"):
                return "login", f"the server refused the login ({detail}); {login_hint}"
            if code in ("421", "425", "426"):
                return "dropped", f"the connection dropped ({detail}); try again (downloads resume)"
            if code in ("534", "533") or (self.scheme == "ftps" and connecting and code in ("500", "502")):
                return "failed", f"the server does not offer explicit TLS (AUTH TLS): {detail}"
            if code in ("550", "553", "450", "451") and any(
                word in lower for word in ("no such", "not found", "not exist", "cannot find")
            ):
                return "not_found", f"no such file ({detail}); check the name"
            if code in ("550", "553", "532"):
                return "permission", f"permission denied ({detail}); check the account's rights on the server"
            return "failed", f"the server answered {detail}"
        text = f"{name}: {detail}"
        if isinstance(exc, PermissionError):
            if connecting or any(
                word in text
                for word in (
                    "InvalidAccessKeyId",
                    "SignatureDoesNotMatch",
                    "signature",
                    "access key",
                    "InvalidToken",
                )
            ):
                return "login", f"the server refused the login ({detail}); {login_hint}"
            return "permission", f"permission denied ({detail}); check the account's rights on the server"
        if isinstance(exc, FileNotFoundError) or name in ("SFTPNoSuchFile", "SFTPNoSuchPath", "NoSuchKey"):
            return "not_found", "no such file or folder; check the name and the URL's path"
        if name in ("SFTPPermissionDenied",):
            return "permission", f"permission denied ({detail}); check the account's rights on the server"
        if name == "PermissionDenied":  # asyncssh: the login failed
            return "login", f"the server refused the login ({detail}); {login_hint}"
        if isinstance(exc, ConnectionError | EOFError | ssl.SSLEOFError) or name in (
            "ConnectionLost",
            "SFTPConnectionLost",
            "DisconnectError",
            "ConnectionClosedError",
            "ClientPayloadError",
            "ServerDisconnectedError",
        ):
            return "dropped", f"the connection dropped ({text}); try again (downloads resume)"
        if isinstance(exc, ssl.SSLError):
            return "failed", f"the TLS handshake failed ({detail}); check that the server speaks FTPS"
        if isinstance(exc, OSError) and connecting:
            return "unreachable", f"{where} cannot be reached ({text}); check the host and the network"
        return "failed", text


class _FTPTLS(ftplib.FTP_TLS):
    """Explicit FTPS whose data connections resume the control connection's TLS session, which servers
    such as vsftpd (require_ssl_reuse, on by default) insist on; ftplib alone opens a new session."""

    def ntransfercmd(self, cmd: str, rest: int | str | None = None) -> tuple[socket.socket, int | None]:
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:  # type: ignore[attr-defined]  # set by prot_p()
            session = self.sock.session if isinstance(self.sock, ssl.SSLSocket) else None
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=session)
        return conn, size


class _FTPFileSystem(FTPFileSystem):  # type: ignore[misc]  # fsspec is untyped
    """fsspec's FTP with a TLS context of our own: fsspec's FTP_TLS would not check the certificate."""

    def __init__(self, *args: Any, ssl_context: ssl.SSLContext | None = None, **kwargs: Any) -> None:
        self._ssl_context = ssl_context
        super().__init__(*args, **kwargs)

    def _connect(self) -> None:
        ftp: ftplib.FTP
        if self.tls:
            ftp = _FTPTLS(context=self._ssl_context, timeout=self.timeout, encoding=self.encoding)
        else:
            ftp = ftplib.FTP(timeout=self.timeout, encoding=self.encoding)
        self.ftp = ftp
        ftp.connect(self.host, self.port)
        ftp.login(*self.cred)  # FTP_TLS.login sends AUTH TLS first


@contextlib.contextmanager
def _local_errors(path: Path) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise StorageError(
            f"cannot write {path} ({exc.strerror or exc}); free space or fix the folder's permissions "
            "(a download resumes from its .part)"
        ) from exc


def _modified(info: dict[str, Any]) -> datetime | None:
    """The modification time in UTC from an fsspec listing entry: SFTP and local `mtime`, S3
    `LastModified`, FTP MLSD `modify` (YYYYMMDDHHMMSS, UTC by RFC 3659)."""
    value = info.get("mtime", info.get("LastModified", info.get("modify")))
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return datetime.strptime(value[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    return None


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.splitlines()[0].split())[:200]
