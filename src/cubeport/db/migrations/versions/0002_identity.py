"""Identity and access: users, groups and projects, API keys, sessions, grants on resources, audit log.

Cube access moves from the catalogue (cubes.access, cube_groups) to the generic resource_access and
grants tables, which cover every kind of resource (cube, collection, process, service).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(256)),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(256)),
        sa.Column("external_groups", sa.JSON, nullable=False),
        sa.Column("display_name", sa.String(256)),
        sa.Column("email", sa.String(256)),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created", TZ, nullable=False),
        sa.Column("last_login", TZ),
    )
    op.create_table(
        "groups",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("title", sa.String(256), nullable=False),
        sa.Column("created", TZ, nullable=False),
    )
    op.create_table(
        "memberships",
        sa.Column(
            "group_name", sa.String(128), sa.ForeignKey("groups.name", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column(
            "user_name", sa.String(128), sa.ForeignKey("users.name", ondelete="CASCADE"), primary_key=True
        ),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "owner",
            sa.String(128),
            sa.ForeignKey("users.name", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("label", sa.String(128), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created", TZ, nullable=False),
        sa.Column("expires", TZ),
        sa.Column("revoked", TZ),
        sa.Column("last_used", TZ),
    )
    op.create_table(
        "sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("user_name", sa.String(128), nullable=False, index=True),
        sa.Column("principal", sa.JSON, nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created", TZ, nullable=False),
        sa.Column("expires", TZ, nullable=False, index=True),
    )
    op.create_table(
        "login_states",
        sa.Column("state", sa.String(64), primary_key=True),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("code_verifier", sa.String(128), nullable=False),
        sa.Column("nonce", sa.String(64), nullable=False),
        sa.Column("next_url", sa.Text, nullable=False),
        sa.Column("expires", TZ, nullable=False),
    )
    resource_access = op.create_table(
        "resource_access",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("resource_id", sa.String(256), primary_key=True),
        sa.Column("public", sa.Boolean, nullable=False),
        sa.Column("owner", sa.String(128)),
    )
    grants = op.create_table(
        "grants",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("resource_id", sa.String(256), primary_key=True),
        sa.Column("subject_type", sa.String(8), primary_key=True),
        sa.Column("subject", sa.String(128), primary_key=True),
        sa.Column("permission", sa.String(8), nullable=False),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("time", TZ, nullable=False, index=True),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("user_name", sa.String(128), index=True),
        sa.Column("address", sa.String(64)),
        sa.Column("kind", sa.String(16)),
        sa.Column("resource_id", sa.String(256)),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_audit_event_time", "audit_log", ["event", "time"])

    connection = op.get_bind()
    restricted = (
        connection.execute(sa.text("SELECT id FROM cubes WHERE access = 'restricted'")).scalars().all()
    )
    if restricted:
        op.bulk_insert(
            resource_access, [{"kind": "cube", "resource_id": c, "public": False} for c in restricted]
        )
    groups = connection.execute(sa.text('SELECT cube_id, "group" FROM cube_groups')).all()
    if groups:
        op.bulk_insert(
            grants,
            [
                {
                    "kind": "cube",
                    "resource_id": c,
                    "subject_type": "group",
                    "subject": g,
                    "permission": "read",
                }
                for c, g in groups
            ],
        )
    op.drop_table("cube_groups")
    with op.batch_alter_table("cubes") as batch:
        batch.drop_column("access")


def downgrade() -> None:
    with op.batch_alter_table("cubes") as batch:
        batch.add_column(sa.Column("access", sa.String(16), nullable=False, server_default="public"))
    op.create_table(
        "cube_groups",
        sa.Column("cube_id", sa.String(128), sa.ForeignKey("cubes.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("group", sa.String(128), primary_key=True),
    )
    for table in (
        "audit_log",
        "grants",
        "resource_access",
        "login_states",
        "sessions",
        "api_keys",
        "memberships",
        "groups",
        "users",
    ):
        op.drop_table(table)
