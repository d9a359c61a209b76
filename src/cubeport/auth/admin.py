"""Administrative changes to identities and access, each written to the audit log.

The CLI and the admin API both call these, so an operator's change is recorded the same way whichever
face it came through. `by` names who made it ("command line" for the CLI). Changes to users and groups
also clear the cached identities of this process.
"""

from __future__ import annotations

from collections.abc import Iterable

from cubeport.auth.authenticator import Authenticator
from cubeport.auth.directory import Group, User
from cubeport.auth.policy import Access, Action, Policy, SubjectType


class Administration:
    def __init__(self, auth: Authenticator, policy: Policy) -> None:
        self.auth, self.policy = auth, policy
        self.directory, self.audit = auth.directory, auth.audit

    def _log(
        self, detail: str, *, user: str | None = None, kind: str | None = None, resource_id: str | None = None
    ) -> None:
        self.audit.record("access-changed", user=user, kind=kind, resource_id=resource_id, detail=detail)

    # users and groups

    def create_user(self, name: str, *, role: str = "viewer", password: str | None = None, by: str) -> User:
        user = self.directory.create_user(name, role=role, password=password)
        self._log(f"user created ({user.role}) by {by}", user=name)
        return user

    def update_user(
        self,
        name: str,
        *,
        role: str | None = None,
        active: bool | None = None,
        password: str | None = None,
        by: str,
    ) -> User:
        """Change a user; disabling it or setting its password ends its sessions."""
        user = self.directory.update_user(name, role=role, active=active, password=password)
        if active is False or password is not None:
            self.auth.sessions.end_all(name)
        self.auth.forget_credentials()
        changed = [
            k for k, v in (("role", role), ("active", active), ("password", password)) if v is not None
        ]
        self._log(f"user changed by {by}: {', '.join(changed)}", user=name)
        return user

    def delete_user(self, name: str, *, by: str) -> None:
        self.directory.delete_user(name)
        self.auth.sessions.end_all(name)
        self.auth.forget_credentials()
        self._log(f"user deleted by {by}", user=name)

    def create_group(self, name: str, *, kind: str = "group", title: str = "", by: str) -> Group:
        group = self.directory.create_group(name, kind=kind, title=title)
        self._log(f"{group.kind} {name} created by {by}")
        return group

    def delete_group(self, name: str, *, by: str) -> None:
        self.directory.delete_group(name)
        self.auth.forget_credentials()
        self._log(f"group {name} deleted by {by}")

    def add_member(self, group: str, user: str, *, by: str) -> Group:
        updated = self.directory.add_member(group, user)
        self.auth.forget_credentials()
        self._log(f"added to {group} by {by}", user=user)
        return updated

    def remove_member(self, group: str, user: str, *, by: str) -> Group:
        updated = self.directory.remove_member(group, user)
        self.auth.forget_credentials()
        self._log(f"removed from {group} by {by}", user=user)
        return updated

    # access to resources

    def set_access(
        self,
        kind: str,
        resource_id: str,
        *,
        public: bool,
        groups: Iterable[str] = (),
        users: Iterable[str] = (),
        owner: str | None = None,
        by: str,
    ) -> Access:
        groups, users = sorted(groups), sorted(users)
        access = self.policy.set_access(
            kind, resource_id, public=public, groups=groups, users=users, owner=owner
        )
        self._log(
            f"{'public' if public else 'restricted'} groups={groups} users={users}"
            + (f" owner={owner}" if owner else "")
            + f" by {by}",
            kind=kind,
            resource_id=resource_id,
        )
        return access

    def grant(
        self,
        kind: str,
        resource_id: str,
        subject_type: SubjectType,
        subject: str,
        permission: Action = "read",
        *,
        by: str,
    ) -> Access:
        access = self.policy.grant(kind, resource_id, subject_type, subject, permission)
        self._log(
            f"grant {permission} to {subject_type} {subject} by {by}", kind=kind, resource_id=resource_id
        )
        return access

    def revoke(
        self, kind: str, resource_id: str, subject_type: SubjectType, subject: str, *, by: str
    ) -> Access:
        access = self.policy.revoke(kind, resource_id, subject_type, subject)
        self._log(f"revoke {subject_type} {subject} by {by}", kind=kind, resource_id=resource_id)
        return access
