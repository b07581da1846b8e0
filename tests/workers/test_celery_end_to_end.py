"""uvicorn + a real Celery worker on PostgreSQL and Redis, driven through hwnas-client."""

import datetime as dt
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from hwnas_client import Client

from nas.pareto import non_dominated_mask
from storage import jobs as jobs_q
from storage.db import make_engine, make_session_factory, session_scope
from tests.conftest import EVAL_PYTHON, ROOT, Service, hwnas_cmd


def stored_trials(url: str, job_id: str) -> list:
    engine = make_engine(url)
    with session_scope(make_session_factory(engine)) as s:
        trials = jobs_q.job_trials(s, job_id)
    engine.dispose()
    return trials


def test_search_runs_on_the_worker_and_front_matches_stored_trials(celery_stack: Service, nb201_csv: Path) -> None:
    subprocess.run(hwnas_cmd("benchmarks", "import", str(nb201_csv), "--name", "nb201", "--space", "nb201"),
                   env=celery_stack.env, cwd=ROOT, check=True, capture_output=True)
    spec = {
        "name": "e2e", "space": "nb201", "budget": {"evaluations": 40}, "seed": 3,
        "strategy": {"name": "evolution", "params": {"population_size": 10, "sample_size": 3}},
        "objectives": [{"metric": "accuracy", "goal": "maximize"},
                       {"metric": "latency_ms", "device": "raspi4", "goal": "minimize"}],
        "constraints": [{"metric": "latency_ms", "device": "raspi4", "max": 40.0}],
        "evaluator": {"type": "benchmark", "table": "nb201", "metric": "cifar10_acc"},
    }
    with Client(celery_stack.url, api_key=celery_stack.api_key) as client:
        job = client.submit(spec)
        done = client.wait(job.id, timeout=120, poll=0.3)
        assert done.status == "succeeded", celery_stack.log("worker")
        assert done.evaluated == done.budget == 40
        trials = stored_trials(celery_stack.env["HWNAS_DATABASE_URL"], job.id)
        assert [t.seq for t in trials] == list(range(40))
        assert all(t.metrics["latency_ms@raspi4"] <= 40.0 for t in trials)
        ok = [t for t in trials if t.status == "completed"]
        points = np.array([[t.metrics["accuracy"], -t.metrics["latency_ms@raspi4"]] for t in ok])
        expected = sorted(ok[i].seq for i in np.flatnonzero(non_dominated_mask(points)))
        front = client.pareto(job.id)
        assert sorted(t.seq for t in front.trials) == expected
        assert front.hypervolume > 0 and done.hypervolume == front.hypervolume
        assert len(client.trials(job.id)) == 40


def test_cancel_stops_a_running_job_within_one_evaluation(celery_stack: Service, tmp_path: Path) -> None:
    script = tmp_path / "slow_eval.py"
    script.write_text("import json, sys, time, zlib\ntime.sleep(0.3)\n"
                      "print(json.dumps({'accuracy': zlib.crc32(sys.argv[1].encode()) % 1000 / 10}))\n")
    spec = {
        "name": "to cancel", "space": "nb201", "budget": {"evaluations": 200}, "strategy": {"name": "random"},
        "objectives": [{"metric": "accuracy", "goal": "maximize"},
                       {"metric": "latency_ms", "device": "pixel3", "goal": "minimize"}],
        "evaluator": {"type": "command", "command": f"{EVAL_PYTHON} {script} {{arch}}"},
    }
    with Client(celery_stack.url, api_key=celery_stack.api_key) as client:
        job = client.submit(spec)
        deadline = time.monotonic() + 60
        while (current := client.get(job.id)).evaluated < 3:
            assert time.monotonic() < deadline, celery_stack.log("worker")
            time.sleep(0.1)
        assert current.status == "running"
        assert len(stored_trials(celery_stack.env["HWNAS_DATABASE_URL"], job.id)) >= 3  # written as they finish
        acknowledged = client.cancel(job.id)
        cancelled_at = dt.datetime.now(dt.UTC)
        assert acknowledged.raw["cancel_requested"] is True
        done = client.wait(job.id, timeout=120, poll=0.1)
        assert done.status == "cancelled"
        trials = stored_trials(celery_stack.env["HWNAS_DATABASE_URL"], job.id)
        assert len(trials) == done.evaluated < 200
        assert sum(t.started_at > cancelled_at for t in trials) <= 1
