"""Feature store, second part: databases (namespaces) with their owners, each collection's time property,
and in-situ observations at the stations of a station collection.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feature_databases",
        sa.Column("name", sa.String(48), primary_key=True),
        sa.Column("owner_type", sa.String(8), nullable=False),  # user or group (a project is a group)
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("feature_collections") as table:
        table.add_column(sa.Column("time_property", sa.String(48), nullable=False, server_default=""))
    op.create_table(
        "observations",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("collection", sa.String(97), nullable=False),  # the station collection's id, database.name
        sa.Column("station", sa.BigInteger, nullable=False),  # the station's feature id
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("parameter", sa.String(64), nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("unit", sa.String(32), nullable=False, server_default=""),
        sa.Column("quality", sa.String(16), nullable=False, server_default=""),
    )
    op.create_index(
        "observations_series", "observations", ["collection", "station", "parameter", "time"], unique=True
    )


def downgrade() -> None:
    op.drop_index("observations_series", "observations")
    op.drop_table("observations")
    with op.batch_alter_table("feature_collections") as table:
        table.drop_column("time_property")
    op.drop_table("feature_databases")
