"""tenant-owned latency tables (pinned versions), stored hypervolume history, dashboard sessions, export cache

Revision ID: 0007_tenant_tables_hv_history
Revises: 0005_search_spaces
Create Date: 2026-12-01

Schema only. Existing device rows get an empty ``content_hash``; the first
``register_shipped_tables`` after it (``hwnas db upgrade``, or an embedded server's
start) adopts them (storage.catalog.adopt_legacy_tables): a row whose provenance names
an ``uploaded_by`` tenant becomes that tenant's private table, and every row's table
is stored in ``device_versions`` under its content hash.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007_tenant_tables_hv_history"
down_revision = "0006_tenant_command_evaluator"  # re-chained after main's 0005 on merging main
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("max_device_tables", sa.Integer(), nullable=True))
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("table_pins", JSON, nullable=True))
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("tenant_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("shared", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("content_hash", sa.String(64), nullable=False, server_default=""))
        batch.drop_constraint("uq_devices_name_space", type_="unique")
        batch.create_unique_constraint("uq_devices_owner_name_space", ["tenant_id", "name", "space"])
        batch.create_foreign_key("fk_devices_tenant_id_tenants", "tenants", ["tenant_id"], ["id"],
                                 ondelete="CASCADE")
        batch.create_index("ix_devices_tenant_id", ["tenant_id"])
    op.create_table(
        "device_versions",
        sa.Column("content_hash", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("space", sa.String(50), nullable=False),
        sa.Column("table", JSON, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
    )
    op.create_table(
        "job_hypervolume",
        sa.Column("job_id", sa.String(36), sa.ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("evaluations", sa.Integer(), primary_key=True),
        sa.Column("hypervolume", sa.Float(), nullable=False),
    )
    op.create_table(
        "dashboard_sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("expires_at", WHEN, nullable=False),
    )
    op.create_index("ix_dashboard_sessions_tenant_id", "dashboard_sessions", ["tenant_id"])
    op.create_index("ix_dashboard_sessions_expires_at", "dashboard_sessions", ["expires_at"])
    op.create_table(
        "export_cache",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("filename", sa.String(300), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("export_cache")
    op.drop_index("ix_dashboard_sessions_expires_at", table_name="dashboard_sessions")
    op.drop_index("ix_dashboard_sessions_tenant_id", table_name="dashboard_sessions")
    op.drop_table("dashboard_sessions")
    op.drop_table("job_hypervolume")
    op.drop_table("device_versions")
    # private copies of a shipped name would break the old (name, space) uniqueness
    op.execute("DELETE FROM devices WHERE tenant_id IS NOT NULL AND EXISTS (SELECT 1 FROM devices d "
               "WHERE d.name = devices.name AND d.space = devices.space AND d.id < devices.id)")
    with op.batch_alter_table("devices") as batch:
        batch.drop_index("ix_devices_tenant_id")
        batch.drop_constraint("fk_devices_tenant_id_tenants", type_="foreignkey")
        batch.drop_constraint("uq_devices_owner_name_space", type_="unique")
        batch.create_unique_constraint("uq_devices_name_space", ["name", "space"])
        batch.drop_column("content_hash")
        batch.drop_column("shared")
        batch.drop_column("tenant_id")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("table_pins")
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("max_device_tables")
