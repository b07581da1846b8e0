"""Alembic migrations, one self-contained file per revision (no imports of live models)."""
