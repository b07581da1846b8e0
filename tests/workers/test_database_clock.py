"""Leases follow the database's clock, not a worker's (issue 15, finding 6).

A second worker runs under Debian's libfaketime with its clock 60 s fast. Before, it saw the
first worker's healthy lease as stale and stole the job, and wrote ``finished_at`` 60 s in the
future; now every lease comparison and job timestamp is the database's ``now()``.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from celery import Celery
from hwnas_client import Client
from sqlalchemy import select

from storage.clock import database_time
from storage.db import make_engine, make_session_factory, session_scope
from storage.models import Job, JobEvent, Trial
from tests.conftest import Stack, _unavailable
from tests.workers.test_command_sandbox import command_spec

LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
SKEW_S = 60


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_fast_worker_steals_no_healthy_job_and_writes_no_future_time(pg_url: str, redis_url: str, tmp_path: Path,
                                                                       make_stack: Callable[..., Stack]) -> None:
    if not LIBFAKETIME.exists():
        _unavailable("libfaketime (apt-get install libfaketime)", FileNotFoundError(LIBFAKETIME))
    stack = make_stack(pg_url, redis_url, lease_seconds=10)
    factory = make_session_factory(make_engine(pg_url))
    stack.start_worker(beat=False)
    slow = tmp_path / "slow.py"
    slow.write_text("import json, sys, time\ntime.sleep(0.3)\nprint(json.dumps({'accuracy': len(sys.argv[1])}))\n")
    quick = tmp_path / "quick.py"
    quick.write_text("import json, sys\nprint(json.dumps({'accuracy': len(sys.argv[1])}))\n")
    with Client(stack.url, api_key=stack.api_key) as client:
        healthy = client.submit(command_spec(slow, 200)).id

        def owner_of(job_id: str) -> str | None:
            with session_scope(factory) as s:
                job = s.get(Job, job_id)
                return job.lease_owner if job.status == "running" and job.evaluated > 0 else None

        first_owner = wait_for(lambda: owner_of(healthy), 90, "the first worker to run the job")
        # the monotonic clock is shifted too (a constant offset changes no interval): with it left
        # alone, this libfaketime fails every time.sleep (clock_nanosleep) with EINVAL, and the fast
        # worker's job failed whenever it slept (OSError: [Errno 22], now and then in the suite)
        stack.start_worker(beat=False, LD_PRELOAD=str(LIBFAKETIME), FAKETIME=f"+{SKEW_S}s",
                           FAKETIME_DONT_FAKE_MONOTONIC="0")
        fast_log = stack.log_dir / "worker1.log"
        wait_for(lambda: "ready" in fast_log.read_text(errors="replace"), 90, "the fast worker")
        # the reaper's message, or any duplicate delivery: the fast worker is the only idle one
        Celery(broker=redis_url).send_task("hwnas.run_job", args=[healthy], queue=stack.env["HWNAS_QUEUE"])
        def tried() -> bool:  # it left the job alone, or took it (what a worker clock made it do)
            with session_scope(factory) as s:
                owner = s.get(Job, healthy).lease_owner
            return owner != first_owner or f"job {healthy}: not claimed" in fast_log.read_text(errors="replace")

        wait_for(tried, 60, "the fast worker to try the healthy job")
        with session_scope(factory) as s:
            job = s.get(Job, healthy)
            starts = s.scalars(select(JobEvent.kind).where(JobEvent.job_id == healthy,
                                                           JobEvent.kind == "started")).all()
        assert job.lease_owner == first_owner and len(starts) == 1, "a fast clock stole a healthy job"

        done = client.wait(client.submit(command_spec(quick, 3)).id, timeout=90, poll=0.2)  # on the fast worker
        client.cancel(healthy)
        client.wait(healthy, timeout=60, poll=0.2, raise_on_failure=False)
    with session_scope(factory) as s:
        job, now = s.get(Job, done.id), database_time(s)
        trials = s.scalars(select(Trial).where(Trial.job_id == done.id)).all()
    assert done.status == "succeeded" and job.lease_owner != first_owner
    assert f"job {done.id}: succeeded" in fast_log.read_text(errors="replace")  # it ran on the fast worker
    print(f"fast worker (+{SKEW_S}s): finished_at {(job.finished_at - now).total_seconds():+.2f}s from the "
          f"database's now; started {(job.started_at - job.created_at).total_seconds():+.2f}s after created")
    assert job.created_at <= job.started_at <= job.finished_at <= now
    slack = dt.timedelta(seconds=1)  # the clock offset is measured over one query
    assert len(trials) == 3
    assert all(job.created_at - slack <= t.started_at <= t.finished_at <= now + slack for t in trials)
