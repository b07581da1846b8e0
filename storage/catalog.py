"""Queries on devices (latency tables) and registered benchmark tables."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from storage.models import BenchmarkRow, BenchmarkTable, Device


def upsert_device(session: Session, table: dict[str, Any]) -> Device:
    device = session.scalar(select(Device).where(Device.name == table["device"]["name"],
                                                 Device.space == table["space"]))
    if device is None:
        device = Device(name=table["device"]["name"], space=table["space"])
        session.add(device)
    device.kind = str(table["device"].get("kind", ""))
    device.table = table
    session.flush()
    return device


def get_device(session: Session, name: str, space: str | None = None) -> list[Device]:
    query = select(Device).where(Device.name == name)
    if space:
        query = query.where(Device.space == space)
    return list(session.scalars(query.order_by(Device.space)).all())


def list_devices(session: Session, space: str | None = None) -> list[Device]:
    query = select(Device).order_by(Device.name, Device.space)
    if space:
        query = query.where(Device.space == space)
    return list(session.scalars(query).all())


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
