"""Dashboard login sessions: the browser holds a random id, the database only its SHA-256.

A session names a tenant, carries a CSRF token for the pages' scripts, and expires
(``expires_at``, from the ``session_ttl_s`` setting); logging out deletes it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from storage.models import DashboardSession, Tenant, utcnow


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass(frozen=True)
class Login:
    session_id: str  # goes into the cookie, never stored
    csrf_token: str
    expires_at: dt.datetime


def create(session: Session, tenant_id: int, ttl_s: int) -> Login:
    now = utcnow()
    session.execute(delete(DashboardSession).where(DashboardSession.expires_at < now))  # keep the table small
    session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    expires = now + dt.timedelta(seconds=ttl_s)
    session.add(DashboardSession(id_hash=_hash(session_id), tenant_id=tenant_id, csrf_token=csrf,
                                 expires_at=expires))
    session.flush()
    return Login(session_id, csrf, expires)


def lookup(session: Session, session_id: str) -> tuple[Tenant, str] | None:
    """(tenant, csrf token) of a live session, or None (unknown or expired)."""
    row = session.execute(select(Tenant, DashboardSession.csrf_token)
                          .join(DashboardSession, DashboardSession.tenant_id == Tenant.id)
                          .where(DashboardSession.id_hash == _hash(session_id),
                                 DashboardSession.expires_at > utcnow())).first()
    return None if row is None else (row[0], row[1])


def end(session: Session, session_id: str) -> None:
    session.execute(delete(DashboardSession).where(DashboardSession.id_hash == _hash(session_id)))
