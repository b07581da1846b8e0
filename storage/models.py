"""SQLAlchemy 2 models: the job row is the truth (see DESIGN.md, Reliability model)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import false
from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy import TypeDecorator, UniqueConstraint
from sqlalchemy.engine import Dialect
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from storage.clock import UTCDateTime, db_now

JSONType = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> dt.datetime:
    """This process's clock: only for durations and for rows that are not a job's (see storage/clock.py)."""
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSONType, list[Any]: JSONType,
                           dt.datetime: UTCDateTime()}


class Tenant(Base):
    __tablename__ = "tenants"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=db_now())
    #: The operator lets this tenant run submitted commands on the workers (HWNAS_ALLOW_COMMAND_EVALUATOR
    #: lets every tenant).
    allow_command_evaluator: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: Quotas; NULL means the service-wide default (settings).
    max_concurrent_jobs: Mapped[int | None] = mapped_column(Integer)
    max_active_evaluations: Mapped[int | None] = mapped_column(Integer)
    rate_limit_per_minute: Mapped[int | None] = mapped_column(Integer)
    #: Latency tables the tenant may own (NULL: the service-wide default, settings).
    max_device_tables: Mapped[int | None] = mapped_column(Integer)


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    key_hash: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=db_now())
    revoked_at: Mapped[dt.datetime | None]


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key", name="uq_jobs_tenant_idempotency"),
        Index("ix_jobs_status_created", "status", "created_at"),
    )
    #: created_at/updated_at come from the database clock; load them with the INSERT
    __mapper_args__ = {"eager_defaults": True}
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    spec: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16), default="queued")
    budget: Mapped[int] = mapped_column(Integer)
    evaluated: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    hypervolume: Mapped[float | None] = mapped_column(Float)
    best: Mapped[dict[str, Any] | None]
    #: seqs of the trials on the current Pareto front (kept with every batch written)
    front: Mapped[list[Any]] = mapped_column(default=list)
    reference_point: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    lease_token: Mapped[str | None] = mapped_column(String(36))
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    heartbeat_at: Mapped[dt.datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: Deliveries that died (their lease went stale) since the job last recorded progress.
    lost_deliveries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: The batch being evaluated, written only once a delivery died: names a poison candidate.
    in_flight: Mapped[dict[str, Any] | None]
    #: The reaper's re-sends since the job was last claimed, and the last one (for its backoff).
    requeues: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    requeued_at: Mapped[dt.datetime | None]
    checkpoint: Mapped[dict[str, Any] | None] = mapped_column(deferred=True)  # only workers read it
    #: What the job is doing inside a long step (differentiable search: sweep point, epoch, ...)
    phase: Mapped[dict[str, Any] | None]
    #: ``{"SPACE/DEVICE": content_hash}`` of the latency tables resolved at submit: the job
    #: reads those versions (device_versions), whatever happens to the device rows later.
    table_pins: Mapped[dict[str, Any] | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=db_now())
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime] = mapped_column(default=db_now(), onupdate=db_now())


class Trial(Base):
    __tablename__ = "trials"
    __table_args__ = (UniqueConstraint("job_id", "seq", name="uq_trials_job_seq"),)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    arch: Mapped[str] = mapped_column(Text)
    arch_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    metrics: Mapped[dict[str, Any]]
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[dt.datetime]
    finished_at: Mapped[dt.datetime]
    duration_s: Mapped[float] = mapped_column(Float)


class PendingTrial(Base):
    """A fanned-out job's batch in flight: one row per candidate until the owner records the batch.

    Any worker claims a row (claim token + heartbeat), evaluates it and completes it
    under that token; the job's owner then writes the batch to ``trials`` and deletes
    these rows in the same transaction. See nas/fanout.py.
    """

    __tablename__ = "pending_trials"
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    arch: Mapped[str] = mapped_column(Text)
    arch_hash: Mapped[str] = mapped_column(String(64))
    #: "pending" (to evaluate or being evaluated), "done" (result below), "dropped" (cancelled before it ran)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    claim_token: Mapped[str | None] = mapped_column(String(36))
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claim_heartbeat_at: Mapped[dt.datetime | None]
    claims: Mapped[int] = mapped_column(Integer, default=0)
    metrics: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]


class JobEvent(Base):
    __tablename__ = "job_events"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime] = mapped_column(default=db_now())
    kind: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text, default="")


class Device(Base):
    """A device's latency table for one search space (the whole table file as JSON).

    ``tenant_id`` NULL is a shipped table (public); otherwise the uploading tenant owns
    it and only that tenant sees it unless ``shared``. Every stored version is also in
    ``device_versions`` under its ``content_hash``, which jobs pin at submit.
    """

    __tablename__ = "devices"
    __table_args__ = (UniqueConstraint("tenant_id", "name", "space", name="uq_devices_owner_name_space"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    name: Mapped[str] = mapped_column(String(100))
    space: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(50), default="")
    table: Mapped[dict[str, Any]]
    content_hash: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class DeviceVersion(Base):
    """An immutable latency table by the SHA-256 of its JSON: what a job pinned at submit."""

    __tablename__ = "device_versions"
    content_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    space: Mapped[str] = mapped_column(String(50))
    table: Mapped[dict[str, Any]]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class JobHypervolume(Base):
    """The hypervolume history: one row per evaluation count where a job's hypervolume changed.

    The worker writes it with each batch (nas.service.DbRecorder); the dashboard reads it.
    """

    __tablename__ = "job_hypervolume"
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    evaluations: Mapped[int] = mapped_column(Integer, primary_key=True)
    hypervolume: Mapped[float] = mapped_column(Float)


class DashboardSession(Base):
    """A dashboard login: the cookie holds a random id, this row its SHA-256 (never the API key)."""

    __tablename__ = "dashboard_sessions"
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)


class ExportArtifact(Base):
    """A finished export zip by (space content hash, architecture, format): exports are costly."""

    __tablename__ = "export_cache"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    filename: Mapped[str] = mapped_column(String(300))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class BenchmarkTable(Base):
    __tablename__ = "benchmark_tables"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    space: Mapped[str] = mapped_column(String(64))
    columns: Mapped[list[Any]]
    row_count: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class BenchmarkRow(Base):
    __tablename__ = "benchmark_rows"
    table_id: Mapped[int] = mapped_column(ForeignKey("benchmark_tables.id", ondelete="CASCADE"),
                                          primary_key=True)
    arch: Mapped[str] = mapped_column(Text, primary_key=True)
    metrics: Mapped[dict[str, Any]]


class DeviceAgent(Base):
    """A measurement agent (``hwnas agent``): which device it measures on, and its heartbeat."""

    __tablename__ = "device_agents"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    device: Mapped[str] = mapped_column(String(100), index=True)
    space: Mapped[str] = mapped_column(String(64))
    runtime: Mapped[str] = mapped_column(String(50))
    queue: Mapped[str] = mapped_column(String(200))
    host: Mapped[str] = mapped_column(String(200))
    #: runtime version, threads, CPU model, host, ... as the agent reported them at start
    environment: Mapped[dict[str, Any]]
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    stopped_at: Mapped[dt.datetime | None]


class Measurement(Base):
    """One architecture to measure on a device (a request), then its result or the reason it failed.

    ``status``: pending -> claimed (by an agent) -> done | failed. Done rows are the
    device's measured data that onboarding and refits fit tables from.
    """

    __tablename__ = "measurements"
    __table_args__ = (Index("ix_measurements_device_status", "device", "status"),)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    device: Mapped[str] = mapped_column(String(100))
    space: Mapped[str] = mapped_column(String(64))
    arch: Mapped[str] = mapped_column(Text)
    arch_hash: Mapped[str] = mapped_column(String(64))
    #: reference | validation | verify | objective (why it was measured)
    purpose: Mapped[str] = mapped_column(String(32))
    #: the onboarding/verification/job id that asked for it
    owner: Mapped[str | None] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    claimed_by: Mapped[str | None] = mapped_column(String(36))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    energy_mj: Mapped[float | None] = mapped_column(Float)
    peak_memory_kb: Mapped[float | None] = mapped_column(Float)
    environment: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None]


class DeviceOperation(Base):
    """An onboarding or a front verification: run by a worker, waiting on an agent's measurements."""

    __tablename__ = "device_operations"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # onboard | verify
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    device: Mapped[str] = mapped_column(String(100))
    space: Mapped[str] = mapped_column(String(64))
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    params: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16), default="queued")
    progress: Mapped[dict[str, Any] | None]
    result: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]


class DeviceTableVersion(Base):
    """Every revision of a device table hwnas fitted (onboarding, refits after verification)."""

    __tablename__ = "device_table_versions"
    __table_args__ = (UniqueConstraint("name", "space", "revision", name="uq_device_table_versions"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    space: Mapped[str] = mapped_column(String(64))
    revision: Mapped[int] = mapped_column(Integer)
    table: Mapped[dict[str, Any]]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class SearchSpaceRow(Base):
    """One definition (``hwnas.space/1``) a tenant registered under a name.

    Rows are never changed in content: registering other content under the name adds
    a row, so a job that pinned a content hash still finds its definition. The
    name's current definition is its row with the highest ``version``.
    """

    __tablename__ = "search_spaces"
    __table_args__ = (UniqueConstraint("tenant_id", "name", "content_hash", name="uq_search_spaces_tenant_name_hash"),
                      Index("ix_search_spaces_tenant_hash", "tenant_id", "content_hash"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    content_hash: Mapped[str] = mapped_column(String(64))
    #: 1, 2, ... per (tenant, name) in order of registration; re-registering old content makes it current again.
    version: Mapped[int] = mapped_column(Integer)
    definition: Mapped[dict[str, Any]]
    registered_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
