"""Queries on measurement agents, measurements, device operations and table revisions.

Agents claim measurements with a conditional update (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL), so two agents of one device never measure the same row at once; a row
claimed by an agent whose heartbeat went stale is claimed again by the next one.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from storage.models import Device, DeviceAgent, DeviceOperation, DeviceTableVersion, Measurement, utcnow

#: A row claimed this many times by agents that then died is failed instead of claimed again.
MAX_ATTEMPTS = 3
MEASUREMENT_TERMINAL = ("done", "failed")


# --- agents -----------------------------------------------------------------------------------------

def register_agent(session: Session, *, agent_id: str, device: str, space: str, runtime: str, queue: str,
                   host: str, environment: dict[str, Any]) -> DeviceAgent:
    agent = DeviceAgent(id=agent_id, device=device, space=space, runtime=runtime, queue=queue, host=host,
                        environment=environment, started_at=utcnow(), heartbeat_at=utcnow())
    session.add(agent)
    session.flush()
    return agent


def agent_heartbeat(session: Session, agent_id: str) -> None:
    session.execute(update(DeviceAgent).where(DeviceAgent.id == agent_id)
                    .values(heartbeat_at=utcnow()).execution_options(synchronize_session=False))


def agent_stopped(session: Session, agent_id: str) -> None:
    session.execute(update(DeviceAgent).where(DeviceAgent.id == agent_id)
                    .values(stopped_at=utcnow()).execution_options(synchronize_session=False))


def agents_of(session: Session, device: str) -> list[DeviceAgent]:
    """The device's agents, most recently heard from first."""
    return list(session.scalars(select(DeviceAgent).where(DeviceAgent.device == device)
                                .order_by(DeviceAgent.heartbeat_at.desc())).all())


def online_agents(session: Session, device: str, space: str | None, offline_after_s: float) -> list[DeviceAgent]:
    fresh = utcnow() - dt.timedelta(seconds=offline_after_s)
    query = select(DeviceAgent).where(DeviceAgent.device == device, DeviceAgent.heartbeat_at >= fresh,
                                      DeviceAgent.stopped_at.is_(None))
    if space:
        query = query.where(DeviceAgent.space == space)
    return list(session.scalars(query).all())


# --- measurements -----------------------------------------------------------------------------------

def request_measurements(session: Session, *, device: str, space: str, archs: Sequence[tuple[str, str]],
                         purpose: str, owner: str | None) -> list[int]:
    """Queue (arch, arch_hash) pairs for the device's agent; returns the row ids in order."""
    rows = [Measurement(device=device, space=space, arch=a, arch_hash=h, purpose=purpose, owner=owner,
                        status="pending", attempts=0, created_at=utcnow()) for a, h in archs]
    session.add_all(rows)
    session.flush()
    return [r.id for r in rows]


def claim_measurements(session: Session, *, agent_id: str, device: str, space: str, limit: int,
                       offline_after_s: float) -> list[Measurement]:
    """Claim up to ``limit`` rows: pending ones, or ones claimed by an agent that went silent."""
    stale = utcnow() - dt.timedelta(seconds=offline_after_s)
    dead = select(DeviceAgent.id).where(or_(DeviceAgent.heartbeat_at < stale, DeviceAgent.stopped_at.is_not(None)))
    candidates = (select(Measurement).where(
        Measurement.device == device, Measurement.space == space,
        or_(Measurement.status == "pending",
            and_(Measurement.status == "claimed", Measurement.claimed_by.in_(dead))))
        .order_by(Measurement.id).limit(limit).with_for_update(skip_locked=True))
    rows = list(session.scalars(candidates).all())
    claimed = []
    for row in rows:
        if row.attempts >= MAX_ATTEMPTS:
            row.status, row.error, row.finished_at = "failed", (
                f"not measured: the agent measuring it stopped answering {row.attempts} times"), utcnow()
            continue
        row.status, row.claimed_by, row.attempts = "claimed", agent_id, row.attempts + 1
        claimed.append(row)
    session.flush()
    return claimed


def has_unclaimed(session: Session, device: str, space: str, offline_after_s: float) -> bool:
    stale = utcnow() - dt.timedelta(seconds=offline_after_s)
    dead = select(DeviceAgent.id).where(or_(DeviceAgent.heartbeat_at < stale, DeviceAgent.stopped_at.is_not(None)))
    return session.scalar(select(func.count()).select_from(Measurement).where(
        Measurement.device == device, Measurement.space == space,
        or_(Measurement.status == "pending",
            and_(Measurement.status == "claimed", Measurement.claimed_by.in_(dead))))) > 0


def complete_measurement(session: Session, measurement_id: int, agent_id: str, *, latency_ms: float | None,
                         energy_mj: float | None, peak_memory_kb: float | None, environment: dict[str, Any],
                         error: str | None) -> bool:
    """Store a result under the agent's claim (False if another agent took the row meanwhile)."""
    status = "done" if error is None else "failed"
    result = session.execute(
        update(Measurement).where(Measurement.id == measurement_id, Measurement.claimed_by == agent_id,
                                  Measurement.status == "claimed")
        .values(status=status, latency_ms=latency_ms, energy_mj=energy_mj, peak_memory_kb=peak_memory_kb,
                environment=environment, error=error, finished_at=utcnow())
        .execution_options(synchronize_session=False))
    return result.rowcount == 1


def measurements(session: Session, ids: Sequence[int]) -> list[Measurement]:
    by_id = {m.id: m for m in session.scalars(select(Measurement).where(Measurement.id.in_(list(ids)))).all()}
    return [by_id[i] for i in ids if i in by_id]


def device_data(session: Session, device: str, space: str, purposes: Sequence[str] | None = None) -> list[Measurement]:
    """Every successful measurement of the device in the space (oldest first)."""
    query = select(Measurement).where(Measurement.device == device, Measurement.space == space,
                                      Measurement.status == "done")
    if purposes:
        query = query.where(Measurement.purpose.in_(list(purposes)))
    return list(session.scalars(query.order_by(Measurement.id)).all())


def owner_measurements(session: Session, owner: str) -> list[Measurement]:
    return list(session.scalars(select(Measurement).where(Measurement.owner == owner)
                                .order_by(Measurement.id)).all())


# --- operations (onboard, verify) -------------------------------------------------------------------

def create_operation(session: Session, *, kind: str, device: str, space: str, params: dict[str, Any],
                     tenant_id: int | None, job_id: str | None = None) -> DeviceOperation:
    op = DeviceOperation(id=str(uuid.uuid4()), kind=kind, device=device, space=space, params=params,
                         tenant_id=tenant_id, job_id=job_id, status="queued", created_at=utcnow())
    session.add(op)
    session.flush()
    return op


def get_operation(session: Session, op_id: str, tenant_id: int | None = None) -> DeviceOperation | None:
    query = select(DeviceOperation).where(DeviceOperation.id == op_id)
    if tenant_id is not None:
        query = query.where(DeviceOperation.tenant_id == tenant_id)
    return session.scalar(query)


def job_operations(session: Session, job_id: str) -> list[DeviceOperation]:
    return list(session.scalars(select(DeviceOperation).where(DeviceOperation.job_id == job_id)
                                .order_by(DeviceOperation.created_at)).all())


def start_operation(session: Session, op_id: str) -> bool:
    """queued -> running (once: a second delivery of the same task finds it running)."""
    result = session.execute(update(DeviceOperation).where(DeviceOperation.id == op_id,
                                                           DeviceOperation.status == "queued")
                             .values(status="running", started_at=utcnow())
                             .execution_options(synchronize_session=False))
    return result.rowcount == 1


def operation_progress(session: Session, op_id: str, progress: dict[str, Any]) -> None:
    session.execute(update(DeviceOperation).where(DeviceOperation.id == op_id)
                    .values(progress=progress).execution_options(synchronize_session=False))


def finish_operation(session: Session, op_id: str, status: str, *, result: dict[str, Any] | None = None,
                     error: str | None = None) -> None:
    session.execute(update(DeviceOperation).where(DeviceOperation.id == op_id)
                    .values(status=status, result=result, error=error, finished_at=utcnow())
                    .execution_options(synchronize_session=False))


# --- table revisions and pins -----------------------------------------------------------------------

def table_revision(table: dict[str, Any]) -> int:
    """A table's revision (shipped and uploaded tables are revision 0)."""
    return int((table.get("provenance") or {}).get("revision", 0))


def store_revision(session: Session, table: dict[str, Any], tenant_id: int | None) -> Device:
    """Make ``table`` the owner's current table as the next revision, keeping every earlier one
    (as a numbered revision here and, by content hash, where jobs pin tables: ``catalog.upsert_device``)."""
    from storage.catalog import upsert_device

    name, space = table["device"]["name"], table["space"]
    last = session.scalar(select(func.max(DeviceTableVersion.revision))
                          .where(DeviceTableVersion.name == name, DeviceTableVersion.space == space))
    revision = int(last or 0) + 1
    table = {**table, "provenance": {**table.get("provenance", {}), "revision": revision}}
    session.add(DeviceTableVersion(name=name, space=space, revision=revision, table=table, created_at=utcnow()))
    return upsert_device(session, table, tenant_id=tenant_id)


def table_at(session: Session, name: str, space: str, revision: int) -> dict[str, Any] | None:
    row = session.scalar(select(DeviceTableVersion.table).where(
        DeviceTableVersion.name == name, DeviceTableVersion.space == space, DeviceTableVersion.revision == revision))
    return row


def add_trial_metrics(session: Session, job_id: str, seq: int, extra: dict[str, float]) -> None:
    """Merge measured values into a stored trial's metrics (verification adds, never overwrites others)."""
    from storage.models import Trial

    trial = session.scalar(select(Trial).where(Trial.job_id == job_id, Trial.seq == seq))
    if trial is not None:
        trial.metrics = {**trial.metrics, **extra}


def set_job_phase(session: Session, job_id: str, token: str, phase: dict[str, Any]) -> bool:
    """Report what a running job waits on (its ``progress.phase``), under its lease."""
    from storage.models import Job

    result = session.execute(update(Job).where(Job.id == job_id, Job.lease_token == token,
                                               Job.status == "running")
                             .values(phase=phase, heartbeat_at=utcnow()).execution_options(synchronize_session=False))
    return result.rowcount == 1
