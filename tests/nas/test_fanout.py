"""Fan-out without Celery: claims on real PostgreSQL, owner + helper threads, the embedded thread pool.

The Celery end of it (worker processes, SIGKILL) is in tests/workers/test_fanout_workers.py.
"""

from __future__ import annotations

import datetime as dt
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from hwnas_settings import Settings
from nas.catalog import MemoryCatalog
from nas.engine import run_search
from nas.fanout import ThreadedDispatch
from nas.resolve import build_search
from nas.service import Quotas, execute_job, help_with_job, submit
from nas.spec import JobSpec
from storage import jobs as jobs_q
from storage import pending as pending_q
from storage import tenants as tenants_q
from storage.db import make_engine, make_session_factory, session_scope
from storage.models import Job, PendingTrial
from tests.conftest import EVAL_PYTHON
from tests.nas.test_engine import ListRecorder


def command_spec(tmp_path: Path, *, budget: int, batch_size: int, parallelism: int,
                 sleep_s: float = 0.05, schedule: str = "sync") -> dict[str, Any]:
    script = tmp_path / "eval.py"
    script.write_text("import json, sys, time, zlib\n"
                      f"time.sleep({sleep_s})\n"
                      "print(json.dumps({'accuracy': zlib.crc32(sys.argv[1].encode()) % 1000 / 10}))\n")
    return {"space": "nb201", "budget": {"evaluations": budget}, "seed": 5, "batch_size": batch_size,
            "parallelism": parallelism, "schedule": schedule,
            "strategy": {"name": "evolution", "params": {"population_size": 8, "sample_size": 3}},
            "objectives": [{"metric": "accuracy", "goal": "maximize"},
                           {"metric": "latency_ms", "device": "pixel3", "goal": "minimize"}],
            "evaluator": {"type": "command", "command": f"{EVAL_PYTHON} {script} {{arch}}"}}


def serial_archs(spec: dict[str, Any]) -> list[str]:
    """The architectures the same job evaluates in one thread, in seq order."""
    recorder = ListRecorder()
    run_search(build_search(JobSpec.model_validate({**spec, "parallelism": 1}), MemoryCatalog()), recorder)
    return [t.arch for t in recorder.trials]


def max_in_flight(trials: list[Any]) -> int:
    """The most trials whose [started_at, finished_at] intervals overlap at one moment."""
    edges = sorted([(t.started_at, 1) for t in trials] + [(t.finished_at, -1) for t in trials],
                   key=lambda e: (e[0], e[1]))  # an end before a start at the same instant
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


def test_threads_evaluate_a_batch_at_once_and_the_search_is_unchanged(tmp_path: Path) -> None:
    spec = command_spec(tmp_path, budget=16, batch_size=8, parallelism=4, sleep_s=0.3)
    search = build_search(JobSpec.model_validate(spec), MemoryCatalog())
    recorder = ListRecorder()
    summary = run_search(search, recorder, dispatcher=ThreadedDispatch(search.evaluator, 4, lambda: False))
    assert summary.evaluated == 16 and [t.seq for t in recorder.trials] == list(range(16))
    assert [t.arch for t in recorder.trials] == serial_archs(spec)
    # at once: 4 evaluations in flight together, never more (the speed-up is benchmarks/fanout_speedup.py)
    assert max_in_flight(recorder.trials) == 4, [(t.started_at, t.finished_at) for t in recorder.trials]


def test_threaded_batch_stops_starting_evaluations_after_a_cancel(tmp_path: Path) -> None:
    spec = command_spec(tmp_path, budget=8, batch_size=8, parallelism=2)
    search = build_search(JobSpec.model_validate(spec), MemoryCatalog())
    calls = iter(range(100))
    outcomes = ThreadedDispatch(search.evaluator, 1, lambda: next(calls) >= 3).evaluate(0, search.strategy.ask(8), {})
    assert len(outcomes) == 3


@pytest.fixture
def factory(migrated_pg_url: str) -> Any:
    engine = make_engine(migrated_pg_url)
    yield make_session_factory(engine)
    engine.dispose()


def running_job(factory: Any, spec: dict[str, Any]) -> tuple[str, str]:
    with session_scope(factory) as s:
        tenant = tenants_q.get_or_create_tenant(s, "t").id
    job, _ = submit(factory, JobSpec.model_validate(spec), tenant_id=tenant, quotas=Quotas(10, 10**6))
    with session_scope(factory) as s:
        token = jobs_q.claim(s, job.id, "owner", lease_seconds=60)
    assert token
    return job.id, token


def test_a_candidate_is_claimed_once_and_its_result_stored_once(factory: Any, tmp_path: Path) -> None:
    job_id, token = running_job(factory, command_spec(tmp_path, budget=4, batch_size=4, parallelism=2))
    with session_scope(factory) as s:
        pending_q.hand_out(s, job_id, token, 0, [(f"a{i}", f"h{i}") for i in range(3)], {"state": 1})
    with session_scope(factory) as s:
        first = pending_q.claim(s, job_id, "w1", lease_seconds=60, limit=2)
    with session_scope(factory) as s:
        second = pending_q.claim(s, job_id, "w2", lease_seconds=60, limit=2)
        nothing = pending_q.claim(s, job_id, "w3", lease_seconds=60)
    assert first and second and nothing is None
    assert [seq for seq, _ in first.candidates] == [0, 1] and [seq for seq, _ in second.candidates] == [2]
    now = dt.datetime.now(dt.UTC)
    result = {"metrics": {"accuracy": 1.0}, "error": None, "duration_s": 0.5}
    with session_scope(factory) as s:
        assert not pending_q.complete(s, job_id, 0, second.token, **result)  # not its claim
        assert pending_q.complete(s, job_id, 0, first.token, **result)
        assert not pending_q.complete(s, job_id, 0, first.token, **result)  # already stored
        # w2 went silent: its claim expires and another worker takes the candidate again
        s.execute(update(PendingTrial).where(PendingTrial.seq == 2)
                  .values(claim_heartbeat_at=now - dt.timedelta(seconds=120)))
    with session_scope(factory) as s:
        again = pending_q.claim(s, job_id, "w3", lease_seconds=60)
    assert again and again.candidates == [(2, "a2")]
    with session_scope(factory) as s:
        assert not pending_q.complete(s, job_id, 2, second.token, **result)  # the late result is refused
        assert pending_q.complete(s, job_id, 2, again.token, **result)
        rows = pending_q.batch(s, job_id)
        assert [(r.seq, r.status, r.claims) for r in rows] == [(0, "done", 1), (1, "pending", 1), (2, "done", 2)]
        assert jobs_q.owned_job(s, job_id, token).checkpoint == {"state": 1}


def test_no_candidate_of_a_cancelled_job_starts(factory: Any, tmp_path: Path) -> None:
    job_id, token = running_job(factory, command_spec(tmp_path, budget=4, batch_size=4, parallelism=2))
    with session_scope(factory) as s:
        pending_q.hand_out(s, job_id, token, 0, [("a0", "h0"), ("a1", "h1")], {})
        claimed = pending_q.claim(s, job_id, "w1", lease_seconds=60)
    with session_scope(factory) as s:
        jobs_q.request_cancel(s, job_id)
    with session_scope(factory) as s:
        assert pending_q.claim(s, job_id, "w2", lease_seconds=60) is None
        assert pending_q.drop_unclaimed(s, job_id, lease_seconds=60) == 1
        assert claimed and claimed.candidates == [(0, "a0")]  # the running one finishes


ALLOW = Settings(allow_command_evaluator=True)  # the command evaluator is off unless the operator says so


def test_owner_and_helper_threads_record_every_trial_exactly_once(factory: Any, tmp_path: Path) -> None:
    spec = command_spec(tmp_path, budget=20, batch_size=6, parallelism=3)
    job_id, _ = running_job(factory, spec)
    with session_scope(factory) as s:  # let execute_job claim it itself
        s.execute(update(Job).where(Job.id == job_id).values(lease_token=None, status="queued"))
    helpers: list[threading.Thread] = []
    helped: list[int] = []

    def send_helpers(job: str, count: int) -> None:
        for n in range(count):
            t = threading.Thread(target=lambda: helped.append(
                help_with_job(factory, job, worker=f"helper{len(helpers)}", lease_seconds=60, settings=ALLOW)))
            helpers.append(t)
            t.start()

    outcome = execute_job(factory, job_id, owner="owner", lease_seconds=60, send_helpers=send_helpers,
                          settings=ALLOW)
    for t in helpers:
        t.join()
    assert outcome == "succeeded"
    with session_scope(factory) as s:
        trials = jobs_q.job_trials(s, job_id)
        job = jobs_q.get_job(s, job_id)
        left = s.scalars(select(PendingTrial).where(PendingTrial.job_id == job_id)).all()
    assert job is not None and job.evaluated == 20 and not left
    assert [t.seq for t in trials] == list(range(20))
    assert all(t.status == "completed" for t in trials)
    assert [t.arch for t in trials] == serial_archs(spec), "the strategy saw results in a different order"
    assert sum(helped) > 0, "the helpers evaluated nothing"


def test_embedded_server_runs_parallelism_on_threads(embedded_server: Any, tmp_path: Path) -> None:
    from hwnas_client import Client

    spec = command_spec(tmp_path, budget=12, batch_size=6, parallelism=3, sleep_s=0.3)
    with Client(embedded_server.url) as client:
        job = client.submit(spec)
        done = client.wait(job.id, timeout=120, poll=0.2)
    assert done.status == "succeeded" and done.evaluated == 12
    engine = make_engine(embedded_server.env["HWNAS_DATABASE_URL"])
    with session_scope(make_session_factory(engine)) as s:
        trials = jobs_q.job_trials(s, job.id)
    engine.dispose()
    assert [t.seq for t in trials] == list(range(12))
    assert [t.arch for t in trials] == serial_archs(spec)
    # three at a time: the third of a batch starts before the first ends (one thread runs them back to back)
    first_batch = sorted(trials[:6], key=lambda t: t.started_at)
    assert first_batch[2].started_at < first_batch[0].finished_at, "the batch ran one candidate at a time"


def test_async_owner_and_helpers_record_exactly_budget_distinct_trials(factory: Any, tmp_path: Path) -> None:
    spec = command_spec(tmp_path, budget=14, batch_size=1, parallelism=3, schedule="async")
    job_id, _ = running_job(factory, spec)
    with session_scope(factory) as s:
        s.execute(update(Job).where(Job.id == job_id).values(lease_token=None, status="queued"))
    helpers: list[threading.Thread] = []
    helped: list[int] = []

    def send_helpers(job: str, count: int) -> None:
        for _ in range(count):
            t = threading.Thread(target=lambda: helped.append(
                help_with_job(factory, job, worker=f"helper{len(helpers)}", lease_seconds=60, settings=ALLOW)))
            helpers.append(t)
            t.start()

    assert execute_job(factory, job_id, owner="owner", lease_seconds=60, send_helpers=send_helpers,
                       settings=ALLOW) == "succeeded"
    for t in helpers:
        t.join()
    with session_scope(factory) as s:
        trials = jobs_q.job_trials(s, job_id)
        left = s.scalars(select(PendingTrial).where(PendingTrial.job_id == job_id)).all()
    assert sorted(t.seq for t in trials) == list(range(14)) and not left
    assert len({t.arch_hash for t in trials}) == 14 and all(t.status == "completed" for t in trials)
    assert sum(helped) > 0, "the helpers evaluated nothing"


def test_a_hand_out_retried_after_its_commit_landed_adds_nothing(factory: Any, tmp_path: Path) -> None:
    job_id, token = running_job(factory, command_spec(tmp_path, budget=4, batch_size=2, parallelism=2))
    for _ in range(2):  # the second call is the retry of a COMMIT whose answer was lost
        with session_scope(factory) as s:
            pending_q.hand_out(s, job_id, token, 0, [("a0", "h0"), ("a1", "h1")], {"state": 1})
    with session_scope(factory) as s:
        assert [(r.seq, r.arch) for r in pending_q.batch(s, job_id)] == [(0, "a0"), (1, "a1")]


def test_a_candidate_whose_claims_all_went_stale_fails_as_a_trial(factory: Any, tmp_path: Path) -> None:
    job_id, token = running_job(factory, command_spec(tmp_path, budget=4, batch_size=1, parallelism=2))
    with session_scope(factory) as s:
        pending_q.hand_out(s, job_id, token, 0, [("a0", "h0")], {})
    for attempt in range(3):
        with session_scope(factory) as s:
            assert pending_q.claim(s, job_id, f"w{attempt}", lease_seconds=60, max_claims=3) is not None
            # the worker died: its heartbeat is an hour old on the database's clock
            s.execute(update(PendingTrial).where(PendingTrial.job_id == job_id)
                      .values(claim_heartbeat_at=func.now() - dt.timedelta(hours=1)))
    with session_scope(factory) as s:
        assert pending_q.claim(s, job_id, "w3", lease_seconds=60, max_claims=3) is None
        (row,) = pending_q.batch(s, job_id)
    assert row.status == "done" and row.metrics is None and "claimed 3 times" in (row.error or "")
