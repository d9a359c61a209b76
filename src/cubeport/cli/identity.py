"""Identity and access commands: users, groups and projects, API keys, access to resources, audit log.

They act on the database directly, as the platform's operator; the same actions are in the admin API.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from cubeport.auth.policy import KINDS, SubjectType, check_kind
from cubeport.cli.base import AsJson, DataRoot, app, context_for, err, out, split
from cubeport.errors import InputError

if TYPE_CHECKING:
    from cubeport.context import Context

users_app = typer.Typer(help="Local user accounts.", no_args_is_help=True)
groups_app = typer.Typer(help="Groups and projects, and their members.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys for scripts, notebooks and QGIS.", no_args_is_help=True)
access_app = typer.Typer(
    help=f"Who may read and write a resource ({', '.join(KINDS)}).", no_args_is_help=True
)
for sub, name in ((users_app, "users"), (groups_app, "groups"), (keys_app, "keys"), (access_app, "access")):
    app.add_typer(sub, name=name)

Role = Annotated[str | None, typer.Option(help="viewer, editor or admin")]
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input")
]
NameArg = Annotated[str, typer.Argument(metavar="NAME", help="user name")]
GroupArg = Annotated[str, typer.Argument(metavar="GROUP", help="group or project name")]
UserArg = Annotated[str, typer.Argument(metavar="USER", help="user name")]
KindArg = Annotated[str, typer.Argument(metavar="KIND", help=", ".join(KINDS))]
IdArg = Annotated[str, typer.Argument(metavar="ID", help="the resource's id, e.g. a cube id")]
GroupOption = Annotated[str | None, typer.Option(help="Group or project")]
UserOption = Annotated[str | None, typer.Option(help="User")]
BY = "command line"


def _read_password() -> str:
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise InputError("no password on standard input")
    return password


@users_app.command("create")
def users_create(
    name: NameArg,
    data_root: DataRoot = None,
    admin: Annotated[bool, typer.Option("--admin", help="Give the admin role")] = False,
    role: Role = None,
    password_stdin: PasswordStdin = False,
    no_password: Annotated[bool, typer.Option("--no-password", help="No password: API keys only")] = False,
) -> None:
    """Create a local account. Without --password-stdin a password is generated and printed once."""
    import secrets

    if admin and role not in (None, "admin"):
        raise InputError("--admin and --role contradict each other")
    password = None if no_password else _read_password() if password_stdin else secrets.token_urlsafe(12)
    user = context_for(data_root).admin.create_user(
        name, role="admin" if admin else role or "viewer", password=password, by=BY
    )
    err.print(f"created user {user.name} ({user.role})")
    if password and not password_stdin:
        out.print(f"password: {password}")
        err.print("the password is shown once; change it with `cubeport users set NAME --password-stdin`")


@users_app.command("set")
def users_set(
    name: NameArg,
    data_root: DataRoot = None,
    role: Role = None,
    enable: Annotated[bool | None, typer.Option("--enable/--disable", help="Allow or stop sign-ins")] = None,
    password_stdin: PasswordStdin = False,
) -> None:
    """Change a user's role, password, or enable/disable the account (ends its sessions)."""
    user = context_for(data_root).admin.update_user(
        name, role=role, active=enable, password=_read_password() if password_stdin else None, by=BY
    )
    out.print(f"{user.name}: {user.role}, {'active' if user.active else 'disabled'}")


@users_app.command("list")
def users_list(data_root: DataRoot = None, as_json: AsJson = False) -> None:
    """List users with their roles and groups."""
    users = context_for(data_root).auth.directory.users()
    if as_json:
        out.print_json(json.dumps([asdict(u) for u in users], default=str))
        return
    table = Table("name", "role", "provider", "active", "groups", "last sign-in")
    for u in users:
        table.add_row(
            u.name,
            u.role,
            u.provider,
            "yes" if u.active else "no",
            ", ".join(u.groups),
            f"{u.last_login:%Y-%m-%d %H:%M}" if u.last_login else "",
        )
    out.print(table if users else "no users")


@users_app.command("delete")
def users_delete(name: NameArg, data_root: DataRoot = None) -> None:
    """Delete a user with its keys and sessions."""
    context_for(data_root).admin.delete_user(name, by=BY)
    out.print(f"deleted {name}")


@groups_app.command("create")
def groups_create(
    group: GroupArg,
    data_root: DataRoot = None,
    project: Annotated[
        bool, typer.Option("--project", help="A project: a group that owns resources")
    ] = False,
    title: Annotated[str, typer.Option(help="Title shown to users")] = "",
) -> None:
    """Create a group (or, with --project, a project)."""
    created = context_for(data_root).admin.create_group(
        group, kind="project" if project else "group", title=title, by=BY
    )
    out.print(f"created {created.kind} {created.name}")


@groups_app.command("add")
def groups_add(group: GroupArg, user: UserArg, data_root: DataRoot = None) -> None:
    """Add a user to a group or project."""
    updated = context_for(data_root).admin.add_member(group, user, by=BY)
    out.print(f"{updated.name}: {', '.join(updated.members)}")


@groups_app.command("remove")
def groups_remove(group: GroupArg, user: UserArg, data_root: DataRoot = None) -> None:
    """Remove a user from a group or project."""
    updated = context_for(data_root).admin.remove_member(group, user, by=BY)
    out.print(f"{updated.name}: {', '.join(updated.members) or 'no members'}")


@groups_app.command("list")
def groups_list(data_root: DataRoot = None, as_json: AsJson = False) -> None:
    """List groups and projects with their members."""
    groups = context_for(data_root).auth.directory.groups()
    if as_json:
        out.print_json(json.dumps([asdict(g) for g in groups]))
        return
    table = Table("name", "kind", "title", "members")
    for g in groups:
        table.add_row(g.name, g.kind, g.title, ", ".join(g.members))
    out.print(table if groups else "no groups")


@groups_app.command("delete")
def groups_delete(group: GroupArg, data_root: DataRoot = None) -> None:
    """Delete a group or project (its grants stay until revoked)."""
    context_for(data_root).admin.delete_group(group, by=BY)
    out.print(f"deleted {group}")


@keys_app.command("create")
def keys_create(
    user: UserArg,
    data_root: DataRoot = None,
    expires_days: Annotated[
        int | None, typer.Option("--expires-days", min=1, help="Days until it expires")
    ] = None,
    label: Annotated[str, typer.Option(help="What the key is for")] = "",
) -> None:
    """Create an API key for USER and print it once on stdout (send it as `X-API-Key: KEY`)."""
    key, secret = context_for(data_root).auth.create_key(user, expires_days=expires_days, label=label, by=BY)
    print(secret)
    err.print(
        f"key {key.id} for {key.owner}"
        + (f", expires {key.expires:%Y-%m-%d}" if key.expires else ", no expiry")
        + "; it is shown once: store it now"
    )


@keys_app.command("list")
def keys_list(
    data_root: DataRoot = None,
    owner: Annotated[str | None, typer.Option(help="Only this user's")] = None,
    as_json: AsJson = False,
) -> None:
    """List API keys (ids and status, never the keys)."""
    keys = context_for(data_root).auth.keys.list(owner)
    if as_json:
        out.print_json(json.dumps([k.to_dict() for k in keys]))
        return
    table = Table("id", "owner", "label", "status", "created", "expires", "last used")
    for k in keys:
        table.add_row(
            k.id,
            k.owner,
            k.label,
            k.status,
            f"{k.created:%Y-%m-%d}",
            f"{k.expires:%Y-%m-%d}" if k.expires else "never",
            f"{k.last_used:%Y-%m-%d %H:%M}" if k.last_used else "",
        )
    out.print(table if keys else "no keys")


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(metavar="ID")], data_root: DataRoot = None) -> None:
    """Revoke an API key at once."""
    key = context_for(data_root).auth.revoke_key(key_id, by=BY)
    out.print(f"revoked key {key.id} of {key.owner}")


def _check_resource(context: Context, kind: str, resource_id: str) -> None:
    if check_kind(kind) == "cube":
        context.catalogue.get(resource_id)  # NotFoundError with a clear message


def _subject(group: str | None, user: str | None) -> tuple[SubjectType, str]:
    if group and not user:
        return "group", group
    if user and not group:
        return "user", user
    raise InputError("give one of --group or --user")


@access_app.command("set")
def access_set(
    kind: KindArg,
    resource_id: IdArg,
    data_root: DataRoot = None,
    public: Annotated[bool, typer.Option("--public", help="Everybody may read it")] = False,
    groups: Annotated[
        str | None, typer.Option(help="Restrict reading to these groups/projects (G1,G2)")
    ] = None,
    users: Annotated[str | None, typer.Option(help="... and to these users (U1,U2)")] = None,
    owner: Annotated[
        str | None, typer.Option(help="Project that owns it (its editors may change it)")
    ] = None,
) -> None:
    """Make a resource public, or restrict it to groups (and users)."""
    if public == bool(groups or users or owner):
        raise InputError("give either --public or --groups/--users/--owner")
    context = context_for(data_root)
    _check_resource(context, kind, resource_id)
    group_list = split(groups) or []
    known = {g.name for g in context.auth.directory.groups()}
    for unknown in sorted(set(group_list) - known):
        err.print(f"warning: no local group {unknown!r} (fine if your OIDC provider asserts it)")
    context.admin.set_access(
        kind, resource_id, public=public, groups=group_list, users=split(users) or [], owner=owner, by=BY
    )
    _print_access(context, kind, resource_id)


@access_app.command("grant")
def access_grant(
    kind: KindArg,
    resource_id: IdArg,
    data_root: DataRoot = None,
    group: GroupOption = None,
    user: UserOption = None,
    write: Annotated[bool, typer.Option("--write", help="Write permission (for editors)")] = False,
) -> None:
    """Grant a group or user read (or --write) permission on a resource."""
    subject_type, subject = _subject(group, user)
    context = context_for(data_root)
    _check_resource(context, kind, resource_id)
    context.admin.grant(kind, resource_id, subject_type, subject, "write" if write else "read", by=BY)
    _print_access(context, kind, resource_id)


@access_app.command("revoke")
def access_revoke(
    kind: KindArg,
    resource_id: IdArg,
    data_root: DataRoot = None,
    group: GroupOption = None,
    user: UserOption = None,
) -> None:
    """Take a group's or user's grant on a resource away."""
    subject_type, subject = _subject(group, user)
    context = context_for(data_root)
    context.admin.revoke(kind, resource_id, subject_type, subject, by=BY)
    _print_access(context, kind, resource_id)


@access_app.command("show")
def access_show(kind: KindArg, resource_id: IdArg, data_root: DataRoot = None) -> None:
    """Show who may read and write a resource."""
    _print_access(context_for(data_root), kind, resource_id)


def _print_access(context: Context, kind: str, resource_id: str) -> None:
    access = context.policy.access(kind, resource_id)
    groups, users = access.names("group"), access.names("user")
    line = f"{kind} {resource_id}: {'public' if access.public else 'restricted'}"
    if not access.public or groups or users:
        line += f"; groups: {', '.join(groups) or '-'}; users: {', '.join(users) or '-'}"
    if access.owner:
        line += f"; owner: {access.owner}"
    out.print(line)


@app.command()
def audit(
    data_root: DataRoot = None,
    event: Annotated[str | None, typer.Option(help="e.g. sign-in, sign-in-failed, key-created")] = None,
    user: Annotated[str | None, typer.Option(help="Only events of this user")] = None,
    since: Annotated[datetime | None, typer.Option(help="Only events since this time (UTC)")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many, newest first")] = 50,
    as_json: AsJson = False,
) -> None:
    """Show the audit log: sign-ins, failures, keys, access changes, reads of restricted resources."""
    events = context_for(data_root).auth.audit.query(event=event, user=user, since=since, limit=limit)
    if as_json:
        out.print_json(json.dumps([e.to_dict() for e in events]))
        return
    table = Table("time", "event", "user", "address", "resource", "detail")
    for e in events:
        table.add_row(
            f"{e.time:%Y-%m-%d %H:%M:%S}",
            e.event,
            e.user or "",
            e.address or "",
            f"{e.kind}/{e.resource_id}" if e.kind else "",
            e.detail,
        )
    out.print(table if events else "no events")
