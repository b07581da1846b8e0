"""Tasks take ids only; the lease on the job row decides who runs it."""

from __future__ import annotations

import logging
import os
import socket
from functools import lru_cache

from sqlalchemy.orm import Session, sessionmaker

from nas.service import execute_job
from storage import jobs as jobs_q
from storage.db import make_engine, make_session_factory, session_scope
from workers.celery_app import app, settings

log = logging.getLogger("hwnas.worker")


@lru_cache
def _factory() -> sessionmaker[Session]:
    return make_session_factory(make_engine(settings.database_url))


@app.task(name="hwnas.run_job")
def run_job(job_id: str) -> str:
    owner = f"celery@{socket.gethostname()}:{os.getpid()}"
    outcome = execute_job(_factory(), job_id, owner=owner, lease_seconds=settings.lease_seconds)
    log.info("job %s: %s", job_id, outcome)
    return outcome


@app.task(name="hwnas.reap")
def reap() -> int:
    """Re-queue jobs nobody runs: still queued, or running with a stale heartbeat."""
    with session_scope(_factory()) as s:
        ids = jobs_q.runnable_job_ids(s, settings.lease_seconds)
    for job_id in ids:
        run_job.delay(job_id)
    return len(ids)
