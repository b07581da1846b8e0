"""search spaces: tenants' registered hwnas.space/1 definitions (every version kept, by content hash)

Revision ID: 0005_search_spaces
Revises: 0004_job_phase
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005_search_spaces"
down_revision = "0004_job_phase"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "search_spaces",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", JSON, nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("tenant_id", "name", "content_hash", name="uq_search_spaces_tenant_name_hash"),
    )
    op.create_index("ix_search_spaces_tenant_hash", "search_spaces", ["tenant_id", "content_hash"])
    # registered space names are up to 63 characters; tables and benchmarks name their space
    for table in ("devices", "benchmark_tables"):
        with op.batch_alter_table(table) as batch:
            batch.alter_column("space", type_=sa.String(64), existing_type=sa.String(50), existing_nullable=False)


def downgrade() -> None:
    for table in ("devices", "benchmark_tables"):
        with op.batch_alter_table(table) as batch:
            batch.alter_column("space", type_=sa.String(50), existing_type=sa.String(64), existing_nullable=False)
    op.drop_index("ix_search_spaces_tenant_hash", table_name="search_spaces")
    op.drop_table("search_spaces")
