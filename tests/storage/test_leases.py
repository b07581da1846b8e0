"""Leases, job timestamps, lost deliveries and the reaper's backoff on real PostgreSQL (issue 15, 5, 6, 14)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import update

from hwnas_settings import Settings
from nas.service import execute_job
from storage import jobs as jobs_q
from storage import tenants as tenants_q
from storage.clock import database_time
from storage.db import make_engine, make_session_factory, session_scope
from storage.models import Job

SPEC: dict[str, Any] = {
    "space": "nb201", "budget": {"evaluations": 2}, "strategy": {"name": "random"},
    "objectives": [{"metric": "accuracy", "goal": "maximize"},
                   {"metric": "latency_ms", "device": "pixel3", "goal": "minimize"}],
    "evaluator": {"type": "command", "command": "echo '{\"accuracy\": 1}'"}}


def make_job(factory: Any, tenant: str = "t") -> str:
    with session_scope(factory) as s:
        tenant_id = tenants_q.get_or_create_tenant(s, tenant).id
        return jobs_q.create_job(s, spec=SPEC, name="x", budget=2, tenant_id=tenant_id).id


def age(factory: Any, job_id: str, seconds: float, *columns: str) -> None:
    """Move a job's timestamps into the past (what a lease going stale looks like)."""
    delta = dt.timedelta(seconds=seconds)
    with session_scope(factory) as s:
        job = s.get(Job, job_id)
        for column in columns:
            setattr(job, column, getattr(job, column) - delta)


def test_job_timestamps_come_from_the_database_clock(migrated_pg_url: str) -> None:
    factory = make_session_factory(make_engine(migrated_pg_url))
    job_id = make_job(factory)
    with session_scope(factory) as s:
        token = jobs_q.claim(s, job_id, "w", lease_seconds=60)
    with session_scope(factory) as s:
        jobs_q.finish(s, job_id, token, "succeeded")
    with session_scope(factory) as s:
        job, now = s.get(Job, job_id), database_time(s)
        assert job.created_at <= job.started_at <= job.finished_at <= now
        assert job.heartbeat_at <= now and job.updated_at <= now


def test_a_stale_claim_counts_a_lost_delivery_and_progress_resets_it(migrated_pg_url: str) -> None:
    factory = make_session_factory(make_engine(migrated_pg_url))
    job_id = make_job(factory)
    with session_scope(factory) as s:
        first = jobs_q.claim(s, job_id, "a", lease_seconds=60)
        assert first and jobs_q.claim(s, job_id, "b", lease_seconds=60) is None  # healthy: not stolen
    age(factory, job_id, 61, "heartbeat_at")
    with session_scope(factory) as s:
        second = jobs_q.claim(s, job_id, "b", lease_seconds=60)
        jobs_q.begin_batch(s, job_id, second, 0, ["|a~0|"])
    with session_scope(factory) as s:
        job = s.get(Job, job_id)
        assert (job.lost_deliveries, job.attempts, job.in_flight) == (1, 2, {"first_seq": 0, "archs": ["|a~0|"]})
        jobs_q.record_batch(s, job_id, second, [], checkpoint={}, evaluated=0, failed=0, front=[],
                            hypervolume=0.0, best=None)
    with session_scope(factory) as s:
        job = s.get(Job, job_id)
        assert (job.lost_deliveries, job.in_flight) == (0, None)


def test_a_job_whose_deliveries_keep_dying_fails_naming_the_candidate(migrated_pg_url: str) -> None:
    factory = make_session_factory(make_engine(migrated_pg_url))
    job_id = make_job(factory)
    with session_scope(factory) as s:
        token = jobs_q.claim(s, job_id, "a", lease_seconds=60)
        jobs_q.begin_batch(s, job_id, token, 0, ["|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|"])
        s.execute(update(Job).where(Job.id == job_id).values(lost_deliveries=2))
    age(factory, job_id, 61, "heartbeat_at")
    settings = Settings(allow_command_evaluator=True, max_job_attempts=3)
    assert execute_job(factory, job_id, owner="c", lease_seconds=60, settings=settings) == "failed"
    with session_scope(factory) as s:
        job = s.get(Job, job_id)
        assert job.status == "failed" and job.lost_deliveries == 3
        assert "poison trial" in job.error and "died 3 times" in job.error
        assert "seq 0 |nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|" in job.error


def test_workers_refuse_command_jobs_of_tenants_not_allowed(migrated_pg_url: str) -> None:
    factory = make_session_factory(make_engine(migrated_pg_url))
    job_id = make_job(factory, tenant="mallory")
    assert execute_job(factory, job_id, owner="w", lease_seconds=60, settings=Settings()) == "failed"
    with session_scope(factory) as s:
        job = s.get(Job, job_id)
        assert job.evaluated == 0 and "not enabled for tenant 'mallory'" in job.error


def test_the_reaper_backs_off_instead_of_resending_every_period(migrated_pg_url: str) -> None:
    factory = make_session_factory(make_engine(migrated_pg_url))
    waiting = make_job(factory)
    with session_scope(factory) as s:
        assert jobs_q.jobs_to_requeue(s, lease_seconds=60) == []  # just submitted: its message is on its way
    age(factory, waiting, 61, "created_at")
    sent_in = []
    for period in range(15):  # fifteen reaper periods of a little over one lease each
        with session_scope(factory) as s:
            if jobs_q.jobs_to_requeue(s, lease_seconds=60) == [waiting]:
                sent_in.append(period)
        age(factory, waiting, 61, "created_at", *(["requeued_at"] if sent_in else []))
    # re-sent after 1, 2, 4 and 8 leases: 4 messages in 15 periods, not 15
    assert sent_in == [0, 2, 6, 14]
    with session_scope(factory) as s:
        token = jobs_q.claim(s, waiting, "w", lease_seconds=60)
        assert token and s.get(Job, waiting).requeues == 0  # a claim resets the backoff
