"""darts jobs through the API and real Celery workers: per-epoch progress, and a worker killed
mid-search whose replacement resumes from the last epoch checkpoint."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hwnas_client import Client

from nas.engine import MemoryRecorder
from nas.catalog import MemoryCatalog
from nas.engine import run_search
from nas.resolve import build_search
from nas.spec import JobSpec
from tests.conftest import PrivateRedis, Stack
from tests.workers.test_reliability import trials_of

WEIGHTS = [0.0, 3.0]


def spec(npz: Path, epochs: int = 8) -> dict[str, Any]:
    return {
        "name": "darts tiny", "space": "nb201", "budget": {"evaluations": len(WEIGHTS)}, "seed": 5,
        "strategy": {"name": "darts", "params": {"latency_weights": WEIGHTS, "epochs": epochs, "warmup_epochs": 1,
                                                 "width": 4, "batch_size": 32, "alpha_lr": 0.1,
                                                 "dataset": str(npz)}},
        "objectives": [{"metric": "accuracy", "goal": "maximize"},
                       {"metric": "latency_ms", "device": "pixel3", "goal": "minimize"}],
        "evaluator": {"type": "train", "dataset": str(npz), "epochs": 1, "width": 4},
    }


@pytest.fixture
def npz(tmp_path: Path) -> Path:
    from sklearn.datasets import load_digits

    digits = load_digits()
    path = tmp_path / "digits600.npz"
    np.savez(path, images=digits.images[:600] / 16.0, labels=digits.target[:600])
    return path


@pytest.fixture
def stack(make_stack: Callable[..., Stack], migrated_pg_url: str, private_redis: PrivateRedis) -> Stack:
    return make_stack(migrated_pg_url, private_redis.url)


def uninterrupted_archs(raw: dict[str, Any]) -> list[str]:
    recorder = MemoryRecorder()
    run_search(build_search(JobSpec.model_validate(raw), MemoryCatalog()), recorder)
    return [t.arch for t in recorder.trials]


def poll(client: Client, job_id: str, until: Callable[[dict[str, Any]], bool], stack: Stack,
         timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        raw = client.get(job_id).raw
        if until(raw):
            return raw
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} never got there: {raw}\n{stack.logs()}")


def test_darts_job_reports_epochs_and_builds_its_front_from_trials(stack: Stack, npz: Path) -> None:
    stack.start_worker()
    raw_spec = spec(npz, epochs=3)
    with Client(stack.url, api_key=stack.api_key) as client:
        job = client.submit(raw_spec)
        seen = poll(client, job.id, lambda r: (r["progress"].get("phase") or {}).get("epoch") is not None, stack)
        phase = seen["progress"]["phase"]
        assert phase["strategy"] == "darts" and phase["sweep_points"] == 2 and phase["epochs"] == 3
        done = client.wait(job.id, timeout=240, poll=0.3)
        assert done.status == "succeeded", (done.error, stack.logs())
        front = client.pareto(job.id)
    trials = trials_of(stack.env["HWNAS_DATABASE_URL"], job.id)
    assert [t.seq for t in trials] == [0, 1]
    assert {t.arch for t in front.trials} <= {t.arch for t in trials} and front.trials
    assert trials[1].metrics["latency_ms@pixel3"] < trials[0].metrics["latency_ms@pixel3"]
    assert [t.arch for t in trials] == uninterrupted_archs(raw_spec)


def test_worker_killed_mid_search_replacement_resumes_from_the_last_epoch(stack: Stack, npz: Path) -> None:
    first = stack.start_worker()
    raw_spec = spec(npz)
    with Client(stack.url, api_key=stack.api_key) as client:
        job = client.submit(raw_spec)
        at_kill = poll(client, job.id, lambda r: (r["progress"].get("phase") or {}).get("epoch", 0) >= 2, stack)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        killed_at = client.get(job.id).raw["progress"]["phase"]
        assert killed_at["epoch"] >= at_kill["progress"]["phase"]["epoch"]
        assert killed_at["sweep_point"] == 1 and killed_at["epoch"] < 8, "killed too late to test a resume"
        stack.start_worker()
        done = client.wait(job.id, timeout=300, poll=0.3)
        assert done.status == "succeeded", (done.error, stack.logs())
    resumed = re.search(r"darts: resuming sweep point 1 of 2 \(latency weight 0\) after epoch (\d+)", stack.logs())
    assert resumed, stack.logs()
    assert int(resumed.group(1)) == killed_at["epoch"]
    trials = trials_of(stack.env["HWNAS_DATABASE_URL"], job.id)
    assert [t.seq for t in trials] == [0, 1], "trials lost or duplicated"
    assert [t.arch for t in trials] == uninterrupted_archs(raw_spec)
