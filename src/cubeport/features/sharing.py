"""Ownership and sharing of feature collections, as geoDB users know them.

Collections live in databases (namespaces). A database is owned by the user who created it, or by a group
or project they belong to; its owners (the user, or the group's members with the editor role) create,
drop, rename and share the collections in it, as in geoDB, where the database owner holds the tables. A
new collection is private to its owner: restricted, readable and writable by the owning user, group or
project, a rule written in the transaction that creates its table, so it is never public for a moment.
Its owners may publish it (public read), grant read or write to a user, group or project, and revoke;
others with a write grant write data only. The owner is recorded in the rule (the policy's owning user
or project), so it keeps reading and writing whatever is revoked, and cannot be revoked itself.
The rules are the identity layer's (`Policy`, resource kind "collection", id "database.name"), so every
route that guards a collection enforces them. A project is a kind of group there: a principal's groups
include its projects, so "project" is the word users say and "group" the subject the policy keeps.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Literal

import sqlalchemy as sa

from cubeport.auth.policy import Access, Action, Policy, SubjectType
from cubeport.auth.principal import Principal
from cubeport.errors import ConflictError, InputError, PermissionDeniedError
from cubeport.features.observations import Observations
from cubeport.features.schema import CollectionSpec, check_name
from cubeport.features.store import FeatureStore

KIND = "collection"
OwnerType = Literal["user", "group", "project"]
MEMBERSHIPS = ("group", "project")  # owners and subjects whose members a principal's groups name
_DATABASES = sa.Table(  # as migration 0004 makes it
    "feature_databases",
    sa.MetaData(),
    sa.Column("name", sa.String(48), primary_key=True),
    sa.Column("owner_type", sa.String(8)),
    sa.Column("owner", sa.String(128)),
    sa.Column("created", sa.DateTime(timezone=True)),
)


class FeatureSharing:
    """The feature store as seen by one platform: databases with owners, collections with access rules."""

    def __init__(self, store: FeatureStore, policy: Policy) -> None:
        self.store, self.policy = store, policy

    # -- databases -----------------------------------------------------------------------------------------
    def owner(self, database: str) -> tuple[str, str] | None:
        """(owner type, name) of the database's owner; None while nobody has claimed it."""
        with self.store.engine.connect() as connection:
            row = connection.execute(
                sa.select(_DATABASES.c.owner_type, _DATABASES.c.owner).where(
                    _DATABASES.c.name == check_name(database, "database")
                )
            ).first()
        return (row.owner_type, row.owner) if row else None

    def claim(
        self, principal: Principal, database: str, owner: tuple[OwnerType, str] | None = None
    ) -> tuple[str, str]:
        """Make `database` the caller's, or (with `owner`, e.g. ("project", "balticaims")) one of the caller's
        groups' or projects'; owners may re-claim."""
        if principal.anonymous or not principal.has_role("editor"):
            raise PermissionDeniedError("creating feature databases and collections needs the editor role")
        if owner is not None and owner[0] in MEMBERSHIPS:
            if owner[1] not in principal.groups and not principal.is_admin:
                raise PermissionDeniedError(f"you are not a member of {owner[0]} {owner[1]!r}")
        elif owner is not None and owner != ("user", principal.name):
            raise PermissionDeniedError("a database is yours or one of your groups' or projects'")
        current = self.owner(database)
        if current is not None:
            if not _owned_by(principal, current):
                raise ConflictError(
                    f"database {database!r} belongs to {current[0]} {current[1]}; choose another name"
                )
            return current
        owner = owner or ("user", str(principal.name))
        with self.store.engine.begin() as connection:
            connection.execute(
                _DATABASES.insert().values(
                    name=database, owner_type=owner[0], owner=owner[1], created=datetime.now(UTC)
                )
            )
        return owner

    def databases(self, principal: Principal) -> list[dict[str, str]]:
        """The databases the caller owns (all, for admins)."""
        with self.store.engine.connect() as connection:
            rows = connection.execute(sa.select(_DATABASES).order_by(_DATABASES.c.name)).mappings().all()
        return [
            {"name": r["name"], "owner": f"{r['owner_type']}:{r['owner']}"}
            for r in rows
            if _owned_by(principal, (r["owner_type"], r["owner"]))
        ]

    # -- collections ---------------------------------------------------------------------------------------
    def collections(self, principal: Principal, database: str | None = None) -> list[CollectionSpec]:
        """The collections the caller may read (theirs, shared with them, public)."""
        specs = {s.id: s for s in self.store.list(database)}
        return [specs[i] for i in self.policy.visible(principal, KIND, list(specs))]

    def create(
        self, principal: Principal, spec: CollectionSpec, owner: tuple[OwnerType, str] | None = None
    ) -> CollectionSpec:
        """A new collection, private to the database's owner (claiming the database if it is new)."""
        spec = spec.checked()
        owner_type, owner_name = self.claim(principal, spec.database, owner)
        created = self.store.create(
            replace(spec, owner=f"{owner_type}:{owner_name}"),
            on_create=lambda connection: self._private(connection, spec.id, owner_type, owner_name),
        )
        self.policy.changed(KIND, created.id)
        return created

    def drop(self, database: str, name: str) -> None:
        """Drop a collection with its observations and rules (routes check `check_manages` first)."""
        spec = self.store.get(database, name)
        self.store.drop(database, name)
        Observations(self.store).drop(spec.id)
        self.policy.forget(KIND, spec.id)

    def rename(self, database: str, name: str, new_name: str) -> CollectionSpec:
        """Rename within the database, carrying the rules (routes check `check_manages` first)."""
        renamed = self.store.rename(database, name, new_name)
        self.policy.move(KIND, f"{database}.{name}", renamed.id)
        Observations(self.store).move(f"{database}.{name}", renamed.id)
        return renamed

    def copy(
        self, principal: Principal, database: str, name: str, to_database: str, to_name: str
    ) -> CollectionSpec:
        """A copy in a database of the caller's, private to its owner."""
        self.store.get(database, name)  # a missing source answers as a hidden one (404), before any claim
        owner_type, owner = self.claim(principal, to_database)
        copied = self.store.copy(
            database,
            name,
            to_database,
            to_name,
            on_create=lambda connection: self._private(
                connection, f"{to_database}.{to_name}", owner_type, owner
            ),
        )
        self.policy.changed(KIND, copied.id)
        return copied

    # -- sharing -------------------------------------------------------------------------------------------
    def manages(self, principal: Principal, collection_id: str) -> bool:
        """Whether the caller may share, rename or drop the collection: an admin, or an owner of its database
        (the owning user, or a member with the editor role of the owning group or project)."""
        database = collection_id.partition(".")[0]
        return principal.is_admin or (
            principal.has_role("editor") and _owned_by(principal, self.owner(database))
        )

    def check_manages(self, principal: Principal, collection_id: str) -> None:
        if not self.manages(principal, collection_id):
            raise PermissionDeniedError(
                f"only the owner of database {collection_id.partition('.')[0]!r} or an admin may share, "
                "rename or drop its collections; a write grant allows writing features"
            )

    def publish(self, principal: Principal, collection_id: str, public: bool = True) -> Access:
        """Make the collection readable by everyone (or take that back), keeping its grants."""
        self.check_manages(principal, collection_id)
        return self.policy.set_public(KIND, collection_id, public)

    def grant(
        self,
        principal: Principal,
        collection_id: str,
        subject_type: OwnerType,
        subject: str,
        permission: Action = "read",
    ) -> Access:
        self.check_manages(principal, collection_id)
        if not subject:
            raise InputError("grant to a named user, group or project")
        return self.policy.grant(KIND, collection_id, _subject_type(subject_type), subject, permission)

    def revoke(
        self, principal: Principal, collection_id: str, subject_type: OwnerType, subject: str
    ) -> Access:
        """Take a grant away; never from the database's owner (collections made before owners were recorded in
        the rule are covered by this check too)."""
        self.check_manages(principal, collection_id)
        owner = self.owner(collection_id.partition(".")[0])
        if owner is not None and (_subject_type(subject_type), subject) == (
            _subject_type(owner[0]),
            owner[1],
        ):
            raise InputError(f"{owner[0]} {owner[1]!r} owns {collection_id!r}; an owner cannot be revoked")
        return self.policy.revoke(KIND, collection_id, _subject_type(subject_type), subject)

    def _private(self, connection: sa.Connection, collection_id: str, owner_type: str, owner: str) -> None:
        """The new collection's rule: its owning user, or the owning group or project (whose members read,
        and write with the editor role)."""
        if owner_type in MEMBERSHIPS:
            self.policy.restrict_new(connection, KIND, collection_id, owner=owner)
        else:
            self.policy.restrict_new(connection, KIND, collection_id, owner_user=owner)


def _owned_by(principal: Principal, owner: tuple[str, str] | None) -> bool:
    """Whether the caller is (or, for a group, belongs to) the owner; admins own everything."""
    return (
        principal.is_admin
        or owner is not None
        and (owner == ("user", principal.name) or owner[0] in MEMBERSHIPS and owner[1] in principal.groups)
    )


def _subject_type(subject_type: str) -> SubjectType:
    """The policy's subject for a user, group or project (projects are groups there)."""
    return "user" if subject_type == "user" else "group"
