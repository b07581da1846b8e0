"""Jobs survive killed workers, a flushed Redis, a restarted PostgreSQL and double delivery.

Every test runs real PostgreSQL, Redis and Celery worker processes; the ones that
restart a service get a server of their own.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from celery import Celery
from hwnas_client import Client, Job

from storage import jobs as jobs_q
from storage.db import make_engine, make_session_factory, session_scope
from storage.models import Trial
from tests.conftest import EVAL_PYTHON, PrivatePostgres, PrivateRedis, Stack

BUDGET = 30


def spec(tmp_path: Path, budget: int = BUDGET, sleep_s: float = 0.15) -> dict[str, object]:
    script = tmp_path / "slow_eval.py"
    script.write_text("import json, sys, time, zlib\n"
                      f"time.sleep({sleep_s})\n"
                      "print(json.dumps({'accuracy': zlib.crc32(sys.argv[1].encode()) % 1000 / 10}))\n")
    return {
        "name": "survivor", "space": "nb201", "budget": {"evaluations": budget}, "seed": 11,
        "strategy": {"name": "evolution", "params": {"population_size": 8, "sample_size": 3}},
        "objectives": [{"metric": "accuracy", "goal": "maximize"},
                       {"metric": "latency_ms", "device": "pixel3", "goal": "minimize"}],
        "evaluator": {"type": "command", "command": f"{EVAL_PYTHON} {script} {{arch}}"},
    }


def trials_of(database_url: str, job_id: str) -> list[Trial]:
    engine = make_engine(database_url)
    with session_scope(make_session_factory(engine)) as s:
        trials = jobs_q.job_trials(s, job_id)
    engine.dispose()
    return trials


def wait_for(client: Client, job_id: str, predicate: Callable[[Job], bool], stack: Stack, timeout: float = 120) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            job = client.get(job_id)
            if predicate(job):
                return job
        except Exception:  # the API may be briefly without its database in the restart test
            pass
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} never got there\n{stack.logs()}")


def assert_complete_and_exact(stack: Stack, client: Client, job_id: str) -> Job:
    job = wait_for(client, job_id, lambda j: j.done, stack, timeout=120)
    assert job.status == "succeeded", (job.error, stack.logs())
    trials = trials_of(stack.env["HWNAS_DATABASE_URL"], job_id)
    assert [t.seq for t in trials] == list(range(BUDGET)), "trials lost or duplicated"
    assert len({t.arch_hash for t in trials}) == BUDGET
    assert all(t.status == "completed" for t in trials)
    assert job.evaluated == BUDGET
    return job


def children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                out.append(int(entry.name))
    return out


def cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def pool_child_running_the_job(worker_pid: int) -> int:
    """The prefork child whose descendants include the evaluator."""
    for child in children(worker_pid):
        if any("slow_eval" in cmdline(g) for g in children(child)):
            return child
    raise AssertionError("no pool child is running the evaluator")


@pytest.fixture
def stack(make_stack: Callable[..., Stack], migrated_pg_url: str, private_redis: PrivateRedis) -> Stack:
    return make_stack(migrated_pg_url, private_redis.url)


def test_killed_pool_child_the_job_finishes_exactly(stack: Stack, tmp_path: Path) -> None:
    worker = stack.start_worker()
    with Client(stack.url, api_key=stack.api_key) as client:
        job = client.submit(spec(tmp_path))
        wait_for(client, job.id, lambda j: j.evaluated >= 5, stack)
        os.kill(pool_child_running_the_job(worker.pid), signal.SIGKILL)
        done = assert_complete_and_exact(stack, client, job.id)
        assert done.raw["progress"]["evaluated"] == BUDGET


def test_killed_worker_a_new_worker_resumes_the_job(stack: Stack, tmp_path: Path) -> None:
    first = stack.start_worker()
    with Client(stack.url, api_key=stack.api_key) as client:
        job = client.submit(spec(tmp_path))
        partial = wait_for(client, job.id, lambda j: j.evaluated >= 5, stack)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        assert client.get(job.id).evaluated < BUDGET
        stack.start_worker()
        assert_complete_and_exact(stack, client, job.id)
        trials = trials_of(stack.env["HWNAS_DATABASE_URL"], job.id)
        assert len(trials) == BUDGET and partial.evaluated >= 5


def test_redis_flushed_and_restarted_mid_job(stack: Stack, private_redis: PrivateRedis, tmp_path: Path) -> None:
    import redis

    stack.start_worker()
    with Client(stack.url, api_key=stack.api_key) as client:
        running = client.submit(spec(tmp_path))
        queued = client.submit(spec(tmp_path, budget=BUDGET))  # waits behind the first: its message is lost
        wait_for(client, running.id, lambda j: j.evaluated >= 5, stack)
        redis.Redis.from_url(private_redis.url).flushall()
        private_redis.stop()
        time.sleep(1)
        private_redis.start()
        assert_complete_and_exact(stack, client, running.id)
        assert_complete_and_exact(stack, client, queued.id)


def test_postgres_restarted_mid_job(make_stack: Callable[..., Stack], private_postgres: PrivatePostgres,
                                    private_redis: PrivateRedis, tmp_path: Path) -> None:
    stack = make_stack(private_postgres.url, private_redis.url)
    stack.start_worker()
    with Client(stack.url, api_key=stack.api_key) as client:
        job = client.submit(spec(tmp_path))
        wait_for(client, job.id, lambda j: j.evaluated >= 5, stack)
        private_postgres.restart()
        assert_complete_and_exact(stack, client, job.id)


def test_message_delivered_twice_has_one_owner(stack: Stack, tmp_path: Path) -> None:
    stack.start_worker()
    stack.start_worker(beat=False)
    sender = Celery(broker=stack.env["HWNAS_BROKER_URL"])
    with Client(stack.url, api_key=stack.api_key) as client:
        job = client.submit(spec(tmp_path))
        sender.send_task("hwnas.run_job", args=[job.id], queue=stack.env["HWNAS_QUEUE"])
        sender.send_task("hwnas.run_job", args=[job.id], queue=stack.env["HWNAS_QUEUE"])
        assert_complete_and_exact(stack, client, job.id)
    assert "not claimed" in stack.logs()


def test_a_stale_token_cannot_write(migrated_pg_url: str) -> None:
    import datetime as dt

    from storage.models import Job as JobRow

    factory = make_session_factory(make_engine(migrated_pg_url))
    with session_scope(factory) as s:
        job = jobs_q.create_job(s, spec={"space": "nb201"}, name="x", budget=2)
        job_id = job.id
    with session_scope(factory) as s:
        old = jobs_q.claim(s, job_id, "a", lease_seconds=60)
    with session_scope(factory) as s:
        assert jobs_q.claim(s, job_id, "b", lease_seconds=60) is None  # lease still fresh
        s.get(JobRow, job_id).heartbeat_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=120)
    with session_scope(factory) as s:
        new = jobs_q.claim(s, job_id, "b", lease_seconds=60)
    assert new and new != old
    now = dt.datetime.now(dt.UTC)
    row = {"seq": 0, "arch": "a", "arch_hash": "h", "status": "completed", "metrics": {}, "error": None,
           "started_at": now, "finished_at": now, "duration_s": 0.0}
    with pytest.raises(jobs_q.LeaseLost), session_scope(factory) as s:
        jobs_q.record_batch(s, job_id, old, [row], checkpoint={}, evaluated=1, failed=0, front=[],
                            hypervolume=0.0, best=None)
    with session_scope(factory) as s:
        jobs_q.record_batch(s, job_id, new, [row], checkpoint={}, evaluated=1, failed=0, front=[],
                            hypervolume=0.0, best=None)
    with pytest.raises(jobs_q.LeaseLost), session_scope(factory) as s:
        jobs_q.finish(s, job_id, old, "succeeded")
