"""Feature collections: the registry of vector collections (their data live in one table each).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feature_collections",
        sa.Column("database", sa.String(48), primary_key=True),
        sa.Column("name", sa.String(48), primary_key=True),
        sa.Column("properties", sa.JSON, nullable=False),
        sa.Column("crs", sa.Integer, nullable=False),
        sa.Column("geometry_type", sa.String(24), nullable=False),
        sa.Column("title", sa.String(256), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("licence", sa.String(256), nullable=False),
        sa.Column("keywords", sa.JSON, nullable=False),
        sa.Column("provenance", sa.Text, nullable=False),
        sa.Column("metadata_url", sa.String(1024), nullable=False),
        sa.Column("owner", sa.String(128)),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("feature_collections")
