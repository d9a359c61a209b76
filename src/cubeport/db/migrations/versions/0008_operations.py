"""Near-real-time operations: suites and their runs, watchers and the files they saw, delivery targets and
deliveries, and the runner's lease (so a restarted runner finds all of it).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "ops_suites",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("definition", sa.Text, nullable=False),
        sa.Column("suspended", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("next_run", sa.DateTime(timezone=True)),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "ops_runs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "suite", sa.String(64), sa.ForeignKey("ops_suites.name", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("variables", sa.JSON, nullable=False),
        sa.Column("cause", sa.String(256), nullable=False, server_default=""),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_ops_runs_suite", "ops_runs", ["suite", "created"])
    op.create_table(
        "ops_nodes",
        sa.Column(
            "run_id", sa.String(36), sa.ForeignKey("ops_runs.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("path", sa.String(512), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("suspended", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("run_now", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("try_no", sa.Integer, nullable=False, server_default="0"),
        sa.Column("pid", sa.Integer),
        sa.Column("started", sa.DateTime(timezone=True)),
        sa.Column("ended", sa.DateTime(timezone=True)),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
    )
    op.create_table(
        "ops_watchers",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("include", sa.String(256), nullable=False),
        sa.Column("marker", sa.String(256)),
        sa.Column("interval_seconds", sa.Float, nullable=False),
        sa.Column("suite", sa.String(64), nullable=False),
        sa.Column("credentials", sa.Text, nullable=False, server_default=""),
        sa.Column("host_key", sa.Text, nullable=False, server_default=""),
        sa.Column("paused_reason", sa.Text, nullable=False, server_default=""),
        sa.Column("last_look", sa.DateTime(timezone=True)),
        sa.Column("next_look", sa.DateTime(timezone=True)),
        sa.Column("last_file", sa.Text, nullable=False, server_default=""),
        sa.Column("last_error", sa.Text, nullable=False, server_default=""),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "ops_pending",
        sa.Column(
            "watcher", sa.String(64), sa.ForeignKey("ops_watchers.name", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("name", sa.String(1024), primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("seen", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "ops_files",
        sa.Column(
            "watcher", sa.String(64), sa.ForeignKey("ops_watchers.name", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("name", sa.String(1024), primary_key=True),
        sa.Column("size", sa.BigInteger, primary_key=True),
        sa.Column("run_id", sa.String(36)),
        sa.Column("recorded", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "ops_targets",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("products", sa.JSON, nullable=False),
        sa.Column("credentials", sa.Text, nullable=False, server_default=""),
        sa.Column("host_key", sa.Text, nullable=False, server_default=""),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "ops_deliveries",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column(
            "target", sa.String(64), sa.ForeignKey("ops_targets.name", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("product", sa.String(1024), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("checksum", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_try", sa.DateTime(timezone=True)),
        sa.Column("error", sa.Text, nullable=False, server_default=""),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("target", "product", "checksum", name="uq_ops_deliveries_once"),
    )
    op.create_table(
        "ops_leases",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(256), nullable=False),
        sa.Column("expires", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "ops_leases",
        "ops_deliveries",
        "ops_targets",
        "ops_files",
        "ops_pending",
        "ops_watchers",
        "ops_nodes",
    ):
        op.drop_table(table)
    op.drop_index("ix_ops_runs_suite", "ops_runs")
    op.drop_table("ops_runs")
    op.drop_table("ops_suites")
