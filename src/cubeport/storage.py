"""One storage abstraction over a local folder and S3.

Cubeport keeps everything it writes under one data root. `Storage` resolves paths below that root, hands
out Zarr stores, and offers the few object operations the cube store needs (atomic small writes, listing,
deleting a tree). fsspec (s3fs on S3) does the management and the writes; Zarr reads on S3 go through
obstore, which `benchmarks/chunk_reads.py` measured 3.4x faster per chunk than s3fs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import fsspec
import zarr.storage

from cubeport.config import S3Settings, Settings
from cubeport.errors import StorageError

if TYPE_CHECKING:
    from obstore.store import ClientConfig, S3Config, S3Store
    from zarr.abc.store import Store


class Storage:
    """A data root (`/some/folder` or `s3://bucket/prefix`) and the operations Cubeport does below it."""

    def __init__(self, root: str, s3: S3Settings | None = None) -> None:
        self.is_s3 = root.startswith("s3://")
        self.root = root.rstrip("/") if self.is_s3 else str(Path(root).absolute())
        self._s3 = s3 or S3Settings()
        self.fs = self._filesystem(asynchronous=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Storage:
        return cls(settings.data_root, settings.s3)

    def _storage_options(self) -> dict[str, Any]:
        s3 = self._s3
        options: dict[str, Any] = {
            "client_kwargs": {"region_name": s3.region},
            "config_kwargs": {
                "connect_timeout": s3.connect_timeout,
                "read_timeout": 60,
                "retries": {"max_attempts": 2, "mode": "standard"},
            },
            "skip_instance_cache": True,
        }
        if s3.endpoint_url:
            options["endpoint_url"] = s3.endpoint_url
        if s3.access_key_id and s3.secret_access_key:
            options["key"] = s3.access_key_id.get_secret_value()
            options["secret"] = s3.secret_access_key.get_secret_value()
        else:
            options["anon"] = False
        return options

    def _filesystem(self, asynchronous: bool) -> fsspec.AbstractFileSystem:
        if self.is_s3:
            return fsspec.filesystem("s3", asynchronous=asynchronous, **self._storage_options())
        return fsspec.filesystem("file")

    # -- paths -----------------------------------------------------------------------------------------
    def path(self, *parts: str) -> str:
        """The filesystem path (no protocol) of `parts` below the root."""
        base = self.root.removeprefix("s3://")
        return "/".join([base, *[p.strip("/") for p in parts if p]])

    def url(self, *parts: str) -> str:
        """The full URL of `parts` below the root, as other tools (xarray, GDAL) would open it."""
        return ("s3://" if self.is_s3 else "") + self.path(*parts)

    # -- checks ----------------------------------------------------------------------------------------
    def check(self) -> None:
        """Raise StorageError with a helpful message when the root cannot be reached or written."""
        try:
            if self.is_s3:
                bucket = self.path().split("/", 1)[0]
                self.fs.ls(bucket, refresh=True)
            else:
                Path(self.root).mkdir(parents=True, exist_ok=True)
                if not os.access(self.root, os.W_OK):
                    raise PermissionError(f"{self.root} is not writable")
        except Exception as exc:  # every client error becomes one readable line
            raise StorageError(describe_storage_error(self.root, exc)) from exc

    # -- objects ---------------------------------------------------------------------------------------
    def exists(self, *parts: str) -> bool:
        return bool(self.fs.exists(self.path(*parts)))

    def read_bytes(self, *parts: str) -> bytes:
        data: bytes = self.fs.cat_file(self.path(*parts))  # fsspec has no type hints
        return data

    def write_bytes_atomic(self, data: bytes, *parts: str) -> None:
        """Write a small object so that readers see either the old or the new content, never a part."""
        target = self.path(*parts)
        if self.is_s3:
            self.fs.pipe_file(target, data)  # one PUT: S3 makes it visible whole or not at all
            return
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        tmp = f"{target}.{uuid.uuid4().hex}.partial"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)

    def put_file_atomic(self, local_path: str, *parts: str) -> None:
        """Copy a (possibly large) local file below the root; readers never see a part of it."""
        target = self.path(*parts)
        if self.is_s3:
            self.fs.put_file(local_path, target)  # a multipart upload appears only once it is complete
            return
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        tmp = f"{target}.{uuid.uuid4().hex}.partial"
        shutil.copyfile(local_path, tmp)
        os.replace(tmp, target)

    def size(self, *parts: str) -> int:
        return int(self.fs.size(self.path(*parts)))

    def read_range(self, start: int, end: int, *parts: str) -> bytes:
        """Bytes start..end (end exclusive) of an object."""
        data: bytes = self.fs.cat_file(self.path(*parts), start=start, end=end)  # fsspec has no type hints
        return data

    def list_dirs(self, *parts: str) -> list[str]:
        """Names of the immediate sub-folders (common prefixes on S3) below `parts`."""
        return self._list(parts, "directory")

    def list_files(self, *parts: str) -> list[str]:
        """Names of the files (objects) directly below `parts`."""
        return self._list(parts, "file")

    def _list(self, parts: tuple[str, ...], kind: str) -> list[str]:
        try:
            entries = self.fs.ls(self.path(*parts), detail=True, refresh=True)  # not a cached listing
        except FileNotFoundError:
            return []
        return sorted(e["name"].rstrip("/").rsplit("/", 1)[-1] for e in entries if e["type"] == kind)

    def delete_tree(self, *parts: str) -> None:
        target = self.path(*parts)
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(target, recursive=True)
        if self.is_s3:  # some servers (SeaweedFS) keep a folder marker object; remove it too
            for marker in (target + "/", target):
                with contextlib.suppress(FileNotFoundError, OSError):
                    self.fs.rm_file(marker)
            self.fs.invalidate_cache()

    # -- zarr ------------------------------------------------------------------------------------------
    def zarr_store(self, *parts: str, read_only: bool = False) -> Store:
        """A Zarr store at `parts` below the root."""
        if not self.is_s3:
            return zarr.storage.LocalStore(self.path(*parts), read_only=read_only)
        if read_only:  # obstore reads chunks 3.4x faster than s3fs (benchmarks/chunk_reads.py)
            return zarr.storage.ObjectStore(self._object_store(*parts), read_only=True)
        return zarr.storage.FsspecStore(self._async_fs, path=self.path(*parts), read_only=False)

    def _object_store(self, *parts: str) -> S3Store:
        from obstore.store import S3Store

        bucket, _, prefix = self.path(*parts).partition("/")
        s3 = self._s3
        config: S3Config = {"region": s3.region}
        if s3.endpoint_url:
            config["endpoint"] = s3.endpoint_url
            config["virtual_hosted_style_request"] = False
        if s3.access_key_id and s3.secret_access_key:
            config["access_key_id"] = s3.access_key_id.get_secret_value()
            config["secret_access_key"] = s3.secret_access_key.get_secret_value()
        client: ClientConfig = {"allow_http": True, "connect_timeout": f"{int(s3.connect_timeout)}s"}
        return S3Store(bucket, prefix=prefix, config=config, client_options=client)

    @cached_property
    def _async_fs(self) -> fsspec.AbstractFileSystem:
        """One async S3 filesystem (one connection pool) shared by every Zarr store of this root."""
        return self._filesystem(asynchronous=True)


def describe_storage_error(root: str, exc: BaseException) -> str:
    """One line that tells a user what went wrong with the storage and how to fix it."""
    text = f"{type(exc).__name__}: {exc}"
    credentials_words = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "Forbidden", "403")
    if any(w in text for w in credentials_words) or isinstance(exc, PermissionError):
        return (
            f"storage {root} refused the credentials ({_short(exc)}); "
            "check CUBEPORT_S3__ACCESS_KEY_ID and CUBEPORT_S3__SECRET_ACCESS_KEY"
        )
    if "NoSuchBucket" in text or isinstance(exc, FileNotFoundError):
        return f"storage {root} does not exist ({_short(exc)}); create the bucket or folder first"
    if any(w in text for w in ("Connect", "connect", "Timeout", "timed out", "Name or service")):
        return (
            f"storage {root} is unreachable ({_short(exc)}); "
            "check CUBEPORT_S3__ENDPOINT_URL and that the server is running"
        )
    return f"storage {root} failed: {_short(exc)}"


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
