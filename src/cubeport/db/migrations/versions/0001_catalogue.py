"""Catalogue of cubes: cubes, their variables and styles, and the groups of restricted cubes.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cubes",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("title", sa.String(256), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("crs", sa.Text, nullable=False),
        sa.Column("west", sa.Float, nullable=False),
        sa.Column("south", sa.Float, nullable=False),
        sa.Column("east", sa.Float, nullable=False),
        sa.Column("north", sa.Float, nullable=False),
        sa.Column("time_start", sa.DateTime(timezone=True)),
        sa.Column("time_end", sa.DateTime(timezone=True)),
        sa.Column("time_steps", sa.Integer, nullable=False),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("themes", sa.JSON, nullable=False),
        sa.Column("attrs", sa.JSON, nullable=False),
        sa.Column("access", sa.String(16), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "cube_variables",
        sa.Column("cube_id", sa.String(128), sa.ForeignKey("cubes.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("dtype", sa.String(32), nullable=False),
        sa.Column("units", sa.String(64)),
        sa.Column("long_name", sa.String(256)),
        sa.Column("colormap", sa.String(64), nullable=False),
        sa.Column("vmin", sa.Float, nullable=False),
        sa.Column("vmax", sa.Float, nullable=False),
        sa.Column("norm", sa.String(8), nullable=False),
    )
    op.create_table(
        "cube_groups",
        sa.Column("cube_id", sa.String(128), sa.ForeignKey("cubes.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("group", sa.String(128), primary_key=True),
    )


def downgrade() -> None:
    op.drop_table("cube_groups")
    op.drop_table("cube_variables")
    op.drop_table("cubes")
