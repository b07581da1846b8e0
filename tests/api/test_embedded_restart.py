"""An embedded server that stops mid-job: the job stops with it, unfinished, and the next start resumes it."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from hwnas_settings import Settings
from storage.db import make_engine, make_session_factory, session_scope
from storage.models import Job, Trial

SLOW_EVALUATOR = """import json, sys, time, zlib
time.sleep(0.05)
print(json.dumps({"accuracy": zlib.crc32(sys.argv[1].encode()) % 1000 / 10}))
"""
BUDGET = 40


def job_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("hwnas-job")]


def wait_until(what: str, check: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} not reached in {timeout}s")


def test_a_stopping_embedded_server_leaves_its_running_job_to_the_next_start(tmp_path: Path) -> None:
    script = tmp_path / "slow.py"
    script.write_text(SLOW_EVALUATOR)
    script.chmod(0o644)  # run as the sandbox user
    database = f"sqlite:///{tmp_path / 'h.db'}"
    settings = Settings(database_url=database, embedded=True, allow_command_evaluator=True)
    spec = {"space": "nb201", "strategy": {"name": "random"}, "budget": {"evaluations": BUDGET}, "seed": 3,
            "objectives": [{"metric": "accuracy", "goal": "maximize"},
                           {"metric": "latency_ms", "device": "pixel3", "goal": "minimize"}],
            "evaluator": {"type": "command", "command": f"python3 {script} {{arch}}"}}
    with TestClient(create_app(settings)) as client:
        response = client.post("/v1/jobs", json=spec)
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        wait_until("3 evaluations", lambda: client.get(f"/v1/jobs/{job_id}").json()["progress"]["evaluated"] >= 3,
                   120)
    # the server has shut down: its job thread ends within one unit of work, not after the whole job
    wait_until("the job thread to end", lambda: not job_threads(), 20)
    factory = make_session_factory(make_engine(database))
    with session_scope(factory) as s:
        stopped = s.get(Job, job_id)
        assert stopped is not None and (stopped.status, stopped.lease_token) == ("queued", None)
        assert 3 <= stopped.evaluated < BUDGET and stopped.lost_deliveries == 0
    with TestClient(create_app(settings)) as client:
        done = wait_until("the resumed job to finish", lambda: (j := client.get(f"/v1/jobs/{job_id}").json())
                          ["status"] in ("succeeded", "failed") and j, 120)
    assert done["status"] == "succeeded" and done["progress"]["evaluated"] == BUDGET, done
    with session_scope(factory) as s:
        seqs = s.scalars(select(Trial.seq).where(Trial.job_id == job_id)).all()
    assert sorted(seqs) == list(range(BUDGET))  # nothing lost, nothing evaluated twice
