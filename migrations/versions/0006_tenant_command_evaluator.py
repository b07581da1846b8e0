"""command evaluator per tenant; poison-job and reaper bookkeeping on jobs

- tenants.allow_command_evaluator: the operator lets this tenant run submitted commands.
- jobs.lost_deliveries: deliveries that died (lease went stale) since the job last recorded progress.
- jobs.in_flight: the batch a re-delivered job is evaluating (names a poison candidate).
- jobs.requeues / jobs.requeued_at: the reaper's re-sends of a job nobody runs (backoff).

Revision ID: 0006_tenant_command_evaluator
Revises: 0005_search_spaces
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006_tenant_command_evaluator"
down_revision = "0005_search_spaces"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("allow_command_evaluator", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("lost_deliveries", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("in_flight", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
                                   nullable=True))
        batch.add_column(sa.Column("requeues", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("requeued_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        for name in ("requeued_at", "requeues", "in_flight", "lost_deliveries"):
            batch.drop_column(name)
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("allow_command_evaluator")
