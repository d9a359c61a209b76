"""Administrative changes to identities and access, each written to the audit log.

The CLI and the admin API both call these, so an operator's change is recorded the same way whichever
face it came through. `by` names who made it ("command line" for the CLI).
"""

from __future__ import annotations

from collections.abc import Iterable

from cubeport.auth.audit import AuditLog
from cubeport.auth.directory import Directory, User
from cubeport.auth.policy import Access, Action, Policy, SubjectType
from cubeport.auth.sessions import Sessions


class Administration:
    def __init__(self, directory: Directory, policy: Policy, audit: AuditLog, sessions: Sessions) -> None:
        self.directory, self.policy, self.audit, self.sessions = directory, policy, audit, sessions

    def create_user(self, name: str, *, role: str = "viewer", password: str | None = None, by: str) -> User:
        user = self.directory.create_user(name, role=role, password=password)
        self.audit.record("access-changed", user=name, detail=f"user created ({user.role}) by {by}")
        return user

    def update_user(self, name: str, *, role: str | None = None, active: bool | None = None,
                    password: str | None = None, by: str) -> User:
        """Change a user; disabling it or setting its password ends its sessions."""
        user = self.directory.update_user(name, role=role, active=active, password=password)
        if active is False or password is not None:
            self.sessions.end_all(name)
        changed = [k for k, v in (("role", role), ("active", active), ("password", password)) if v is not None]
        self.audit.record("access-changed", user=name, detail=f"user changed by {by}: {', '.join(changed)}")
        return user

    def delete_user(self, name: str, *, by: str) -> None:
        self.directory.delete_user(name)
        self.sessions.end_all(name)
        self.audit.record("access-changed", user=name, detail=f"user deleted by {by}")

    def set_access(self, kind: str, resource_id: str, *, public: bool, groups: Iterable[str] = (),
                   users: Iterable[str] = (), owner: str | None = None, by: str) -> Access:
        groups, users = sorted(groups), sorted(users)
        access = self.policy.set_access(kind, resource_id, public=public, groups=groups, users=users, owner=owner)
        self.audit.record("access-changed", user=by, kind=kind, resource_id=resource_id,
                          detail=f"{'public' if public else 'restricted'} groups={groups} users={users}"
                          + (f" owner={owner}" if owner else ""))
        return access

    def grant(self, kind: str, resource_id: str, subject_type: SubjectType, subject: str,
              permission: Action = "read", *, by: str) -> Access:
        access = self.policy.grant(kind, resource_id, subject_type, subject, permission)
        self.audit.record("access-changed", user=by, kind=kind, resource_id=resource_id,
                          detail=f"grant {permission} to {subject_type} {subject}")
        return access

    def revoke(self, kind: str, resource_id: str, subject_type: SubjectType, subject: str, *, by: str) -> Access:
        access = self.policy.revoke(kind, resource_id, subject_type, subject)
        self.audit.record("access-changed", user=by, kind=kind, resource_id=resource_id,
                          detail=f"revoke {subject_type} {subject}")
        return access
