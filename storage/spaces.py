"""Queries on tenants' registered search space definitions (``search_spaces`` rows)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.models import SearchSpaceRow


def register(session: Session, *, tenant_id: int, name: str, content_hash: str,
             definition: dict[str, Any]) -> tuple[SearchSpaceRow, bool]:
    """Make ``definition`` the tenant's current one for ``name``. Returns (row, changed): not
    changed when it already was the current one. Earlier definitions stay (jobs pin them)."""
    current = current_row(session, tenant_id, name)
    if current is not None and current.content_hash == content_hash:
        return current, False
    top = session.scalar(select(func.max(SearchSpaceRow.version)).where(
        SearchSpaceRow.tenant_id == tenant_id, SearchSpaceRow.name == name)) or 0
    row = session.scalar(select(SearchSpaceRow).where(
        SearchSpaceRow.tenant_id == tenant_id, SearchSpaceRow.name == name,
        SearchSpaceRow.content_hash == content_hash))
    if row is None:
        row = SearchSpaceRow(tenant_id=tenant_id, name=name, content_hash=content_hash, definition=definition)
        session.add(row)
    row.version = top + 1
    session.flush()
    return row, True


def current_row(session: Session, tenant_id: int, name: str) -> SearchSpaceRow | None:
    return session.scalar(select(SearchSpaceRow).where(
        SearchSpaceRow.tenant_id == tenant_id, SearchSpaceRow.name == name)
        .order_by(SearchSpaceRow.version.desc()).limit(1))


def by_hash(session: Session, name: str, content_hash: str, tenant_id: int | None = None) -> SearchSpaceRow | None:
    """A definition of ``name`` by content hash (the tenant's when given; the content is the same either way)."""
    query = select(SearchSpaceRow).where(SearchSpaceRow.content_hash == content_hash, SearchSpaceRow.name == name)
    if tenant_id is not None:
        query = query.where(SearchSpaceRow.tenant_id == tenant_id)
    return session.scalar(query.order_by(SearchSpaceRow.id).limit(1))


def list_current(session: Session, tenant_id: int) -> list[SearchSpaceRow]:
    """The tenant's current definition of each name, by name."""
    latest = (select(SearchSpaceRow.name, func.max(SearchSpaceRow.version).label("version"))
              .where(SearchSpaceRow.tenant_id == tenant_id).group_by(SearchSpaceRow.name).subquery())
    return list(session.scalars(select(SearchSpaceRow).join(
        latest, (SearchSpaceRow.name == latest.c.name) & (SearchSpaceRow.version == latest.c.version))
        .where(SearchSpaceRow.tenant_id == tenant_id).order_by(SearchSpaceRow.name)).all())


def versions(session: Session, tenant_id: int, name: str) -> list[SearchSpaceRow]:
    return list(session.scalars(select(SearchSpaceRow).where(
        SearchSpaceRow.tenant_id == tenant_id, SearchSpaceRow.name == name)
        .order_by(SearchSpaceRow.version)).all())
