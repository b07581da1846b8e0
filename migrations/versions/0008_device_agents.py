"""device agents: measurement agents, their measurements, onboard/verify operations, table revisions

Revision ID: 0008_device_agents
Revises: 0007_tenant_tables_hv_history
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008_device_agents"
down_revision = "0007_tenant_tables_hv_history"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "device_agents",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("device", sa.String(100), nullable=False),
        sa.Column("space", sa.String(64), nullable=False),
        sa.Column("runtime", sa.String(50), nullable=False),
        sa.Column("queue", sa.String(200), nullable=False),
        sa.Column("host", sa.String(200), nullable=False),
        sa.Column("environment", JSON, nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("heartbeat_at", TS, nullable=False),
        sa.Column("stopped_at", TS, nullable=True),
    )
    op.create_index("ix_device_agents_device", "device_agents", ["device"])
    op.create_table(
        "measurements",
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("device", sa.String(100), nullable=False),
        sa.Column("space", sa.String(64), nullable=False),
        sa.Column("arch", sa.Text(), nullable=False),
        sa.Column("arch_hash", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("owner", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("claimed_by", sa.String(36), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("energy_mj", sa.Float(), nullable=True),
        sa.Column("peak_memory_kb", sa.Float(), nullable=True),
        sa.Column("environment", JSON, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
    )
    op.create_index("ix_measurements_device_status", "measurements", ["device", "status"])
    op.create_index("ix_measurements_owner", "measurements", ["owner"])
    op.create_table(
        "device_operations",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=True),
        sa.Column("device", sa.String(100), nullable=False),
        sa.Column("space", sa.String(64), nullable=False),
        sa.Column("job_id", sa.String(36), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=True),
        sa.Column("params", JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("progress", JSON, nullable=True),
        sa.Column("result", JSON, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
    )
    op.create_index("ix_device_operations_job_id", "device_operations", ["job_id"])
    op.create_table(
        "device_table_versions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("space", sa.String(64), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("table", JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("name", "space", "revision", name="uq_device_table_versions"),
    )


def downgrade() -> None:
    op.drop_table("device_table_versions")
    op.drop_index("ix_device_operations_job_id", table_name="device_operations")
    op.drop_table("device_operations")
    op.drop_index("ix_measurements_owner", table_name="measurements")
    op.drop_index("ix_measurements_device_status", table_name="measurements")
    op.drop_table("measurements")
    op.drop_index("ix_device_agents_device", table_name="device_agents")
    op.drop_table("device_agents")
