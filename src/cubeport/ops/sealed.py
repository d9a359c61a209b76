"""Credentials of watchers and delivery targets, kept encrypted in the database.

They are sealed with a key derived from the server's secret (`platform.secret_key`), so a copy of the
database alone does not give away the provider's or the portal's passwords, and they are never shown back:
listings say only which fields are set.
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, fields

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from cubeport.errors import StorageError
from cubeport.ops.remotes import Credentials

_PURPOSE = b"cubeport ops credentials"  # what this key is derived for, and nothing else


class Sealer:
    def __init__(self, secret: bytes) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_PURPOSE).derive(secret)
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def seal(self, credentials: Credentials | None) -> str:
        if credentials is None or not any(asdict(credentials).values()):
            return ""
        values = {k: v for k, v in asdict(credentials).items() if v is not None}
        return self._fernet.encrypt(json.dumps(values).encode()).decode()

    def unseal(self, sealed: str) -> Credentials | None:
        if not sealed:
            return None
        try:
            values = json.loads(self._fernet.decrypt(sealed.encode()))
        except InvalidToken:
            raise StorageError(
                "stored credentials cannot be read with this server's secret key (was secret_key changed?); "
                "set them again"
            ) from None
        known = {f.name for f in fields(Credentials)}
        return Credentials(**{k: v for k, v in values.items() if k in known})


def described(credentials: Credentials | None) -> list[str]:
    """Which fields are set (never their values), for listings."""
    return [] if credentials is None else [k for k, v in asdict(credentials).items() if v]
