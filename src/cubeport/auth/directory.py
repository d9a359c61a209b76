"""Users, groups and projects, and who belongs to which group: the local directory.

Local accounts carry an argon2 password hash. Users who sign in through an OIDC provider, or first send
one of its bearer tokens, are recorded too (named `provider:username`, bound to the provider's `sub`, no
password) so that a name belongs to one identity, and so that they can be listed, granted access and put
in local groups beside the groups their provider asserts.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from cubeport.auth.passwords import hash_password, needs_rehash, verify_password
from cubeport.auth.principal import ROLES, Principal, Role, Via
from cubeport.db import Database
from cubeport.db.models import GroupRecord, MembershipRecord, UserRecord
from cubeport.errors import ConflictError, InputError, NotFoundError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$")


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    provider: str
    active: bool
    has_password: bool
    groups: tuple[str, ...]
    created: datetime
    last_login: datetime | None


@dataclass(frozen=True)
class Group:
    name: str
    kind: str  # group | project
    title: str
    members: tuple[str, ...]


def check_name(name: str, what: str) -> str:
    if not NAME.match(name):
        raise InputError(
            f"{what} name {name!r} is not valid: use letters, digits and . _ @ - (at most 128), "
            "starting with a letter or digit"
        )
    return name


def check_role(role: str) -> Role:
    if role not in ROLES:
        raise InputError(f"role {role!r} is not one of {', '.join(ROLES)}")
    return role


def _stored_role(record: UserRecord) -> Role:
    """A user's role; the column is plain text, and every write to it passes `check_role` or is a `Role`."""
    return cast(Role, record.role)


class Directory:
    def __init__(self, db: Database) -> None:
        self.db = db

    # users

    def create_user(self, name: str, *, role: str = "viewer", password: str | None = None) -> User:
        check_name(name, "user")
        record = UserRecord(
            name=name,
            role=check_role(role),
            provider="local",
            active=True,
            external_groups=[],
            password_hash=hash_password(password) if password is not None else None,
        )
        with self.db.session() as session:
            if session.get(UserRecord, name) is not None:
                raise ConflictError(f"user {name!r} exists already")
            session.add(record)
        return self.user(name)

    def user(self, name: str) -> User:
        with self.db.session() as session:
            return self._user(session, self._record(session, name))

    def users(self) -> list[User]:
        with self.db.session() as session:
            return [
                self._user(session, r) for r in session.scalars(select(UserRecord).order_by(UserRecord.name))
            ]

    def update_user(
        self, name: str, *, role: str | None = None, active: bool | None = None, password: str | None = None
    ) -> User:
        with self.db.session() as session:
            record = self._record(session, name)
            if role is not None:
                record.role = check_role(role)
            if active is not None:
                record.active = active
            if password is not None:
                if record.provider != "local":
                    raise InputError(
                        f"user {name!r} signs in through {record.provider}; it has no password here"
                    )
                record.password_hash = hash_password(password)
        return self.user(name)

    def delete_user(self, name: str) -> None:
        with self.db.session() as session:
            session.delete(self._record(session, name))

    def has_admin(self) -> bool:
        with self.db.session() as session:
            query = select(UserRecord.name).where(UserRecord.role == "admin", UserRecord.active.is_(True))
            return session.scalars(query).first() is not None

    def verify_password(self, name: str, password: str) -> bool:
        """True if `name` is an active local account with this password; upgrades old hashes."""
        with self.db.session() as session:
            record = session.get(UserRecord, name)
            usable = record is not None and record.active and record.provider == "local"
            stored = record.password_hash if usable and record is not None else None
            if not verify_password(stored, password):
                return False
            assert record is not None
            if needs_rehash(record.password_hash or ""):  # stronger hashing settings since it was stored
                record.password_hash = hash_password(password, check=False)
            record.last_login = datetime.now(UTC)
            return True

    def groups_of(self, user: str) -> list[str]:
        """The local groups of a user; NotFoundError if the user is recorded but disabled."""
        with self.db.session() as session:
            record = session.get(UserRecord, user)
            if record is not None and not record.active:
                raise NotFoundError(f"user {user!r} is disabled")
            return self._groups_of(session, user)

    def principal(self, name: str, via: Via) -> Principal:
        """The principal of an active user: its role, its groups here and those its OIDC provider last asserted."""
        with self.db.session() as session:
            record = session.get(UserRecord, name)
            if record is None or not record.active:
                raise NotFoundError(f"user {name!r} does not exist or is disabled")
            groups = frozenset(self._groups_of(session, name)) | frozenset(record.external_groups or ())
            return Principal(
                name=name,
                role=_stored_role(record),
                groups=groups,
                via=via,
                provider=record.provider,
            )

    def bind_external(self, provider: str, subject: str, username: str) -> str:
        """The account name of a provider's user seen only through a bearer token: the account bound to
        (provider, subject), else `provider:username`, bound to that subject now (ConflictError if another
        subject's account holds the name). The new record carries no role or groups of the provider's (a
        viewer): a browser sign-in records those; a token's own role and groups count for its requests."""
        return self._external(provider, subject, username, lambda record: None)

    def record_external(
        self,
        provider: str,
        subject: str,
        username: str,
        *,
        role: Role,
        groups: frozenset[str] = frozenset(),
        display_name: str | None = None,
        email: str | None = None,
    ) -> str:
        """Create or refresh the record of a user signed in through an OIDC provider; returns its name.

        The account is the one bound to the provider's subject (a renamed user keeps theirs), bound as by
        `bind_external`; role and groups are those the provider asserts now; sessions and API keys of the
        user use them.
        """

        def refresh(record: UserRecord) -> None:
            record.role, record.display_name, record.email = role, display_name, email
            record.external_groups = sorted(groups)
            record.last_login = datetime.now(UTC)

        return self._external(provider, subject, username, refresh)

    def _external(
        self, provider: str, subject: str, username: str, change: Callable[[UserRecord], None]
    ) -> str:
        """The record bound to (provider, subject), created if there is none, `change`d; its name. A new
        record is an insert that succeeds only while no account holds the name (its primary key), so of two
        subjects racing for a name one gets it and the other a ConflictError."""

        def write() -> str:
            with self.db.session() as session:
                record = self._external_record(session, provider, subject, username)
                if record not in session:
                    session.add(record)
                change(record)
                return record.name

        try:
            return write()
        except ConflictError:  # a lost race for a new record is tried once more: it may have been our own
            return write()

    @staticmethod
    def _external_record(session: Session, provider: str, subject: str, username: str) -> UserRecord:
        """The record bound to (provider, subject), or a new one (not yet added) named `provider:username`."""
        query = select(UserRecord).where(UserRecord.provider == provider, UserRecord.subject == subject)
        bound = session.scalars(query.order_by(UserRecord.created)).first()
        if bound is not None:
            return bound
        name = f"{provider}:{username}"[:128]
        if session.get(UserRecord, name) is not None:
            raise ConflictError(f"the account name {name!r} is bound to another {provider} identity")
        return UserRecord(name=name, provider=provider, subject=subject, active=True)

    # groups and projects

    def create_group(self, name: str, *, kind: str = "group", title: str = "") -> Group:
        check_name(name, kind)
        if kind not in ("group", "project"):
            raise InputError(f"kind {kind!r} is not group or project")
        with self.db.session() as session:
            if session.get(GroupRecord, name) is not None:
                raise ConflictError(f"group {name!r} exists already")
            session.add(GroupRecord(name=name, kind=kind, title=title))
        return self.group(name)

    def group(self, name: str) -> Group:
        with self.db.session() as session:
            record = session.get(GroupRecord, name)
            if record is None:
                raise NotFoundError(f"group {name!r} does not exist; create it with `cubeport groups create`")
            return self._group(session, record)

    def groups(self) -> list[Group]:
        with self.db.session() as session:
            return [
                self._group(session, r)
                for r in session.scalars(select(GroupRecord).order_by(GroupRecord.name))
            ]

    def delete_group(self, name: str) -> None:
        self.group(name)
        with self.db.session() as session:
            session.execute(delete(GroupRecord).where(GroupRecord.name == name))

    def add_member(self, group: str, user: str) -> Group:
        self.group(group)
        with self.db.session() as session:
            self._record(session, user)
            if session.get(MembershipRecord, (group, user)) is None:
                session.add(MembershipRecord(group_name=group, user_name=user))
        return self.group(group)

    def remove_member(self, group: str, user: str) -> Group:
        with self.db.session() as session:
            membership = session.get(MembershipRecord, (group, user))
            if membership is None:
                raise NotFoundError(f"user {user!r} is not a member of {group!r}")
            session.delete(membership)
        return self.group(group)

    # helpers

    @staticmethod
    def _record(session: Session, name: str) -> UserRecord:
        record = session.get(UserRecord, name)
        if record is None:
            raise NotFoundError(f"user {name!r} does not exist; create it with `cubeport users create`")
        return record

    @staticmethod
    def _groups_of(session: Session, user: str) -> list[str]:
        query = select(MembershipRecord.group_name).where(MembershipRecord.user_name == user)
        return sorted(session.scalars(query))

    def _user(self, session: Session, record: UserRecord) -> User:
        return User(
            record.name,
            _stored_role(record),
            record.provider,
            record.active,
            record.password_hash is not None,
            tuple(self._groups_of(session, record.name)),
            record.created,
            record.last_login,
        )

    @staticmethod
    def _group(session: Session, record: GroupRecord) -> Group:
        query = select(MembershipRecord.user_name).where(MembershipRecord.group_name == record.name)
        return Group(record.name, record.kind, record.title, tuple(sorted(session.scalars(query))))
