"""The command evaluator on a real Celery worker (issue 15, findings 1 and 5).

A command sees no credentials and runs as ``nobody`` under a root worker; a trial that kills
its worker every time fails the job after HWNAS_MAX_JOB_ATTEMPTS deliveries, naming the candidate.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hwnas_client import Client

from tests.conftest import EVAL_PYTHON, ROOT, Stack, hwnas_cmd

TERMINAL = {"succeeded", "failed", "cancelled"}


def command_spec(script: Path, budget: int) -> dict[str, Any]:
    return {"space": "nb201", "budget": {"evaluations": budget}, "strategy": {"name": "random"},
            "objectives": [{"metric": "accuracy", "goal": "maximize"},
                           {"metric": "latency_ms", "device": "pixel3", "goal": "minimize"}],
            "evaluator": {"type": "command", "command": f"{EVAL_PYTHON} {script} {{arch}}"}}


#: Finds the worker process that runs this evaluation: the parent of its supervisor.
FIND_WORKER = """import json, os, sys, time
def parent_of(pid):
    return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
worker = parent_of(os.getppid())
"""


def test_a_command_job_sees_no_credentials_and_runs_as_nobody(pg_url: str, redis_url: str, tmp_path: Path,
                                                              make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(pg_url, redis_url, HWNAS_ALLOW_COMMAND_EVALUATOR="false",
                       HWNAS_COMMAND_ENV_ALLOW="HWNAS_TEST_VISIBLE", HWNAS_TEST_VISIBLE="yes")
    subprocess.run(hwnas_cmd("tenants", "set", "test-tenant", "--command-evaluator"), env=stack.env, cwd=ROOT,
                   check=True, capture_output=True)
    stack.start_worker(beat=False)
    script = tmp_path / "spy.py"
    script.write_text(FIND_WORKER + """seen = {"env": dict(os.environ), "uid": os.getuid(), "worker": worker}
try:
    seen["worker_environ"] = open(f"/proc/{worker}/environ").read()
except PermissionError:
    seen["worker_environ"] = "refused"
print(json.dumps(seen), file=sys.stderr)
sys.exit(9)
""")
    with Client(stack.url, api_key=stack.api_key) as client:
        job = client.wait(client.submit(command_spec(script, 1)).id, timeout=120, poll=0.2, raise_on_failure=False)
        (trial,) = client.trials(job.id)
    seen = json.loads(trial.error.split("\n", 1)[1])
    print(f"command evaluator environment: {sorted(seen['env'])}, uid {seen['uid']}")
    given = {"HWNAS_ARCH", "PATH", "HOME", "HWNAS_TEST_VISIBLE"}
    assert given <= set(seen["env"]) and set(seen["env"]) - given <= {"PWD", "LC_CTYPE", "SHLVL", "_"}, seen["env"]
    for secret in (stack.env["HWNAS_DATABASE_URL"], redis_url, "postgresql", "redis://"):
        assert secret not in trial.error
    assert job.status == "failed" and "all 1 trials failed" in job.error  # the job's only trial failed
    if os.geteuid() == 0:
        assert seen["uid"] == 65534 and seen["worker_environ"] == "refused"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to kill the worker on the trial's behalf")
def test_a_trial_that_kills_its_worker_fails_the_job_after_max_attempts(pg_url: str, redis_url: str, tmp_path: Path,
                                                                        make_stack: Callable[..., Stack]) -> None:
    """Each time the candidate runs, its worker is SIGKILLed (as a segfaulting or OOM-killed trial would).

    The sandboxed command runs as ``nobody`` and cannot signal its root worker itself any more, so it
    asks: it names its worker in a file and the test kills that pid, every time.
    """
    stack = make_stack(pg_url, redis_url, lease_seconds=5)
    stack.start_worker(beat=True)
    requests = tmp_path / "kill"
    requests.mkdir()
    requests.chmod(0o777)
    script = tmp_path / "killer.py"
    script.write_text(FIND_WORKER + f"open(os.path.join({str(requests)!r}, str(worker)), 'w').close()\n"
                      "time.sleep(60)\n")
    kills = 0
    started = time.monotonic()
    with Client(stack.url, api_key=stack.api_key) as client:
        job_id = client.submit(command_spec(script, 3)).id
        deadline = time.monotonic() + 150
        while (job := client.get(job_id)).status not in TERMINAL and time.monotonic() < deadline:
            for request in requests.iterdir():
                try:
                    os.kill(int(request.name), signal.SIGKILL)
                    kills += 1
                except ProcessLookupError:
                    pass
                request.unlink()
            time.sleep(0.1)
    elapsed = time.monotonic() - started
    print(f"poison trial: {kills} worker deaths, job {job.status} after {elapsed:.1f}s: {job.error}")
    assert job.status == "failed", stack.logs()
    assert kills == 3 and "poison trial" in job.error and "died 3 times" in job.error
    assert "candidate seq 0 |" in job.error and job.evaluated == 0
