"""Administration over HTTP (admins only): users, groups and projects, access to resources, keys, audit."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, Field

from cubeport.api.deps import get_context
from cubeport.api.security import ADMIN, signed_in_name
from cubeport.auth.audit import EVENTS
from cubeport.auth.directory import User
from cubeport.auth.policy import Kind
from cubeport.auth.principal import Principal, Role
from cubeport.context import Context

router = APIRouter(prefix="/admin", tags=["admin"])
ContextDep = Annotated[Context, Depends(get_context)]
Admin = Annotated[Principal, Depends(ADMIN)]
Name = Annotated[str, Path(max_length=128)]
Name128 = Annotated[str, Field(min_length=1, max_length=128)]


def user_json(user: User) -> dict[str, Any]:
    data = asdict(user)
    data["created"] = user.created.isoformat()
    data["last_login"] = user.last_login.isoformat() if user.last_login else None
    return data


class NewUser(BaseModel):
    name: str = Field(max_length=128)
    role: Role = "viewer"
    password: str | None = Field(
        None, max_length=1024, description="none: the user signs in with API keys only"
    )


class UserChange(BaseModel):
    role: Role | None = None
    active: bool | None = None
    password: str | None = Field(None, max_length=1024)


class NewGroup(BaseModel):
    name: str = Field(max_length=128)
    kind: Literal["group", "project"] = "group"
    title: str = Field("", max_length=256)


class AccessChange(BaseModel):
    access: Literal["public", "restricted"]
    groups: list[Name128] = Field(default_factory=list, description="groups or projects that may read")
    users: list[Name128] = Field(default_factory=list, description="users that may read")
    owner: Name128 | None = Field(
        None, description="the project that owns the resource (its editors may write)"
    )


class GrantChange(BaseModel):
    subject_type: Literal["group", "user"]
    subject: str = Field(max_length=128)
    permission: Literal["read", "write"] = "read"


@router.get("/users", summary="All users")
def list_users(context: ContextDep, _: Admin) -> dict[str, Any]:
    return {"users": [user_json(u) for u in context.auth.directory.users()]}


@router.post("/users", summary="Create a local user", status_code=201)
def create_user(new: NewUser, context: ContextDep, admin: Admin) -> dict[str, Any]:
    return user_json(
        context.admin.create_user(new.name, role=new.role, password=new.password, by=signed_in_name(admin))
    )


@router.patch("/users/{name}", summary="Change a user's role, password, or enable/disable it")
def change_user(name: Name, change: UserChange, context: ContextDep, admin: Admin) -> dict[str, Any]:
    return user_json(context.admin.update_user(name, **change.model_dump(), by=signed_in_name(admin)))


@router.delete("/users/{name}", summary="Delete a user, its keys and sessions", status_code=204)
def delete_user(name: Name, context: ContextDep, admin: Admin) -> Response:
    context.admin.delete_user(name, by=signed_in_name(admin))
    return Response(status_code=204)


@router.get("/groups", summary="All groups and projects with their members")
def list_groups(context: ContextDep, _: Admin) -> dict[str, Any]:
    return {"groups": [asdict(g) for g in context.auth.directory.groups()]}


@router.post("/groups", summary="Create a group or project", status_code=201)
def create_group(new: NewGroup, context: ContextDep, admin: Admin) -> dict[str, Any]:
    return asdict(
        context.admin.create_group(new.name, kind=new.kind, title=new.title, by=signed_in_name(admin))
    )


@router.delete("/groups/{name}", summary="Delete a group or project", status_code=204)
def delete_group(name: Name, context: ContextDep, admin: Admin) -> Response:
    context.admin.delete_group(name, by=signed_in_name(admin))
    return Response(status_code=204)


@router.put("/groups/{name}/members/{user}", summary="Add a user to a group or project")
def add_member(name: Name, user: Name, context: ContextDep, admin: Admin) -> dict[str, Any]:
    return asdict(context.admin.add_member(name, user, by=signed_in_name(admin)))


@router.delete("/groups/{name}/members/{user}", summary="Remove a user from a group or project")
def remove_member(name: Name, user: Name, context: ContextDep, admin: Admin) -> dict[str, Any]:
    return asdict(context.admin.remove_member(name, user, by=signed_in_name(admin)))


@router.get("/access/{kind}/{resource_id}", summary="Who may read and write a resource")
def get_access(kind: Kind, resource_id: Name, context: ContextDep, _: Admin) -> dict[str, Any]:
    return context.policy.access(kind, resource_id).to_dict()


@router.put(
    "/access/{kind}/{resource_id}", summary="Make a resource public or restrict it to groups and users"
)
def set_access(
    kind: Kind, resource_id: Name, change: AccessChange, context: ContextDep, admin: Admin
) -> dict[str, Any]:
    return context.admin.set_access(
        kind,
        resource_id,
        public=change.access == "public",
        groups=change.groups,
        users=change.users,
        owner=change.owner,
        by=signed_in_name(admin),
    ).to_dict()


@router.post("/access/{kind}/{resource_id}/grants", summary="Grant read or write on a resource")
def grant(
    kind: Kind, resource_id: Name, change: GrantChange, context: ContextDep, admin: Admin
) -> dict[str, Any]:
    return context.admin.grant(
        kind, resource_id, change.subject_type, change.subject, change.permission, by=signed_in_name(admin)
    ).to_dict()


@router.delete("/access/{kind}/{resource_id}/grants/{subject_type}/{subject}", summary="Revoke a grant")
def revoke(
    kind: Kind,
    resource_id: Name,
    subject_type: Literal["group", "user"],
    subject: Name,
    context: ContextDep,
    admin: Admin,
) -> dict[str, Any]:
    return context.admin.revoke(kind, resource_id, subject_type, subject, by=signed_in_name(admin)).to_dict()


@router.get("/keys", summary="API keys of every user, or of one owner")
def list_keys(
    context: ContextDep, _: Admin, owner: Annotated[str | None, Query(max_length=128)] = None
) -> dict[str, Any]:
    return {"keys": [k.to_dict() for k in context.auth.keys.list(owner)]}


@router.get("/audit", summary="The audit log, newest first")
def audit(
    context: ContextDep,
    _: Admin,
    event: Annotated[str | None, Query(description=f"one of {', '.join(EVENTS)}")] = None,
    user: Annotated[str | None, Query(max_length=128)] = None,
    address: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[datetime | None, Query(description="ISO 8601 time")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> dict[str, Any]:
    events = context.auth.audit.query(event=event, user=user, address=address, since=since, limit=limit)
    return {"events": [e.to_dict() for e in events]}
