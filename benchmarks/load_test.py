"""Load test: 50 users against the real stack while a job runs.

    .venv/bin/python benchmarks/load_test.py [--duration 300] [--users 50] [--http-workers 2]

Starts its own stack on this machine — a fresh PostgreSQL database on the local
server, Redis, `hwnas serve` and one Celery worker running a long job — prepares
a finished 1,000-trial job, then runs Locust headless: 80% status polls of the
1,000-trial job, 15% job lists and Pareto fronts, 5% submissions (the running
job's evaluations take 0.5 s each, as a short real evaluation would). Prints
requests/s, p50/p99 per endpoint and the errors.
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

import gevent  # locust's runtime; imported first so its monkey-patching comes before the rest
import httpx
from locust import FastHttpUser, between, task
from locust.env import Environment
from locust.stats import stats_history, stats_printer
from sqlalchemy import update
from scratch import fresh_database

ROOT = Path(__file__).resolve().parents[1]
CSV = ROOT.parent / "shared" / "data" / "nb201_hw.csv"
SPEC = {"space": "nb201", "strategy": {"name": "random"}, "budget": {"evaluations": 5},
        "objectives": [{"metric": "accuracy", "goal": "maximize"},
                       {"metric": "latency_ms", "device": "pixel3", "goal": "minimize"}],
        "evaluator": {"type": "benchmark", "table": "nb201", "metric": "cifar10_acc"}}
STATE: dict[str, str] = {}


class Engineer(FastHttpUser):
    wait_time = between(0.1, 0.3)

    def on_start(self) -> None:
        self.auth = {"Authorization": f"Bearer {STATE['key']}"}

    @task(80)
    def poll_status(self) -> None:
        self.client.get(f"/v1/jobs/{STATE['job']}", name="GET /v1/jobs/{id}", headers=self.auth)

    @task(8)
    def list_jobs(self) -> None:
        self.client.get("/v1/jobs?limit=20", name="GET /v1/jobs", headers=self.auth)

    @task(7)
    def pareto(self) -> None:
        self.client.get(f"/v1/jobs/{STATE['job']}/pareto", name="GET /v1/jobs/{id}/pareto", headers=self.auth)

    @task(5)
    def submit(self) -> None:
        self.client.post("/v1/jobs", json=SPEC, name="POST /v1/jobs", headers=self.auth)


def hwnas(*args: str, env: dict[str, str]) -> str:
    return subprocess.run([sys.executable, "-m", "hwnas.cli.main", *args], env=env, cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout


def prepare(env: dict[str, str]) -> None:
    """Migrate, register the benchmark, create a key and a finished 1,000-trial job."""
    from nas.service import Quotas, execute_job, submit
    from nas.spec import JobSpec
    from storage.db import make_engine, make_session_factory, session_scope
    from storage.models import Tenant

    hwnas("db", "upgrade", env=env)
    hwnas("benchmarks", "import", str(CSV), "--name", "nb201", "--space", "nb201", env=env)
    STATE["key"] = hwnas("keys", "create", "--tenant", "load", env=env).strip().splitlines()[-1]
    factory = make_session_factory(make_engine(env["HWNAS_DATABASE_URL"]))
    with session_scope(factory) as s:
        s.execute(update(Tenant).where(Tenant.name == "load").values(
            max_concurrent_jobs=1_000_000, max_active_evaluations=10**9, rate_limit_per_minute=10**9))
        tenant_id = s.query(Tenant.id).filter(Tenant.name == "load").scalar()
    spec = JobSpec.model_validate({**SPEC, "strategy": {"name": "evolution"}, "budget": {"evaluations": 1000}})
    job, _ = submit(factory, spec, tenant_id=tenant_id, quotas=Quotas(10**6, 10**9))
    assert execute_job(factory, job.id, owner="load-test", lease_seconds=60) == "succeeded"
    STATE["job"] = job.id


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=300)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--http-workers", type=int, default=2)
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()

    with fresh_database(args.pg, "load") as db_url:
        run_load(args, db_url)


def run_load(args: argparse.Namespace, db_url: str) -> None:
    """The stack on ``db_url``, a running job, then Locust against it."""
    port = 18000 + os.getpid() % 1000
    env = {**os.environ, "HWNAS_ALLOW_COMMAND_EVALUATOR": "true", "HWNAS_DATABASE_URL": db_url, "HWNAS_BROKER_URL": args.redis,
           "HWNAS_QUEUE": f"load-{uuid.uuid4().hex[:8]}", "HWNAS_PORT": str(port)}
    logs = Path(tempfile.mkdtemp(prefix="hwnas-load-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        prepare(env)
        procs.append(subprocess.Popen([sys.executable, "-m", "hwnas.cli.main", "serve", "--workers",
                                       str(args.http_workers)], env=env, cwd=ROOT,
                                      stdout=(logs / "api.log").open("wb"), stderr=subprocess.STDOUT))
        procs.append(subprocess.Popen([sys.executable, "-m", "hwnas.cli.main", "worker"], env=env, cwd=ROOT,
                                      stdout=(logs / "worker.log").open("wb"), stderr=subprocess.STDOUT))
        url = f"http://127.0.0.1:{port}"
        for _ in range(150):
            try:
                if httpx.get(f"{url}/v1/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        # the job that runs meanwhile evaluates like a real one: each candidate takes a while
        running = {**SPEC, "budget": {"evaluations": 100_000},
                   "evaluator": {"type": "command", "command": "sh -c 'sleep 0.5; echo {\\\"accuracy\\\": 50}'"}}
        httpx.post(f"{url}/v1/jobs", json=running, headers={"Authorization": f"Bearer {STATE['key']}"})

        environment = Environment(user_classes=[Engineer], host=url)
        runner = environment.create_local_runner()
        gevent.spawn(stats_printer(environment.stats))
        gevent.spawn(stats_history, runner)
        runner.start(args.users, spawn_rate=10)
        gevent.spawn_later(args.duration, runner.quit)
        runner.greenlet.join()
        report(environment, args)
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # the worker waits for its running job: no need here
                proc.kill()
                proc.wait()
        print(f"server logs in {logs}")


def report(environment: Environment, args: argparse.Namespace) -> None:
    total = environment.stats.total
    print(f"\n{args.users} users, {args.duration}s, {args.http_workers} HTTP workers")
    print(f"{'endpoint':32} {'requests':>9} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>7}")
    for entry in sorted(environment.stats.entries.values(), key=lambda e: -e.num_requests):
        print(f"{entry.name:32} {entry.num_requests:9d} {entry.total_rps:8.1f} "
              f"{entry.get_response_time_percentile(0.5):7.0f} {entry.get_response_time_percentile(0.99):7.0f} "
              f"{entry.num_failures:7d}")
    print(f"{'total':32} {total.num_requests:9d} {total.total_rps:8.1f} {total.get_response_time_percentile(0.5):7.0f} "
          f"{total.get_response_time_percentile(0.99):7.0f} {total.num_failures:7d}")
    for error in environment.stats.errors.values():
        print(f"error: {error.method} {error.name}: {error.error} x{error.occurrences}")


if __name__ == "__main__":
    main()
