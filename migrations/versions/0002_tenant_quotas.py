"""tenant quotas: concurrent jobs, evaluations in flight, requests per minute

Revision ID: 0002_tenant_quotas
Revises: 0001_initial_schema
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_tenant_quotas"
down_revision = "0001_initial_schema"
branch_labels = None
depends_on = None

COLUMNS = ("max_concurrent_jobs", "max_active_evaluations", "rate_limit_per_minute")


def upgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        for name in COLUMNS:
            batch.add_column(sa.Column(name, sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        for name in COLUMNS:
            batch.drop_column(name)
