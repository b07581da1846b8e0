"""Tasks take ids only; the lease on the job row decides who runs it."""

from __future__ import annotations

import logging
from functools import lru_cache

from sqlalchemy.orm import Session, sessionmaker

from nas.service import execute_job, help_with_job, run_operation, worker_identity
from storage import jobs as jobs_q
from storage.db import make_engine, make_session_factory, session_scope
from workers.celery_app import app, settings

log = logging.getLogger("hwnas.worker")


def _warm_imports() -> None:
    """Import in the parent what jobs import lazily, so forked pool processes have it loaded."""
    import nas.evaluators.proxy  # noqa: F401
    import nas.evaluators.train  # noqa: F401
    import nas.strategies  # noqa: F401
    import search_spaces  # noqa: F401

    try:
        import torch  # noqa: F401  (import only: no thread pool is started before the fork)
    except ImportError:
        pass


_warm_imports()


@lru_cache
def _factory() -> sessionmaker[Session]:
    return make_session_factory(make_engine(settings.database_url))


def _worker_name() -> str:
    return worker_identity("celery")


@lru_cache
def _notify():  # type: ignore[no-untyped-def]
    """Wakes a device's agents (a message on their queue)."""
    from workers.agent import sender

    return sender(settings.broker_url, settings.queue)


def _send_helpers(job_id: str, count: int) -> None:
    for _ in range(count):
        evaluate_trials.delay(job_id)


@app.task(name="hwnas.run_job")
def run_job(job_id: str) -> str:
    outcome = execute_job(_factory(), job_id, owner=_worker_name(), lease_seconds=settings.lease_seconds,
                          send_helpers=_send_helpers, settings=settings,
                          max_claims=settings.max_claim_attempts, notify=_notify())
    log.info("job %s: %s", job_id, outcome)
    return outcome


@app.task(name="hwnas.evaluate_trials")
def evaluate_trials(job_id: str) -> int:
    """Help a fanned-out job: evaluate candidates its owner handed out (see nas/fanout.py)."""
    stored = help_with_job(_factory(), job_id, worker=_worker_name(), lease_seconds=settings.lease_seconds,
                           settings=settings,
                           max_claims=settings.max_claim_attempts)
    log.info("job %s: helped with %d evaluations", job_id, stored)
    return stored


@app.task(name="hwnas.device_operation")
def device_operation(op_id: str) -> str:
    """Run an onboarding or a front verification (it waits on the device's agent)."""
    outcome = run_operation(_factory(), op_id, notify=_notify())
    log.info("device operation %s: %s", op_id, outcome)
    return outcome


@app.task(name="hwnas.reap")
def reap() -> int:
    """Re-queue jobs nobody runs: still queued, or running with a stale heartbeat (with backoff)."""
    with session_scope(_factory()) as s:
        ids = jobs_q.jobs_to_requeue(s, settings.lease_seconds)
    for job_id in ids:
        run_job.delay(job_id)
    return len(ids)
