"""pending trials: a fanned-out job's batch in flight, claimed by workers with SKIP LOCKED

Revision ID: 0003_pending_trials
Revises: 0002_tenant_quotas
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003_pending_trials"
down_revision = "0002_tenant_quotas"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "pending_trials",
        sa.Column("job_id", sa.String(36), sa.ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("seq", sa.Integer(), primary_key=True),
        sa.Column("arch", sa.Text(), nullable=False),
        sa.Column("arch_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("claim_token", sa.String(36), nullable=True),
        sa.Column("claimed_by", sa.String(200), nullable=True),
        sa.Column("claim_heartbeat_at", TS, nullable=True),
        sa.Column("claims", sa.Integer(), nullable=False),
        sa.Column("metrics", JSON, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("pending_trials")
