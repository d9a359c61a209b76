"""Who may read or write which resource: the one policy every route and command asks.

Each resource (a cube, feature collection, process or service) is public or restricted. A restricted
resource is readable by the users and groups (projects included) granted access to it; writing needs
the editor role and a write grant, or owning it: being the user who owns it (a grant with permission
`owner`) or a member of the project that owns it. Owners always read and write, whatever is granted,
revoked or restricted; an owner cannot be revoked. Admins may do anything.
A resource nobody has set access for follows the configured default. Such a rule is not cached for feature
collections, so one created by another process is never taken for a public one (their private rule is
written in the transaction that creates them, see `restrict_new`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import Connection, delete, insert, select, update

from cubeport.auth.principal import Principal
from cubeport.db import Database
from cubeport.db.models import GrantRecord, ResourceAccessRecord
from cubeport.errors import InputError
from cubeport.memory_cache import TtlCache

Kind = Literal["cube", "collection", "process", "service", "job"]
KINDS: tuple[Kind, ...] = ("cube", "collection", "process", "service", "job")
Action = Literal["read", "write"]
SubjectType = Literal["group", "user"]
OWNER = "owner"  # the permission of the grant that names a resource's owning user


@dataclass(frozen=True)
class Access:
    """A resource's access rule: public or not, its owners (a project, a user) and the grants."""

    kind: str
    resource_id: str
    public: bool
    owner: str | None = None  # the owning project (group)
    readers: frozenset[tuple[str, str]] = field(default_factory=frozenset)  # (subject_type, subject)
    writers: frozenset[tuple[str, str]] = field(default_factory=frozenset)
    owner_user: str | None = None

    def owned_by(self, principal: Principal) -> bool:
        """Whether the principal is the owning user or a member of the owning project."""
        return not principal.anonymous and (
            (self.owner_user is not None and self.owner_user == principal.name)
            or (self.owner is not None and self.owner in principal.groups)
        )

    def is_owner(self, subject_type: str, subject: str) -> bool:
        return (subject_type, subject) in (("user", self.owner_user), ("group", self.owner))

    def names(self, subject_type: SubjectType, *, writing: bool = False) -> list[str]:
        """The groups or users granted reading (writers read too), or with `writing` those granted writing."""
        subjects = self.writers if writing else self.readers | self.writers
        return sorted(s for t, s in subjects if t == subject_type)

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "id": self.resource_id,
            "access": "public" if self.public else "restricted",
            "owner": self.owner,
            "owner_user": self.owner_user,
            "groups": self.names("group"),
            "users": self.names("user"),
            "writers": {
                "groups": self.names("group", writing=True),
                "users": self.names("user", writing=True),
            },
        }


def check_kind(kind: str) -> Kind:
    if kind not in KINDS:
        raise InputError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    return kind


class Policy:
    """Access rules in the database, with a short in-process cache (rules change rarely, tiles come often)."""

    CACHE_SECONDS = 5.0

    def __init__(self, db: Database, *, default_public: bool = True) -> None:
        self.db = db
        self.default_public = default_public
        self._cache: TtlCache[tuple[str, str], Access] = TtlCache(self.CACHE_SECONDS)

    def allows(self, principal: Principal, action: Action, kind: str, resource_id: str) -> bool:
        """May `principal` read (see, list, get data of) or write (change) this resource?"""
        if principal.is_admin:
            return True
        access = self.access(kind, resource_id)
        if action == "read" and access.public:
            return True
        subjects = self._subjects(principal)
        if action == "read":
            return bool(subjects & (access.readers | access.writers)) or access.owned_by(principal)
        return principal.has_role("editor") and (
            bool(subjects & access.writers) or access.owned_by(principal)
        )

    def visible(self, principal: Principal, kind: str, resource_ids: Iterable[str]) -> list[str]:
        """The ids among `resource_ids` that `principal` may read, in the given order."""
        return [r for r in resource_ids if self.allows(principal, "read", kind, r)]

    def known_public(self, kind: str, resource_id: str) -> bool:
        """Whether the cached rules already say the resource is public: a check that never waits for the
        database (False when they are not cached; `allows` then tells)."""
        access = self._cache.get((kind, resource_id))
        return access is not None and access.public

    def is_restricted(self, kind: str, resource_id: str) -> bool:
        return not self.access(kind, resource_id).public

    def access(self, kind: str, resource_id: str) -> Access:
        key = (check_kind(kind), resource_id)
        access = self._cache.get(key)
        if access is None:
            access, recorded = self._load(*key)
            if recorded or kind != "collection":  # a collection without a rule may be one being created
                self._cache.put(key, access)
        return access

    def set_access(
        self,
        kind: str,
        resource_id: str,
        *,
        public: bool,
        groups: Iterable[str] = (),
        users: Iterable[str] = (),
        owner: str | None = None,
    ) -> Access:
        """Make a resource public, or restricted to the given groups and users (replacing their read grants)."""
        kind = check_kind(kind)
        readers = {("group", g) for g in groups} | {("user", u) for u in users}
        owner_user = self.access(kind, resource_id).owner_user
        if not public and not readers and owner is None and owner_user is None:
            raise InputError("a restricted resource needs at least one group, user or owning project")
        with self.db.session() as session:
            record = session.get(ResourceAccessRecord, (kind, resource_id))
            if record is None:
                record = ResourceAccessRecord(kind=kind, resource_id=resource_id, public=public)
                session.add(record)
            record.public, record.owner = public, owner
            if not public:
                session.execute(
                    delete(GrantRecord).where(
                        GrantRecord.kind == kind,
                        GrantRecord.resource_id == resource_id,
                        GrantRecord.permission == "read",
                    )
                )
                for subject_type, subject in sorted(readers - {("user", owner_user)}):  # owners read anyway
                    session.merge(
                        GrantRecord(
                            kind=kind,
                            resource_id=resource_id,
                            subject_type=subject_type,
                            subject=subject,
                            permission="read",
                        )
                    )
        return self._changed(kind, resource_id)

    def set_public(self, kind: str, resource_id: str, public: bool) -> Access:
        """Publish a resource or take it back, keeping its grants and owner."""
        access = self.access(kind, resource_id)
        if not public and not (access.readers or access.writers or access.owner or access.owner_user):
            raise InputError("grant access to a user or group before restricting the resource to them")
        with self.db.session() as session:
            record = session.get(ResourceAccessRecord, (access.kind, resource_id))
            if record is None:
                session.add(ResourceAccessRecord(kind=access.kind, resource_id=resource_id, public=public))
            else:
                record.public = public
        return self._changed(access.kind, resource_id)

    def grant(
        self,
        kind: str,
        resource_id: str,
        subject_type: SubjectType,
        subject: str,
        permission: Action = "read",
    ) -> Access:
        """Give a group or user read or write permission on a resource (keeping its public flag)."""
        kind = check_kind(kind)
        if subject_type not in ("group", "user") or permission not in ("read", "write"):
            raise InputError("grant to a group or user, with permission read or write")
        with self.db.session() as session:
            if session.get(ResourceAccessRecord, (kind, resource_id)) is None:
                session.add(
                    ResourceAccessRecord(kind=kind, resource_id=resource_id, public=self.default_public)
                )
            held = session.get(GrantRecord, (kind, resource_id, subject_type, subject))
            if held is not None and held.permission == OWNER:  # the owner has every permission already
                return self._changed(kind, resource_id)
            session.merge(
                GrantRecord(
                    kind=kind,
                    resource_id=resource_id,
                    subject_type=subject_type,
                    subject=subject,
                    permission=permission,
                )
            )
        return self._changed(kind, resource_id)

    def revoke(self, kind: str, resource_id: str, subject_type: SubjectType, subject: str) -> Access:
        """Take a user's or group's grant away; an owner cannot be revoked (InputError)."""
        kind = check_kind(kind)
        if self._load(kind, resource_id)[0].is_owner(subject_type, subject):
            raise InputError(
                f"{subject_type} {subject!r} owns {kind} {resource_id!r}; an owner cannot be revoked"
            )
        with self.db.session() as session:
            session.execute(
                delete(GrantRecord).where(
                    GrantRecord.kind == kind,
                    GrantRecord.resource_id == resource_id,
                    GrantRecord.subject_type == subject_type,
                    GrantRecord.subject == subject,
                )
            )
        return self._changed(kind, resource_id)

    def restrict_new(
        self,
        connection: Connection,
        kind: str,
        resource_id: str,
        *,
        owner: str | None = None,
        owner_user: str | None = None,
    ) -> None:
        """Write the private rule of a resource being created through the connection whose transaction creates
        it, so that it is never seen without one: readable and writable by its owning project or user only.
        Rules an earlier resource of the id left are replaced. Call `changed` once the transaction commits."""
        kind = check_kind(kind)
        if (owner is None) == (owner_user is None):
            raise InputError("a new private resource has one owner: a project or a user")
        for table in (GrantRecord, ResourceAccessRecord):
            connection.execute(delete(table).where(table.kind == kind, table.resource_id == resource_id))
        connection.execute(
            insert(ResourceAccessRecord).values(kind=kind, resource_id=resource_id, public=False, owner=owner)
        )
        if owner_user is not None:
            connection.execute(
                insert(GrantRecord).values(
                    kind=kind,
                    resource_id=resource_id,
                    subject_type="user",
                    subject=owner_user,
                    permission=OWNER,
                )
            )

    def changed(self, kind: str, resource_id: str) -> Access:
        """The rule as stored now, after a change this object did not make (e.g. by `restrict_new`)."""
        return self._changed(check_kind(kind), resource_id)

    def forget(self, kind: str, resource_id: str) -> None:
        """Drop a deleted resource's rules, so that a new resource of the same id starts from the default."""
        kind = check_kind(kind)
        with self.db.session() as session:
            for table in (GrantRecord, ResourceAccessRecord):
                session.execute(delete(table).where(table.kind == kind, table.resource_id == resource_id))
        self._changed(kind, resource_id)

    def move(self, kind: str, old_id: str, new_id: str) -> None:
        """Carry a renamed resource's rules over to its new id."""
        kind = check_kind(kind)
        with self.db.session() as session:
            for table in (GrantRecord, ResourceAccessRecord):
                session.execute(
                    update(table)
                    .where(table.kind == kind, table.resource_id == old_id)
                    .values(resource_id=new_id)
                )
        self._changed(kind, old_id)
        self._changed(kind, new_id)

    def refresh(self) -> None:
        """Forget cached rules, e.g. after another process changed them."""
        self._cache.clear()

    def _changed(self, kind: str, resource_id: str) -> Access:
        self._cache.pop((kind, resource_id))
        return self.access(kind, resource_id)

    def _load(self, kind: str, resource_id: str) -> tuple[Access, bool]:
        """The rule, and whether one is stored (else it is the default)."""
        with self.db.session() as session:
            record = session.get(ResourceAccessRecord, (kind, resource_id))
            grants = session.scalars(
                select(GrantRecord).where(GrantRecord.kind == kind, GrantRecord.resource_id == resource_id)
            ).all()
            owners = [g.subject for g in grants if g.permission == OWNER and g.subject_type == "user"]
            access = Access(
                kind,
                resource_id,
                self.default_public if record is None else record.public,
                record.owner if record else None,
                frozenset((g.subject_type, g.subject) for g in grants if g.permission == "read"),
                frozenset((g.subject_type, g.subject) for g in grants if g.permission == "write"),
                owners[0] if owners else None,
            )
            return access, record is not None

    @staticmethod
    def _subjects(principal: Principal) -> frozenset[tuple[str, str]]:
        if principal.name is None:  # anonymous
            return frozenset()
        return frozenset({("user", principal.name)} | {("group", g) for g in principal.groups})
