"""The server's secret key: it signs what the server hands out and must recognise when it comes back (the
paging tokens of federated STAC search), so that a client cannot make up its own.

It is the `secret_key` setting when one is set. Otherwise it is generated once and kept under the data root
(`platform/secret-key`), where every worker of a deployment finds the same one. The first worker to need it
creates it: on a local disk a 0600 file linked into place only if none is there yet, on S3 one conditional
PUT (If-None-Match); a worker that comes second reads the first one's key.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import uuid
from pathlib import Path

from pydantic import SecretStr

from cubeport.errors import StorageError
from cubeport.storage import Storage, describe_storage_error

PARTS = ("platform", "secret-key")
MIN_BYTES = 32


def server_secret(configured: SecretStr | None, storage: Storage) -> bytes:
    """The configured secret, else the one kept in `storage` (made on first use)."""
    if configured is not None:
        return configured.get_secret_value().encode()
    try:
        if not storage.exists(*PARTS):
            _create(storage, secrets.token_urlsafe(48).encode())
        key = storage.read_bytes(*PARTS)
    except Exception as exc:
        raise StorageError(describe_storage_error(storage.root, exc)) from exc
    if len(key) < MIN_BYTES:
        raise StorageError(
            f"the server's secret key ({'/'.join(PARTS)} under the data root) is too short: delete it "
            "and a new one is made, or set secret_key"
        )
    return key


def _create(storage: Storage, key: bytes) -> None:
    """Store `key` unless a key is there already (then that one stands)."""
    target = storage.path(*PARTS)
    if storage.is_s3:
        try:
            storage.fs.pipe_file(target, key, mode="create")
        except OSError:  # 412 Precondition Failed (s3fs does not always call it FileExistsError)
            storage.fs.invalidate_cache(target)
            if not storage.fs.exists(target):
                raise
        return
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    partial = f"{target}.{uuid.uuid4().hex}.partial"
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(key)
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(partial, target)  # atomic, and refused if another worker linked its key first
    finally:
        os.unlink(partial)
