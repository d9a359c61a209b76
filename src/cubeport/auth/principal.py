"""The caller of a request or command: a user with a role and groups, or nobody (anonymous)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["viewer", "editor", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "editor", "admin")  # each includes the rights of the ones before it
Via = Literal["anonymous", "password", "session", "api-key", "oidc"]


@dataclass(frozen=True)
class Principal:
    """Who is asking. `groups` includes projects; `via` says how the identity was proven."""

    name: str | None
    role: Role = "viewer"
    groups: frozenset[str] = field(default_factory=frozenset)
    via: Via = "anonymous"
    provider: str = "local"

    @property
    def anonymous(self) -> bool:
        return self.name is None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin" and not self.anonymous

    def has_role(self, role: Role) -> bool:
        return not self.anonymous and ROLES.index(self.role) >= ROLES.index(role)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role,
            "groups": sorted(self.groups),
            "via": self.via,
            "provider": self.provider,
        }


ANONYMOUS = Principal(name=None)
