"""One job over several Celery worker processes: every trial recorded once, the same search as one worker.

Real PostgreSQL, Redis and worker processes. The evaluator leaves a mark per
(worker, candidate) when it starts and when it ends, so a test knows who ran what; while
the marks folder holds a ``hold`` file, an evaluation that starts waits (marked ``held``),
so a test can stop an owner while a candidate is certainly in flight, however busy the machine.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hwnas_client import Client
from sqlalchemy import select

from nas.catalog import MemoryCatalog
from nas.engine import run_search
from nas.resolve import build_search
from nas.spec import JobSpec
from storage.db import make_engine, make_session_factory, session_scope
from storage.models import PendingTrial
from tests.conftest import EVAL_PYTHON, PrivateRedis, Stack, hwnas_cmd, start_process
from tests.nas.test_engine import ListRecorder
from tests.workers.test_reliability import trials_of, wait_for

BUDGET = 24


def fanout_spec(tmp_path: Path, marks: Path, sleep_s: float = 0.3) -> dict[str, Any]:
    marks.mkdir(exist_ok=True)
    marks.chmod(0o777)  # the sandboxed evaluator (``nobody`` under a root worker) writes its marks here
    script = tmp_path / "marking_eval.py"
    script.write_text(
        "import json, os, sys, time, zlib\n"
        "key = zlib.crc32(sys.argv[1].encode())\n"
        f"mark = os.path.join({str(marks)!r}, f\"{{os.environ.get('EVAL_TAG', 'here')}}.{{key}}.{{os.getpid()}}\")\n"
        "open(mark + '.start', 'w').close()\n"
        f"hold = os.path.join({str(marks)!r}, 'hold')\n"
        "if os.path.exists(hold):\n"
        "    open(mark + '.held', 'w').close()\n"
        "    deadline = time.monotonic() + 120\n"
        "    while os.path.exists(hold) and time.monotonic() < deadline:\n"
        "        time.sleep(0.05)\n"
        f"time.sleep(float(os.environ.get('EVAL_SLEEP', {sleep_s})))\n"
        "open(mark + '.end', 'w').close()\n"
        "print(json.dumps({'accuracy': key % 1000 / 10}))\n")
    return {"name": "fan-out", "space": "nb201", "budget": {"evaluations": BUDGET}, "seed": 3,
            "batch_size": 4, "parallelism": 2, "schedule": "sync",
            "strategy": {"name": "evolution", "params": {"population_size": 8, "sample_size": 3}},
            "objectives": [{"metric": "accuracy", "goal": "maximize"},
                           {"metric": "latency_ms", "device": "pixel3", "goal": "minimize"}],
            "evaluator": {"type": "command", "command": f"{EVAL_PYTHON} {script} {{arch}}"}}


def serial_archs(spec: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What one worker evaluates, in seq order (the evaluator's scores do not depend on time)."""
    monkeypatch.setenv("EVAL_SLEEP", "0")
    monkeypatch.setenv("EVAL_TAG", "reference")
    recorder = ListRecorder()
    run_search(build_search(JobSpec.model_validate({**spec, "parallelism": 1}), MemoryCatalog()), recorder)
    monkeypatch.delenv("EVAL_SLEEP")
    monkeypatch.delenv("EVAL_TAG")
    return [t.arch for t in recorder.trials]


def marks_of(marks: Path, tag: str, suffix: str) -> set[int]:
    """Candidate keys (crc32 of the arch) a worker started or ended."""
    return {int(p.name.split(".")[1]) for p in marks.glob(f"{tag}.*.{suffix}")}


def run_killing_the_owner(stack: Stack, spec: dict[str, Any], marks: Path) -> Any:
    """The job on "first" (owner) and "helper"; after 8 evaluations the next candidate that starts
    is held, "first" is killed while it is held (a candidate is then in flight, whatever the
    machine's load), "second" takes the job over and the hold is released. Returns the ended job."""
    owner = start_tagged_worker(stack, "first", beat=True)
    with Client(stack.url, api_key=stack.api_key) as client:
        job = client.submit(spec)
        wait_for(client, job.id, lambda j: j.status == "running", stack)  # "first" owns it
        start_tagged_worker(stack, "helper", beat=False)
        wait_for(client, job.id, lambda j: j.evaluated >= 8, stack)
        with holding(marks, stack, "*"):
            os.killpg(owner.pid, signal.SIGKILL)
            owner.wait()
            start_tagged_worker(stack, "second", beat=True)  # its reaper hands the job on
        return wait_for(client, job.id, lambda j: j.done, stack, timeout=180)


def run_killing_the_helper(stack: Stack, spec: dict[str, Any], marks: Path) -> tuple[Any, set[int]]:
    """The job on "owner"; a "helper" joins and is killed while one of its candidates is held, so
    its claim is never completed. Returns the ended job and the candidates the helper cut short."""
    start_tagged_worker(stack, "owner", beat=True)
    with Client(stack.url, api_key=stack.api_key) as client:
        job = client.submit(spec)
        wait_for(client, job.id, lambda j: j.status == "running", stack)
        helper = start_tagged_worker(stack, "helper", beat=False)
        with holding(marks, stack, "helper"):
            os.killpg(helper.pid, signal.SIGKILL)
            helper.wait()
        cut_short = marks_of(marks, "helper", "start") - marks_of(marks, "helper", "end")
        return wait_for(client, job.id, lambda j: j.done, stack, timeout=180), cut_short


@contextmanager
def holding(marks: Path, stack: Stack, tag: str) -> Iterator[None]:
    """Hold every candidate that starts; enter once one of ``tag``'s (any: "*") is held; release on exit."""
    hold = marks / "hold"
    hold.touch()
    deadline = time.monotonic() + 60
    while not any(marks.glob(f"{tag}.*.held")):
        assert time.monotonic() < deadline, stack.logs()
        time.sleep(0.05)
    try:
        yield
    finally:
        hold.unlink()


def worker_logs(stack: Stack) -> str:
    return "".join(p.read_text(errors="replace") for p in stack.log_dir.glob("*.log"))


def start_tagged_worker(stack: Stack, tag: str, beat: bool) -> subprocess.Popen[bytes]:
    proc, _ = start_process(tag, hwnas_cmd("worker", *([] if beat else ["--no-beat"])),
                            {**stack.env, "EVAL_TAG": tag}, stack.log_dir)
    stack.workers.append(proc)
    return proc


def wait_ready(stack: Stack, *tags: str) -> None:
    deadline = time.monotonic() + 60
    while not all("ready." in (stack.log_dir / f"{tag}.log").read_text(errors="replace") for tag in tags):
        assert time.monotonic() < deadline, stack.logs()
        time.sleep(0.1)


def assert_exact(stack: Stack, job_id: str, expected_archs: list[str]) -> None:
    trials = trials_of(stack.env["HWNAS_DATABASE_URL"], job_id)
    assert [t.seq for t in trials] == list(range(BUDGET)), "trials lost or duplicated"
    assert all(t.status == "completed" for t in trials), [t.error for t in trials]
    assert [t.arch for t in trials] == expected_archs, "the strategy saw a different search than one worker"
    engine = make_engine(stack.env["HWNAS_DATABASE_URL"])
    with session_scope(make_session_factory(engine)) as s:
        assert s.scalars(select(PendingTrial).where(PendingTrial.job_id == job_id)).all() == []
    engine.dispose()


@pytest.fixture
def stack(make_stack: Callable[..., Stack], migrated_pg_url: str, private_redis: PrivateRedis) -> Stack:
    # the evaluator reads EVAL_TAG and EVAL_SLEEP: the sandbox passes only allow-listed variables
    return make_stack(migrated_pg_url, private_redis.url, HWNAS_COMMAND_ENV_ALLOW="EVAL_TAG,EVAL_SLEEP")


def test_two_workers_share_one_job_and_record_each_trial_once(stack: Stack, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    marks = tmp_path / "marks"
    spec = fanout_spec(tmp_path, marks)
    expected = serial_archs(spec, monkeypatch)
    start_tagged_worker(stack, "w0", beat=True)
    start_tagged_worker(stack, "w1", beat=False)
    wait_ready(stack, "w0", "w1")
    with Client(stack.url, api_key=stack.api_key) as client:
        job = client.submit(spec)
        done = wait_for(client, job.id, lambda j: j.done, stack, timeout=120)
    assert done.status == "succeeded", (done.error, stack.logs())
    assert done.evaluated == BUDGET
    assert_exact(stack, job.id, expected)
    w0, w1 = marks_of(marks, "w0", "end"), marks_of(marks, "w1", "end")
    assert w0 and w1, f"one worker did everything: w0 {len(w0)}, w1 {len(w1)}"


def test_a_killed_helper_s_candidates_are_redone_exactly_once(stack: Stack, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    marks = tmp_path / "marks"
    spec = fanout_spec(tmp_path, marks)
    expected = serial_archs(spec, monkeypatch)
    done, cut_short = run_killing_the_helper(stack, spec, marks)
    assert done.status == "succeeded", (done.error, stack.logs())
    assert_exact(stack, done.id, expected)
    assert cut_short and cut_short <= marks_of(marks, "owner", "end"), "the killed helper's candidates were not redone"
    recorded = {zlib.crc32(t.arch.encode()) for t in trials_of(stack.env["HWNAS_DATABASE_URL"], done.id)}
    assert cut_short <= recorded


def test_a_new_owner_finishes_the_batch_in_flight_without_asking_again(
        stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marks = tmp_path / "marks"
    spec = fanout_spec(tmp_path, marks)
    expected = serial_archs(spec, monkeypatch)
    done = run_killing_the_owner(stack, spec, marks)
    assert done.status == "succeeded", (done.error, stack.logs())
    assert_exact(stack, done.id, expected)
    assert "resuming a batch of" in worker_logs(stack), "the new owner did not find the batch in flight"


def test_cancel_stops_every_worker_before_its_next_evaluation(stack: Stack, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    spec = fanout_spec(tmp_path, marks)
    start_tagged_worker(stack, "w0", beat=True)
    start_tagged_worker(stack, "w1", beat=False)
    wait_ready(stack, "w0", "w1")
    with Client(stack.url, api_key=stack.api_key) as client:
        job = client.submit(spec)
        wait_for(client, job.id, lambda j: j.evaluated >= 4, stack)
        client.cancel(job.id)
        acknowledged = dt.datetime.now(dt.UTC)
        done = wait_for(client, job.id, lambda j: j.done, stack, timeout=60)
    assert done.status == "cancelled", (done.error, stack.logs())
    trials = trials_of(stack.env["HWNAS_DATABASE_URL"], job.id)
    assert [t.seq for t in trials] == list(range(len(trials))) and len(trials) < BUDGET
    assert done.evaluated == len(trials)
    assert all(t.started_at <= acknowledged for t in trials), "a trial started after the cancel"


def assert_exactly_budget(stack: Stack, job_id: str) -> list[Any]:
    """Asynchronous schedule: ``BUDGET`` trials, seqs 0..BUDGET-1, distinct architectures, none left pending."""
    trials = trials_of(stack.env["HWNAS_DATABASE_URL"], job_id)
    assert sorted(t.seq for t in trials) == list(range(BUDGET)), "trials lost or duplicated"
    assert len({t.arch for t in trials}) == BUDGET, "an architecture was recorded twice"
    assert all(t.status == "completed" for t in trials), [t.error for t in trials]
    engine = make_engine(stack.env["HWNAS_DATABASE_URL"])
    with session_scope(make_session_factory(engine)) as s:
        assert s.scalars(select(PendingTrial).where(PendingTrial.job_id == job_id)).all() == []
    engine.dispose()
    return trials


def test_async_a_killed_helper_s_candidate_is_redone_and_budget_trials_recorded(stack: Stack, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    spec = {**fanout_spec(tmp_path, marks), "schedule": "async", "batch_size": 1}
    done, cut_short = run_killing_the_helper(stack, spec, marks)
    assert done.status == "succeeded", (done.error, stack.logs())
    trials = assert_exactly_budget(stack, done.id)
    assert cut_short and cut_short <= marks_of(marks, "owner", "end"), "the killed helper's candidate was not redone"
    assert cut_short <= {zlib.crc32(t.arch.encode()) for t in trials}


def test_async_a_new_owner_resumes_the_candidates_in_flight(stack: Stack, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    spec = {**fanout_spec(tmp_path, marks), "schedule": "async", "batch_size": 1}
    done = run_killing_the_owner(stack, spec, marks)
    assert done.status == "succeeded", (done.error, stack.logs())
    assert_exactly_budget(stack, done.id)
    assert "candidates in flight, handed out by the previous owner" in worker_logs(stack), "the new owner did not resume"
