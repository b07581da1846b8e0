"""Wall time of one job on 1 vs N Celery workers (job spec ``parallelism``).

    .venv/bin/python benchmarks/fanout_speedup.py [--workers 1 2 4] [--evaluations 48] [--batch 8] [--sleep 0.2]
        [--lengths fixed random] [--schedule async|sync]

The same job each time (nb201, evolution, seed 0) with a command evaluator that
sleeps ``--sleep`` seconds per candidate, run by N separate ``hwnas worker``
processes (concurrency 1 each) on a fresh PostgreSQL database and a Redis queue of
its own; ``parallelism`` is N. Prints the job's run time (its first claim to its
end, from the job row) and the speed-up over the first row.

``--lengths random``: each candidate sleeps a seeded random 0.5-2 s instead (the
length is a hash of the architecture and the seed, so every run sleeps the same
total for the same candidates), as real training varies in length.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from celery import Celery

from nas.service import Quotas, register_shipped_tables, submit
from nas.spec import JobSpec
from storage import jobs as jobs_q
from storage import tenants as tenants_q
from storage.db import make_engine, make_session_factory, session_scope
from storage.migrate import upgrade
from scratch import SANDBOX_PYTHON, fresh_database, sandbox_readable

ROOT = Path(__file__).resolve().parents[1]


EVAL_SCRIPT = """import json, sys, time, zlib
arch, sleep_s, seed = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
if sleep_s < 0:  # seeded random length, 0.5-2 s, the same for the same candidate every run
    sleep_s = 0.5 + zlib.crc32(f"{seed}:{arch}".encode()) % 1501 / 1000
time.sleep(sleep_s)
print(json.dumps({"accuracy": zlib.crc32(arch.encode()) % 100}))
"""


def command(script: Path, sleep_s: float, random_lengths: bool = False, seed: int = 0) -> str:
    """Sleeps (fixed or seeded random length), then scores the architecture by a checksum."""
    return f"{SANDBOX_PYTHON} {script} {{arch}} {-1 if random_lengths else sleep_s} {seed}"


@contextmanager
def workers(count: int, env: dict[str, str], log_dir: Path) -> Iterator[None]:
    procs, logs = [], []
    for i in range(count):
        log = log_dir / f"worker{i}.log"
        procs.append(subprocess.Popen([sys.executable, "-m", "hwnas.cli.main", "worker", "--no-beat",
                                       "--concurrency", "1"], env=env, cwd=ROOT, stdout=log.open("wb"),
                                      stderr=subprocess.STDOUT, start_new_session=True))
        logs.append(log)
    try:
        deadline = time.monotonic() + 120
        while not all("ready." in log.read_text(errors="replace") for log in logs):
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise RuntimeError("workers did not start:\n" + "\n".join(log.read_text()[-2000:] for log in logs))
            time.sleep(0.2)
        yield
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, 15)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()


def run(server: str, redis_url: str, count: int, evaluations: int, batch: int,
        sleep_s: float, random_lengths: bool = False, schedule: str = "async") -> tuple[float, int, float]:
    """(seconds the job ran, trials stored, seconds spent in the evaluator summed over trials)."""
    with fresh_database(server, "fan") as url, tempfile.TemporaryDirectory() as logs:
        upgrade(url)
        engine = make_engine(url)
        factory = make_session_factory(engine)
        register_shipped_tables(factory)
        queue = f"hwnas-bench-{uuid.uuid4().hex[:8]}"
        script = sandbox_readable(Path(logs)) / "sleepy_eval.py"
        script.write_text(EVAL_SCRIPT)
        env = {**os.environ, "HWNAS_ALLOW_COMMAND_EVALUATOR": "true", "HWNAS_DATABASE_URL": url, "HWNAS_BROKER_URL": redis_url, "HWNAS_QUEUE": queue,
               "PYTHONUNBUFFERED": "1"}
        spec = JobSpec.model_validate({
            "space": "nb201", "strategy": {"name": "evolution", "params": {"population_size": 16, "sample_size": 4}},
            "budget": {"evaluations": evaluations}, "seed": 0, "batch_size": batch, "parallelism": count,
            "schedule": schedule,
            "objectives": [{"metric": "accuracy", "goal": "maximize"},
                           {"metric": "latency_ms", "device": "pixel3", "goal": "minimize"}],
            "evaluator": {"type": "command", "command": command(script, sleep_s, random_lengths)}})
        with session_scope(factory) as s:
            tenant = tenants_q.get_or_create_tenant(s, "bench").id
        with workers(count, env, Path(logs)):
            job, _ = submit(factory, spec, tenant_id=tenant, quotas=Quotas(10, 10**6))
            Celery(broker=redis_url).send_task("hwnas.run_job", args=[job.id], queue=queue)
            deadline = time.monotonic() + 600
            while True:
                with session_scope(factory) as s:
                    row = jobs_q.get_job(s, job.id)
                    assert row is not None
                    if row.status in jobs_q.TERMINAL:
                        trials = jobs_q.job_trials(s, job.id)
                        stored, busy = len(trials), sum(t.duration_s for t in trials)
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"job still {row.status} after 600s")
                time.sleep(0.2)
        engine.dispose()
        if row.status != "succeeded":
            raise RuntimeError(f"job {row.status}: {row.error}")
        assert row.started_at and row.finished_at
        return (row.finished_at - row.started_at).total_seconds(), stored, busy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--evaluations", type=int, default=48)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--sleep", type=float, default=0.2)
    parser.add_argument("--lengths", nargs="+", choices=["fixed", "random"], default=["fixed"])
    parser.add_argument("--schedule", choices=["async", "sync"], default="async")
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    for lengths in args.lengths:
        what = f"{args.sleep:g}s" if lengths == "fixed" else "0.5-2s (seeded random)"
        print(f"{args.evaluations} evaluations of {what}, schedule {args.schedule} (batch {args.batch})")
        first: float | None = None
        for count in args.workers:
            seconds, stored, busy = run(args.pg, args.redis, count, args.evaluations, args.batch, args.sleep,
                                        lengths == "random", args.schedule)
            first = first or seconds
            print(f"  workers {count}: {seconds:6.2f}s  {stored / seconds:5.2f} evaluations/s  "
                  f"speed-up {first / seconds:4.2f}x  ({stored} trials stored; mean evaluation "
                  f"{busy / stored:.3f}s, workers busy evaluating {busy / (count * seconds):.0%} of the time; "
                  f"load average {os.getloadavg()[0]:.2f})", flush=True)


if __name__ == "__main__":
    main()
