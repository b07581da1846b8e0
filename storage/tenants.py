"""Tenants and their API keys. Keys are random 256-bit secrets; only their SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from storage.clock import db_now
from storage.models import ApiKey, Tenant

KEY_PREFIX = "hwnas_"
DEFAULT_TENANT = "default"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class CreatedKey:
    id: int
    tenant: str
    name: str
    key: str  # shown once, never stored


def get_or_create_tenant(session: Session, name: str) -> Tenant:
    tenant = session.scalar(select(Tenant).where(Tenant.name == name))
    if tenant is None:
        tenant = Tenant(name=name)
        session.add(tenant)
        session.flush()
    return tenant


def lock_tenant(session: Session, tenant_id: int) -> None:
    """Serialise a tenant's submissions (row lock on PostgreSQL; SQLite serialises writers anyway)."""
    session.execute(select(Tenant.id).where(Tenant.id == tenant_id).with_for_update())


def create_key(session: Session, tenant_name: str, name: str = "") -> CreatedKey:
    tenant = get_or_create_tenant(session, tenant_name)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(tenant_id=tenant.id, name=name or tenant_name, prefix=key[: len(KEY_PREFIX) + 6],
                 key_hash=hash_key(key))
    session.add(row)
    session.flush()
    return CreatedKey(row.id, tenant.name, row.name, key)


def list_keys(session: Session) -> list[tuple[ApiKey, str]]:
    return [(k, t) for k, t in session.execute(
        select(ApiKey, Tenant.name).join(Tenant, Tenant.id == ApiKey.tenant_id).order_by(ApiKey.id))]


def revoke_key(session: Session, key_id: int) -> bool:
    result = session.execute(update(ApiKey).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
                             .values(revoked_at=db_now()).execution_options(synchronize_session=False))
    return result.rowcount == 1


def tenant_for_key(session: Session, key: str) -> Tenant | None:
    return session.scalar(select(Tenant).join(ApiKey, ApiKey.tenant_id == Tenant.id)
                          .where(ApiKey.key_hash == hash_key(key), ApiKey.revoked_at.is_(None)))


def set_command_evaluator(session: Session, tenant_name: str, allowed: bool) -> Tenant:
    """Let a tenant run submitted commands on the workers, or stop it (created if new)."""
    tenant = get_or_create_tenant(session, tenant_name)
    tenant.allow_command_evaluator = allowed
    session.flush()
    return tenant


def list_tenants(session: Session) -> list[Tenant]:
    return list(session.scalars(select(Tenant).order_by(Tenant.name)).all())


def command_evaluator_allowed(session: Session, tenant_id: int | None) -> bool:
    """The tenant row's own permission (the global setting is the caller's to add)."""
    if tenant_id is None:
        return False
    return bool(session.scalar(select(Tenant.allow_command_evaluator).where(Tenant.id == tenant_id)))
