"""Migrations on real PostgreSQL (and SQLite): up, down, up again, and no drift from the models."""

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from storage.migrate import downgrade, upgrade
from storage.models import Base


def drift(url: str) -> list[object]:
    engine = create_engine(url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    engine.dispose()
    return diff


def tables(url: str) -> set[str]:
    engine = create_engine(url)
    names = set(inspect(engine).get_table_names()) - {"alembic_version"}
    engine.dispose()
    return names


def test_postgres_upgrade_downgrade_upgrade_without_drift(pg_url: str) -> None:
    upgrade(pg_url)
    assert tables(pg_url) == set(Base.metadata.tables)
    assert drift(pg_url) == []
    downgrade(pg_url, "base")
    assert tables(pg_url) == set()
    upgrade(pg_url)
    assert drift(pg_url) == []


def test_sqlite_upgrade_without_drift(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url)
    assert drift(url) == []
    downgrade(url, "base")
    assert tables(url) == set()
