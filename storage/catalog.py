"""Queries on devices (latency tables) and registered benchmark tables.

A tenant sees the shipped tables (``tenant_id`` NULL), tables others shared, and its
own; where names collide its own wins, then the shipped one.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from storage.models import BenchmarkRow, BenchmarkTable, Device, DeviceVersion, Tenant


def content_hash(table: dict[str, Any]) -> str:
    """SHA-256 of a table's canonical JSON: the version a job pins."""
    return hashlib.sha256(json.dumps(table, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _owner(query: Any, tenant_id: int | None) -> Any:
    return query.where(Device.tenant_id.is_(None) if tenant_id is None else Device.tenant_id == tenant_id)


def upsert_device(session: Session, table: dict[str, Any], *, tenant_id: int | None = None,
                  shared: bool | None = None) -> Device:
    """Store ``table`` as the owner's (``tenant_id`` None: shipped, public) and its version by hash."""
    name, space = table["device"]["name"], table["space"]
    digest = content_hash(table)
    with session.no_autoflush:
        if session.get(DeviceVersion, digest) is None:
            session.add(DeviceVersion(content_hash=digest, name=name, space=space, table=table))
        device = session.scalar(_owner(select(Device).where(Device.name == name, Device.space == space),
                                       tenant_id))
    if device is None:
        device = Device(name=name, space=space, tenant_id=tenant_id, shared=tenant_id is None)
        session.add(device)
    if shared is not None and tenant_id is not None:
        device.shared = shared
    device.kind = str(table["device"].get("kind", ""))
    device.table = table
    device.content_hash = digest
    session.flush()
    return device


def adopt_legacy_tables(session: Session) -> int:
    """Rows from before tenant-owned tables (empty ``content_hash``): the tenant their
    provenance names as ``uploaded_by`` owns them (private); every one gets its version."""
    rows = list(session.scalars(select(Device).where(Device.content_hash == "")).all())
    for device in rows:
        owner = (device.table.get("provenance") or {}).get("uploaded_by")
        if owner is not None and device.tenant_id is None:
            device.tenant_id = session.scalar(select(Tenant.id).where(Tenant.name == str(owner)))
            device.shared = False
        digest = content_hash(device.table)
        if session.get(DeviceVersion, digest) is None:
            session.add(DeviceVersion(content_hash=digest, name=device.name, space=device.space, table=device.table))
        device.content_hash = digest
    session.flush()
    return len(rows)


def _visible(query: Any, tenant_id: int | None) -> Any:
    """Shipped and shared tables, plus the tenant's own (None: every table, for operators)."""
    if tenant_id is None:
        return query
    return query.where(or_(Device.tenant_id.is_(None), Device.shared.is_(True), Device.tenant_id == tenant_id))


def _prefer_own(rows: list[Device], tenant_id: int | None) -> list[Device]:
    """One row per (name, space): the tenant's own, else the shipped one, else the oldest shared."""
    best: dict[tuple[str, str], Device] = {}
    for d in rows:
        key = (d.name, d.space)
        if key not in best or _rank(d, tenant_id) < _rank(best[key], tenant_id):
            best[key] = d
    return sorted(best.values(), key=lambda d: (d.name, d.space))


def _rank(d: Device, tenant_id: int | None) -> tuple[int, int]:
    return (0 if d.tenant_id == tenant_id and tenant_id is not None else 1 if d.tenant_id is None else 2, d.id)


def get_device(session: Session, name: str, space: str | None = None, *,
               tenant_id: int | None = None) -> list[Device]:
    """The tables named ``name`` that ``tenant_id`` may use, one per space."""
    query = select(Device).where(Device.name == name)
    if space:
        query = query.where(Device.space == space)
    return _prefer_own(list(session.scalars(_visible(query, tenant_id)).all()), tenant_id)


def list_devices(session: Session, space: str | None = None, *, tenant_id: int | None = None) -> list[Device]:
    query = select(Device)
    if space:
        query = query.where(Device.space == space)
    return _prefer_own(list(session.scalars(_visible(query, tenant_id)).all()), tenant_id)


def own_device(session: Session, name: str, space: str, tenant_id: int | None) -> Device | None:
    return session.scalar(_owner(select(Device).where(Device.name == name, Device.space == space), tenant_id))


def count_owned(session: Session, tenant_id: int) -> int:
    return int(session.scalar(select(func.count()).select_from(Device).where(Device.tenant_id == tenant_id)) or 0)


def table_version(session: Session, digest: str) -> dict[str, Any] | None:
    version = session.get(DeviceVersion, digest)
    return None if version is None else version.table


def replace_benchmark(session: Session, *, name: str, space: str, columns: list[str],
                      rows: dict[str, dict[str, float]], source: str) -> BenchmarkTable:
    old = session.scalar(select(BenchmarkTable).where(BenchmarkTable.name == name))
    if old is not None:
        session.execute(delete(BenchmarkRow).where(BenchmarkRow.table_id == old.id))
        session.delete(old)
        session.flush()
    table = BenchmarkTable(name=name, space=space, columns=columns, row_count=len(rows), source=source)
    session.add(table)
    session.flush()
    session.execute(BenchmarkRow.__table__.insert(),
                    [{"table_id": table.id, "arch": a, "metrics": m} for a, m in rows.items()])
    return table


def get_benchmark(session: Session, name: str) -> BenchmarkTable | None:
    return session.scalar(select(BenchmarkTable).where(BenchmarkTable.name == name))


def list_benchmarks(session: Session) -> list[BenchmarkTable]:
    return list(session.scalars(select(BenchmarkTable).order_by(BenchmarkTable.name)).all())


def benchmark_rows(session: Session, table_id: int) -> dict[str, dict[str, float]]:
    return {a: m for a, m in session.execute(
        select(BenchmarkRow.arch, BenchmarkRow.metrics).where(BenchmarkRow.table_id == table_id))}
