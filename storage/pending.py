"""Queries on a fanned-out job's batch in flight (``pending_trials``).

The job's owner hands a batch out (rows + the strategy state after ``ask``, under its
lease); any worker claims rows with ``FOR UPDATE SKIP LOCKED`` and completes each
under its claim token, so a result is stored once even when a claim expired and the
candidate ran twice. The owner records each finished candidate and deletes its row.

Times are the database's (``now()``), never a worker's: a worker whose clock runs
fast cannot make another's claim look stale. A candidate claimed ``max_claims`` times
whose last claim went stale (its evaluation killed the worker each time) is not
handed out again: it ends as a failed trial naming the attempts.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storage.jobs import LeaseLost
from storage.models import Job, PendingTrial

#: Claims of one candidate after which it fails as a trial (settings ``max_claim_attempts``).
MAX_CLAIMS = 3


@dataclass(frozen=True)
class Claim:
    """Candidates a worker may evaluate; only ``token`` completes them."""

    job_id: str
    token: str
    candidates: list[tuple[int, str]]  # (seq, arch)


def _without_waiting_for_disk(session: Session) -> None:
    """Commit this transaction without waiting for its WAL flush (PostgreSQL ``synchronous_commit``).

    Safe for claims and results: one lost in a crash leaves its row pending, so it is
    claimed and evaluated again, and the owner's batch write (a normal commit) flushes
    every earlier change with it. It saves two disk flushes per candidate.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL synchronous_commit TO OFF"))


def _owned(job_id: str, lease_token: str) -> Any:
    return and_(Job.id == job_id, Job.lease_token == lease_token, Job.status == "running")


def _db_now() -> Any:
    return func.now()


def _stale_before(lease_seconds: int) -> Any:
    return func.now() - dt.timedelta(seconds=lease_seconds)


def hand_out(session: Session, job_id: str, lease_token: str, first_seq: int,
             candidates: Sequence[tuple[str, str]], checkpoint: dict[str, Any]) -> None:
    """Store candidates (arch, arch_hash) from ``first_seq`` on as pending rows, with the strategy
    state that asked for them.

    Idempotent: a retry after a connection lost during COMMIT finds the rows there
    (the same seqs, asked by the same state) and adds nothing.
    """
    owned = session.execute(update(Job).where(_owned(job_id, lease_token))
                            .values(checkpoint=checkpoint, heartbeat_at=_db_now())
                            .execution_options(synchronize_session=False)).rowcount
    if owned != 1:
        raise LeaseLost(job_id)
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    rows = [{"job_id": job_id, "seq": first_seq + i, "arch": arch, "arch_hash": arch_hash, "status": "pending",
             "claims": 0} for i, (arch, arch_hash) in enumerate(candidates)]
    if rows:
        session.execute(dialect.insert(PendingTrial).values(rows)
                        .on_conflict_do_nothing(index_elements=["job_id", "seq"]))


def batch(session: Session, job_id: str) -> list[PendingTrial]:
    return list(session.scalars(select(PendingTrial).where(PendingTrial.job_id == job_id)
                                .order_by(PendingTrial.seq)).all())


def _claimable(stale: Any) -> Any:
    return and_(PendingTrial.status == "pending",
                or_(PendingTrial.claim_token.is_(None), PendingTrial.claim_heartbeat_at < stale))


def fail_overclaimed(session: Session, job_id: str, lease_seconds: int, max_claims: int = MAX_CLAIMS) -> int:
    """Candidates whose ``max_claims``-th claim went stale end as failed results (poison candidates)."""
    stale = _stale_before(lease_seconds)
    return session.execute(
        update(PendingTrial)
        .where(PendingTrial.job_id == job_id, PendingTrial.status == "pending", PendingTrial.claims >= max_claims,
               PendingTrial.claim_token.is_not(None), PendingTrial.claim_heartbeat_at < stale)
        .values(status="done", metrics=None, started_at=_db_now(), finished_at=_db_now(),
                error=f"the candidate was claimed {max_claims} times and its worker stopped every time "
                      "before a result (it may crash or kill its worker); not retried")
        .execution_options(synchronize_session=False)).rowcount


def claim(session: Session, job_id: str, worker: str, lease_seconds: int, limit: int = 1,
          max_claims: int = MAX_CLAIMS) -> Claim | None:
    """Claim up to ``limit`` unclaimed (or expired) candidates of a running, not cancelled job."""
    _without_waiting_for_disk(session)
    fail_overclaimed(session, job_id, lease_seconds, max_claims)
    stale = _stale_before(lease_seconds)
    token = str(uuid.uuid4())
    job_running = (select(Job.id).where(Job.id == job_id, Job.status == "running",
                                        Job.cancel_requested.is_(False)).exists())
    # two statements, not UPDATE ... IN (SELECT ... LIMIT): PostgreSQL may run such a subquery
    # once per row and take more than ``limit``; the rows selected here stay locked until commit
    free = list(session.scalars(
        select(PendingTrial.seq).where(PendingTrial.job_id == job_id, _claimable(stale), job_running)
        .order_by(PendingTrial.seq).limit(limit).with_for_update(skip_locked=True)).all())
    if not free:
        return None
    rows = session.execute(
        update(PendingTrial).where(PendingTrial.job_id == job_id, PendingTrial.seq.in_(free))
        .values(claim_token=token, claimed_by=worker, claim_heartbeat_at=_db_now(),
                claims=PendingTrial.claims + 1)
        .returning(PendingTrial.seq, PendingTrial.arch)
        .execution_options(synchronize_session=False)).all()
    if not rows:
        return None
    return Claim(job_id, token, sorted((int(seq), str(arch)) for seq, arch in rows))


def heartbeat(session: Session, tokens: Iterable[str]) -> None:
    tokens = list(tokens)
    if tokens:
        _without_waiting_for_disk(session)
        session.execute(update(PendingTrial)
                        .where(PendingTrial.claim_token.in_(tokens), PendingTrial.status == "pending")
                        .values(claim_heartbeat_at=_db_now()).execution_options(synchronize_session=False))


def complete(session: Session, job_id: str, seq: int, token: str, *, metrics: dict[str, float] | None,
             error: str | None, duration_s: float) -> bool:
    """Store one result, only under the claim that is still current. False: someone else's result counts.

    It ended now (the database's clock) and started ``duration_s`` (the worker's stopwatch) before.
    """
    _without_waiting_for_disk(session)
    finished_at = func.clock_timestamp() if session.get_bind().dialect.name == "postgresql" else func.now()
    started_at = finished_at - dt.timedelta(seconds=max(0.0, duration_s))
    return session.execute(
        update(PendingTrial)
        .where(PendingTrial.job_id == job_id, PendingTrial.seq == seq, PendingTrial.status == "pending",
               PendingTrial.claim_token == token)
        .values(status="done", metrics=metrics, error=error, started_at=started_at, finished_at=finished_at)
        .execution_options(synchronize_session=False)).rowcount == 1


def drop_unclaimed(session: Session, job_id: str, lease_seconds: int) -> int:
    """After a cancel: candidates nobody is evaluating never start (conditional, so a racing claim wins or loses whole)."""
    stale = _stale_before(lease_seconds)
    return session.execute(update(PendingTrial).where(PendingTrial.job_id == job_id, _claimable(stale))
                           .values(status="dropped").execution_options(synchronize_session=False)).rowcount


def remove(session: Session, job_id: str, seqs: Iterable[int]) -> None:
    """Forget candidates just recorded as trials."""
    seqs = list(seqs)
    if seqs:
        session.execute(delete(PendingTrial).where(PendingTrial.job_id == job_id, PendingTrial.seq.in_(seqs))
                        .execution_options(synchronize_session=False))


def clear(session: Session, job_id: str) -> None:
    """Forget the batch in flight (it was just recorded, or the job ended)."""
    session.execute(delete(PendingTrial).where(PendingTrial.job_id == job_id)
                    .execution_options(synchronize_session=False))


def job_state(session: Session, job_id: str) -> tuple[str, bool] | None:
    """(status, cancel requested) of the job; None if it does not exist."""
    row = session.execute(select(Job.status, Job.cancel_requested).where(Job.id == job_id)).one_or_none()
    return None if row is None else (str(row[0]), bool(row[1]))
