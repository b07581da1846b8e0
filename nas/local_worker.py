"""The embedded mode's worker: job ids go to a thread pool in the API process."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.orm import Session, sessionmaker

from hwnas_settings import Settings

from nas.service import execute_job, worker_identity
from storage import jobs as jobs_q
from storage.db import session_scope

log = logging.getLogger("hwnas.local_worker")


class LocalWorker:
    def __init__(self, factory: sessionmaker[Session], *, lease_seconds: int, threads: int = 1,
                 settings: Settings | None = None):
        self.factory, self.settings = factory, settings
        self.lease_seconds = lease_seconds
        self.owner = worker_identity("embedded")
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="hwnas-job")
        self.stopping = threading.Event()

    def enqueue(self, job_id: str) -> None:
        self.pool.submit(self._run, job_id)

    def resume_pending(self) -> int:
        """Queue the jobs a previous process left queued or running (its lease is stale by now)."""
        with session_scope(self.factory) as s:
            ids = jobs_q.runnable_job_ids(s, lease_seconds=0)
        for job_id in ids:
            self.enqueue(job_id)
        return len(ids)

    def _run(self, job_id: str) -> None:
        try:
            outcome = execute_job(self.factory, job_id, owner=self.owner, lease_seconds=self.lease_seconds,
                                  settings=self.settings, stopping=self.stopping)
            log.info("job %s: %s", job_id, outcome)
        except Exception:
            log.exception("job %s crashed the embedded worker thread", job_id)

    def shutdown(self) -> None:
        """Stop taking jobs; running ones stop at their next unit of work, left for the next start to resume
        (their threads, not daemons, finish that unit before the interpreter exits)."""
        self.stopping.set()
        self.pool.shutdown(wait=False, cancel_futures=True)
