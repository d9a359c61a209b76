"""Password hashing with argon2id (argon2-cffi's defaults follow RFC 9106's recommendations)."""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from cubeport.errors import InputError

_hasher = PasswordHasher()
MIN_LENGTH = 10


@cache
def _dummy_hash() -> str:
    """Verifying against this keeps a sign-in for an unknown user as slow as one for a known user."""
    return _hasher.hash("not-a-password-of-anyone")


def hash_password(password: str, *, check: bool = True) -> str:
    """The argon2id hash of a new password (checked for strength), or of a known one (`check=False`)."""
    if check:
        check_strength(password)
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _dummy_hash(), password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def check_strength(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise InputError(f"a password needs at least {MIN_LENGTH} characters")
    if password.strip() != password:
        raise InputError("a password must not start or end with blanks")
