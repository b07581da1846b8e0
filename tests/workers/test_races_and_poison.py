"""Concurrent submissions, cancels at random points, evaluators that crash or hang, time limits."""

from __future__ import annotations

import datetime as dt
import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from hwnas_client import Client
from sqlalchemy import func, select

from storage import jobs as jobs_q
from storage.db import make_engine, make_session_factory, session_scope
from storage.models import Job, JobEvent
from tests.conftest import EVAL_PYTHON, Service

TERMINAL = {"succeeded", "failed", "cancelled"}


def command_spec(script: Path, budget: int, **extra: Any) -> dict[str, Any]:
    return {"space": "nb201", "budget": {"evaluations": budget}, "strategy": {"name": "random"},
            "objectives": [{"metric": "accuracy", "goal": "maximize"},
                           {"metric": "latency_ms", "device": "pixel3", "goal": "minimize"}],
            "evaluator": {"type": "command", "command": f"{EVAL_PYTHON} {script} {{arch}}"}, **extra}


def evaluator(tmp_path: Path, body: str) -> Path:
    script = tmp_path / f"eval_{abs(hash(body))}.py"
    script.write_text("import json, sys, time, zlib\nh = zlib.crc32(sys.argv[1].encode())\n" + body)
    return script


def factory_for(stack: Service) -> Any:
    return make_session_factory(make_engine(stack.env["HWNAS_DATABASE_URL"]))


def test_twenty_concurrent_identical_submissions_make_one_job(celery_stack: Service, tmp_path: Path) -> None:
    spec = command_spec(evaluator(tmp_path, "print(json.dumps({'accuracy': h % 100}))\n"), budget=3)

    def submit(_: int) -> str:
        with Client(celery_stack.url, api_key=celery_stack.api_key) as client:
            return client.submit(spec, idempotency_key="retry-me").id

    with ThreadPoolExecutor(20) as pool:
        ids = set(pool.map(submit, range(20)))
    assert len(ids) == 1
    with session_scope(factory_for(celery_stack)) as s:
        assert s.scalar(select(func.count()).select_from(Job)) == 1


def test_cancel_at_random_points_ends_in_one_terminal_state(celery_stack: Service, tmp_path: Path) -> None:
    spec = command_spec(evaluator(tmp_path, "time.sleep(0.1)\nprint(json.dumps({'accuracy': h % 100}))\n"),
                        budget=15)
    rng = random.Random(5)
    acks: dict[str, dt.datetime] = {}
    with Client(celery_stack.url, api_key=celery_stack.api_key) as client:
        ids = [client.submit(spec).id for _ in range(6)]
        for job_id in ids:
            time.sleep(rng.uniform(0, 1.2))
            try:
                client.cancel(job_id)
                acks[job_id] = dt.datetime.now(dt.UTC)
            except Exception as exc:  # it may have finished first: then cancel is a 409
                assert "409" in str(exc)
        finals = {job_id: client.wait(job_id, timeout=120, poll=0.2, raise_on_failure=False) for job_id in ids}
    factory = factory_for(celery_stack)
    with session_scope(factory) as s:
        for job_id, job in finals.items():
            assert job.status in ({"cancelled", "succeeded"} if job_id in acks else {"succeeded"})
            kinds = s.scalars(select(JobEvent.kind).where(JobEvent.job_id == job_id)).all()
            assert sum(k in TERMINAL for k in kinds) == 1, kinds
            trials = jobs_q.job_trials(s, job_id)
            assert len(trials) == job.evaluated
            if job_id in acks:
                assert all(t.started_at <= acks[job_id] for t in trials), "a trial started after the cancel"
    assert any(j.status == "cancelled" for j in finals.values())


def test_crashing_and_hanging_evaluations_fail_alone(celery_stack: Service, tmp_path: Path) -> None:
    body = ("if h % 4 == 0: sys.exit('crashed on purpose')\n"
            "if h % 4 == 1: time.sleep(60)\n"
            "print(json.dumps({'accuracy': h % 100}))\n")
    spec = command_spec(evaluator(tmp_path, body), budget=12, max_failed_trials=12)
    spec["evaluator"].update(timeout_s=2, retries=1)  # a trial starts a Python: 2 s leaves room for a loaded machine
    with Client(celery_stack.url, api_key=celery_stack.api_key) as client:
        job = client.wait(client.submit(spec).id, timeout=120, poll=0.2)
        trials = client.trials(job.id)
    assert job.status == "succeeded" and job.evaluated == 12
    failed = [t for t in trials if t.status == "failed"]
    assert failed and len(failed) < 12 and job.failed == len(failed)
    assert all("crashed on purpose" in t.error or "timed out" in t.error for t in failed), [t.error for t in failed]


def test_too_many_failures_stop_the_job_with_the_reason(celery_stack: Service, tmp_path: Path) -> None:
    spec = command_spec(evaluator(tmp_path, "sys.exit('no GPU here')\n"), budget=50, max_failed_trials=3)
    with Client(celery_stack.url, api_key=celery_stack.api_key) as client:
        job = client.wait(client.submit(spec).id, timeout=60, poll=0.2, raise_on_failure=False)
    assert job.status == "failed" and job.evaluated == 3
    assert "3 failed trials" in job.error and "no GPU here" in job.error


def test_time_limit_ends_the_job_and_keeps_its_trials(celery_stack: Service, tmp_path: Path) -> None:
    spec = command_spec(evaluator(tmp_path, "time.sleep(0.2)\nprint(json.dumps({'accuracy': h % 100}))\n"),
                        budget=500, time_limit_s=10)  # counted from the claim: room to start on a loaded machine
    with Client(celery_stack.url, api_key=celery_stack.api_key) as client:
        job = client.wait(client.submit(spec).id, timeout=60, poll=0.2, raise_on_failure=False)
        trials = client.trials(job.id)
    assert job.status == "failed" and "time limit of 10s" in job.error
    assert 0 < len(trials) == job.evaluated < 500
