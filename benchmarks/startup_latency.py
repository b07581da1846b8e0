"""Per-job start-up cost on a warm Celery worker: claim -> first evaluation, and seven tiny jobs.

    .venv/bin/python benchmarks/startup_latency.py [--jobs 20] [--repo PATH]

One ``hwnas worker`` (concurrency 1) on a fresh PostgreSQL database and a Redis queue of
its own, the nb201 benchmark table from ../shared/data/nb201_hw.csv registered. After
one warm-up job, ``--jobs`` benchmark-scored jobs (budget 5) are sent one after the
other; from the database: submit -> claim (the job's ``started_at``) and claim -> first
evaluation (its first trial's ``started_at``), p50 and p95. Then seven tiny jobs are sent
at once and their wall time (first submit to last end) is printed beside the evaluation
time they contain. ``--repo`` runs the worker from another checkout (e.g. the code
before a change); the database schema must be the same.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from celery import Celery

from nas.service import Quotas, submit
from nas.spec import JobSpec
from storage import jobs as jobs_q
from storage import tenants as tenants_q
from storage.db import session_scope
from scratch import fresh_database, seeded_database

ROOT = Path(__file__).resolve().parents[1]


def spec(seed: int, budget: int = 5) -> JobSpec:
    return JobSpec.model_validate({
        "space": "nb201", "strategy": {"name": "random"}, "budget": {"evaluations": budget}, "seed": seed,
        "objectives": [{"metric": "accuracy", "goal": "maximize"},
                       {"metric": "latency_ms", "device": "pixel3", "goal": "minimize"}],
        "evaluator": {"type": "benchmark", "table": "nb201", "metric": "cifar10_acc"}})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--repo", type=Path, default=ROOT)
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    with fresh_database(args.pg, "start") as url, tempfile.TemporaryDirectory() as logs:
        factory = seeded_database(url)
        with session_scope(factory) as s:
            tenant = tenants_q.get_or_create_tenant(s, "bench").id
        queue = f"hwnas-start-{uuid.uuid4().hex[:8]}"
        env = {**os.environ, "HWNAS_DATABASE_URL": url, "HWNAS_BROKER_URL": args.redis, "HWNAS_QUEUE": queue,
               "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(args.repo)}
        log = Path(logs) / "worker.log"
        proc = subprocess.Popen([sys.executable, "-m", "hwnas.cli.main", "worker", "--no-beat", "--concurrency", "1"],
                                env=env, cwd=args.repo, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                                start_new_session=True)
        sender = Celery(broker=args.redis)
        try:
            deadline = time.monotonic() + 120
            while "ready." not in log.read_text(errors="replace"):
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(log.read_text()[-3000:])
                time.sleep(0.2)

            def send(job_spec: JobSpec) -> str:
                job, _ = submit(factory, job_spec, tenant_id=tenant, quotas=Quotas(100, 10**9))
                sender.send_task("hwnas.run_job", args=[job.id], queue=queue)
                return job.id

            def wait(ids: list[str]) -> None:
                deadline = time.monotonic() + 600
                while True:
                    with session_scope(factory) as s:
                        if all(jobs_q.get_job(s, i).status in jobs_q.TERMINAL for i in ids):  # type: ignore[union-attr]
                            return
                    if time.monotonic() > deadline:
                        raise RuntimeError("jobs did not finish:\n" + log.read_text()[-3000:])
                    time.sleep(0.05)

            wait([send(spec(999))])  # warm-up: the worker's first job
            to_claim, to_first = [], []
            for i in range(args.jobs):
                job_id = send(spec(i))
                wait([job_id])
                with session_scope(factory) as s:
                    job = jobs_q.get_job(s, job_id)
                    trials = jobs_q.job_trials(s, job_id)
                    assert job is not None and job.status == "succeeded" and trials, (job and job.error)
                    to_claim.append((job.started_at - job.created_at).total_seconds())
                    to_first.append((min(t.started_at for t in trials) - job.started_at).total_seconds())
            p = lambda xs, q: float(np.percentile(xs, q))  # noqa: E731
            print(f"worker from {args.repo}; {args.jobs} jobs one after the other (load average "
                  f"{os.getloadavg()[0]:.2f})")
            print(f"  submit -> claim:            p50 {p(to_claim, 50):.3f}s  p95 {p(to_claim, 95):.3f}s")
            print(f"  claim -> first evaluation:  p50 {p(to_first, 50):.3f}s  p95 {p(to_first, 95):.3f}s")
            t0 = time.perf_counter()
            ids = [send(spec(100 + i, budget=20)) for i in range(7)]
            wait(ids)
            wall = time.perf_counter() - t0
            with session_scope(factory) as s:
                work = sum(t.duration_s for i in ids for t in jobs_q.job_trials(s, i))
            print(f"  7 tiny jobs (20 evaluations each) sent at once: {wall:.2f}s wall, {work:.2f}s of it "
                  f"evaluating (load average {os.getloadavg()[0]:.2f})")
        finally:
            os.killpg(proc.pid, 15)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
            factory.kw["bind"].dispose()


if __name__ == "__main__":
    main()
