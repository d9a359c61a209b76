"""Rolling cache: the entries it holds of remote data, and its counters (shared by every API worker).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

COUNTERS = ("hits", "misses", "bytes_fetched", "bytes_served", "evictions")


def upgrade() -> None:
    op.create_table(
        "cache_entries",
        sa.Column("key", sa.String(2048), primary_key=True),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("range_start", sa.BigInteger),
        sa.Column("range_end", sa.BigInteger),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used", sa.DateTime(timezone=True), nullable=False),
        sa.Column("pinned", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("hits", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.create_index("ix_cache_entries_lru", "cache_entries", ["pinned", "last_used"])
    counters = op.create_table(
        "cache_counters",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.bulk_insert(counters, [{"name": name, "value": 0} for name in COUNTERS])


def downgrade() -> None:
    op.drop_table("cache_counters")
    op.drop_index("ix_cache_entries_lru", "cache_entries")
    op.drop_table("cache_entries")
