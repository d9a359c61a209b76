"""Data access: STAC items of ingested products, remote STAC APIs searched as federated sources.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stac_items",
        sa.Column("collection", sa.String(128), primary_key=True),
        sa.Column("id", sa.String(256), primary_key=True),
        sa.Column("datetime", sa.DateTime(timezone=True)),
        sa.Column("west", sa.Float, nullable=False),
        sa.Column("south", sa.Float, nullable=False),
        sa.Column("east", sa.Float, nullable=False),
        sa.Column("north", sa.Float, nullable=False),
        sa.Column("item", sa.JSON, nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_stac_items_time", "stac_items", ["collection", "datetime"])
    op.create_table(
        "stac_sources",
        sa.Column("name", sa.String(48), primary_key=True),
        sa.Column("url", sa.String(1024), nullable=False),
        sa.Column("title", sa.String(256), nullable=False),
        sa.Column("headers", sa.JSON, nullable=False),
        sa.Column("timeout_seconds", sa.Float, nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("stac_sources")
    op.drop_index("ix_stac_items_time", "stac_items")
    op.drop_table("stac_items")
