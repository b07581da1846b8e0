"""Queries on jobs and trials. A worker's writes carry its lease token; a stale token is refused.

Every timestamp of a job row and its events, and every lease comparison, is the database's
clock (storage/clock.py): a worker whose clock is off can neither steal a healthy job nor
write a time in the future.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.orm import Session

from storage.clock import database_time, db_now
from storage.models import Job, JobEvent, Trial

TERMINAL = ("succeeded", "failed", "cancelled")
STATUSES = ("queued", "running", *TERMINAL)
TRIAL_SORTS = ("seq", "-seq", "duration_s", "-duration_s", "status", "-status")


class LeaseLost(RuntimeError):
    """This worker no longer owns the job: another claimed it, or it ended."""


def create_job(session: Session, *, spec: dict[str, Any], name: str, budget: int,
               reference_point: dict[str, float] | None = None, tenant_id: int | None = None,
               idempotency_key: str | None = None) -> Job:
    job = Job(id=str(uuid.uuid4()), name=name, spec=spec, budget=budget, tenant_id=tenant_id,
              idempotency_key=idempotency_key, reference_point=reference_point, front=[])
    session.add(job)
    session.add(JobEvent(job_id=job.id, kind="submitted", message=f"budget {budget}"))
    session.flush()
    return job


def find_by_idempotency_key(session: Session, key: str, tenant_id: int) -> Job | None:
    return session.scalar(select(Job).where(Job.idempotency_key == key, Job.tenant_id == tenant_id))


def active_load(session: Session, tenant_id: int) -> tuple[int, int]:
    """(jobs queued or running, evaluations they still have to run) for a tenant."""
    count, remaining = session.execute(
        select(func.count(), func.coalesce(func.sum(Job.budget - Job.evaluated), 0))
        .where(Job.tenant_id == tenant_id, Job.status.in_(("queued", "running")))).one()
    return int(count), int(remaining)


def get_job(session: Session, job_id: str, tenant_id: int | None = None) -> Job | None:
    query = select(Job).where(Job.id == job_id)
    if tenant_id is not None:
        query = query.where(Job.tenant_id == tenant_id)
    return session.scalar(query)


def list_jobs(session: Session, *, status: str | None = None, limit: int = 50, offset: int = 0,
              tenant_id: int | None = None) -> tuple[list[Job], int]:
    where = []
    if status:
        where.append(Job.status == status)
    if tenant_id is not None:
        where.append(Job.tenant_id == tenant_id)
    total = session.scalar(select(func.count()).select_from(Job).where(*where)) or 0
    items = session.scalars(select(Job).where(*where).order_by(Job.created_at.desc(), Job.id)
                            .limit(limit).offset(offset)).all()
    return list(items), total


def list_trials(session: Session, job_id: str, *, sort: str = "seq", limit: int = 100,
                offset: int = 0, status: str | None = None) -> tuple[list[Trial], int]:
    """``sort`` is a column of TRIAL_SORTS or ``metric:KEY`` / ``-metric:KEY``."""
    where = [Trial.job_id == job_id]
    if status:
        where.append(Trial.status == status)
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    if key.startswith("metric:"):
        column: Any = Trial.metrics[key.removeprefix("metric:")].as_float()
    else:
        column = getattr(Trial, key)
    order = column.desc() if descending else column.asc()
    total = session.scalar(select(func.count()).select_from(Trial).where(*where)) or 0
    items = session.scalars(select(Trial).where(*where).order_by(order.nulls_last(), Trial.seq)
                            .limit(limit).offset(offset)).all()
    return list(items), total


def front_trials(session: Session, job: Job) -> list[Trial]:
    if not job.front:
        return []
    return list(session.scalars(select(Trial).where(Trial.job_id == job.id, Trial.seq.in_(job.front))
                                .order_by(Trial.seq)).all())


def get_trial(session: Session, job_id: str, seq: int) -> Trial | None:
    return session.scalar(select(Trial).where(Trial.job_id == job_id, Trial.seq == seq))


def request_cancel(session: Session, job_id: str) -> None:
    """Queued jobs end at once; running ones stop before their next evaluation.

    Both are conditional updates, so a cancel racing a claim or a finish leaves
    exactly one terminal state.
    """
    ended = session.execute(
        update(Job).where(Job.id == job_id, Job.status == "queued")
        .values(status="cancelled", finished_at=db_now(), cancel_requested=True)
        .execution_options(synchronize_session=False)).rowcount
    if ended:
        session.add(JobEvent(job_id=job_id, kind="cancelled", message="cancelled before it started"))
        return
    flagged = session.execute(
        update(Job).where(Job.id == job_id, Job.status == "running", Job.cancel_requested.is_(False))
        .values(cancel_requested=True).execution_options(synchronize_session=False)).rowcount
    if flagged:
        session.add(JobEvent(job_id=job_id, kind="cancel_requested", message="stops before its next evaluation"))


def claim(session: Session, job_id: str, owner: str, lease_seconds: int) -> str | None:
    """Take the job if it is queued, or running under a lease that went stale. Returns the token.

    Taking over a stale lease counts a lost delivery (the previous owner died or lost the
    database for a whole lease); ``record_batch`` resets the count when the job makes progress.
    """
    return _take(session, job_id, owner, or_(Job.lease_token.is_(None), Job.heartbeat_at < db_now(-lease_seconds)))


def take_over(session: Session, job_id: str, owner: str, dead_token: str) -> str | None:
    """Claim a running job whose owner is known to be dead (its lease need not be stale yet)."""
    return _take(session, job_id, owner, Job.lease_token == dead_token)


def _take(session: Session, job_id: str, owner: str, condition: Any) -> str | None:
    token = str(uuid.uuid4())
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_(("queued", "running")), condition)
        .values(lease_token=token, lease_owner=owner, heartbeat_at=db_now(), status="running",
                attempts=Job.attempts + 1, started_at=func.coalesce(Job.started_at, db_now()),
                lost_deliveries=Job.lost_deliveries + case((Job.status == "running", 1), else_=0),
                requeues=0, requeued_at=None)
        .execution_options(synchronize_session=False))
    if result.rowcount != 1:
        return None
    session.add(JobEvent(job_id=job_id, kind="started", message=f"claimed by {owner}"))
    return token


def lease_of(session: Session, job_id: str) -> tuple[str, str | None, str | None] | None:
    """(status, lease token, lease owner) of a job."""
    row = session.execute(select(Job.status, Job.lease_token, Job.lease_owner).where(Job.id == job_id)).first()
    return (row[0], row[1], row[2]) if row else None


def _owned(job_id: str, token: str) -> Any:
    return and_(Job.id == job_id, Job.lease_token == token, Job.status == "running")


def heartbeat(session: Session, job_id: str, token: str) -> bool:
    result = session.execute(update(Job).where(_owned(job_id, token)).values(heartbeat_at=db_now())
                             .execution_options(synchronize_session=False))
    return result.rowcount == 1


def begin_batch(session: Session, job_id: str, token: str, first_seq: int, archs: Sequence[str]) -> None:
    """Note the batch about to be evaluated (only once a delivery of the job died: it names the poison)."""
    result = session.execute(update(Job).where(_owned(job_id, token))
                             .values(in_flight={"first_seq": first_seq, "archs": list(archs)}, heartbeat_at=db_now())
                             .execution_options(synchronize_session=False))
    if result.rowcount != 1:
        raise LeaseLost(job_id)


def owned_job(session: Session, job_id: str, token: str) -> Job:
    job = session.scalar(select(Job).where(_owned(job_id, token)))
    if job is None:
        raise LeaseLost(job_id)
    return job


def cancel_requested(session: Session, job_id: str, token: str) -> bool:
    """The job's cancel flag, read under the lease (raises LeaseLost when it is gone)."""
    flag = session.scalar(select(Job.cancel_requested).where(_owned(job_id, token)))
    if flag is None:
        raise LeaseLost(job_id)
    return bool(flag)


def record_batch(session: Session, job_id: str, token: str, trials: Iterable[dict[str, Any]], *,
                 checkpoint: dict[str, Any], evaluated: int, failed: int, front: Sequence[int],
                 hypervolume: float, best: dict[str, Any] | None, phase: dict[str, Any] | None = None) -> bool:
    """Write trials and the checkpoint that produced them in one transaction, under the lease.

    ``trials`` may be empty: a checkpoint taken part-way through a long step (with its ``phase``).
    Returns whether a cancel was requested, so the worker needs no extra query to know.
    """
    cancel_requested = session.execute(
        update(Job).where(_owned(job_id, token))
        .values(checkpoint=checkpoint, evaluated=evaluated, failed=failed, front=list(front),
                hypervolume=hypervolume, best=best, heartbeat_at=db_now(), phase=phase,
                lost_deliveries=0, in_flight=None)
        .returning(Job.cancel_requested)
        .execution_options(synchronize_session=False)).scalar_one_or_none()
    if cancel_requested is None:
        raise LeaseLost(job_id)
    rows = [{"job_id": job_id, **t} for t in trials]
    if rows:
        session.execute(Trial.__table__.insert(), rows)
    return bool(cancel_requested)


def finish(session: Session, job_id: str, token: str, status: str, error: str | None = None) -> None:
    result = session.execute(
        update(Job).where(_owned(job_id, token))
        .values(status=status, error=error, finished_at=db_now(), lease_token=None, in_flight=None)
        .execution_options(synchronize_session=False))
    if result.rowcount != 1:
        raise LeaseLost(job_id)
    session.add(JobEvent(job_id=job_id, kind=status, message=error or ""))


def release(session: Session, job_id: str, token: str) -> None:
    """Hand the job back to the queue unfinished (its process is stopping): the next claim resumes it at
    once, without waiting for the lease to go stale and without counting a lost delivery."""
    result = session.execute(
        update(Job).where(_owned(job_id, token))
        .values(status="queued", lease_token=None, lease_owner=None, in_flight=None)
        .execution_options(synchronize_session=False))
    if result.rowcount == 1:
        session.add(JobEvent(job_id=job_id, kind="released", message="its worker stopped; it resumes on the next"))


def fail_unclaimed(session: Session, job_id: str, error: str) -> None:
    """End a queued job that cannot run (its spec no longer resolves)."""
    session.execute(update(Job).where(Job.id == job_id, Job.status.in_(("queued", "running")))
                    .values(status="failed", error=error, finished_at=db_now(), lease_token=None)
                    .execution_options(synchronize_session=False))
    session.add(JobEvent(job_id=job_id, kind="failed", message=error))


def job_trials(session: Session, job_id: str) -> list[Trial]:
    return list(session.scalars(select(Trial).where(Trial.job_id == job_id).order_by(Trial.seq)).all())


def runnable_job_ids(session: Session, lease_seconds: int) -> list[str]:
    """Queued jobs, and running jobs whose heartbeat went stale (an embedded server's restart)."""
    return list(session.scalars(select(Job.id).where(or_(
        Job.status == "queued", and_(Job.status == "running", Job.heartbeat_at < db_now(-lease_seconds))))
        .order_by(Job.created_at)).all())


#: The reaper waits lease x 2**k before its k-th re-send of a job nobody took (k capped here).
MAX_REQUEUE_BACKOFF = 6


def jobs_to_requeue(session: Session, lease_seconds: int) -> list[str]:
    """Jobs the reaper should send again, marked as re-sent (in this transaction).

    A job qualifies when nobody runs it: still queued a lease after it was submitted, or
    running under a stale lease. Its message may simply be waiting behind busy workers, so
    each further re-send waits twice as long (lease x 2**k, capped): a job waiting for hours
    gets a handful of messages, not one per reaper period. A claim resets the count.
    """
    rows = session.execute(
        select(Job.id, Job.status, Job.created_at, Job.heartbeat_at, Job.requeues, Job.requeued_at)
        .where(or_(and_(Job.status == "queued", Job.created_at < db_now(-lease_seconds)),
                   and_(Job.status == "running", Job.heartbeat_at < db_now(-lease_seconds))),
               or_(Job.requeued_at.is_(None), Job.requeued_at < db_now(-lease_seconds)))
        .order_by(Job.created_at)).all()
    now = database_time(session)
    due = []
    for job_id, _status, _created, _beat, requeues, requeued_at in rows:
        wait = lease_seconds * 2 ** min(requeues, MAX_REQUEUE_BACKOFF)
        if requeued_at is None or (now - requeued_at).total_seconds() >= wait:
            due.append(job_id)
    if due:
        session.execute(update(Job).where(Job.id.in_(due))
                        .values(requeues=Job.requeues + 1, requeued_at=db_now())
                        .execution_options(synchronize_session=False))
    return due


def get_trial_by_id(session: Session, job_id: str, trial_id: int) -> Trial | None:
    """A trial by its id, only if it belongs to ``job_id`` (whose tenant the caller checked)."""
    return session.scalar(select(Trial).where(Trial.id == trial_id, Trial.job_id == job_id))
