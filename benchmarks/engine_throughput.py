"""Evaluations per second of a benchmark-scored search, persisted trial by trial.

    .venv/bin/python benchmarks/engine_throughput.py [--budget 2000] [--pg postgresql+psycopg://postgres@127.0.0.1/test]

Runs the same job (nb201, evolution, cifar10 accuracy from ../shared/data/nb201_hw.csv,
pixel3 latency) through the service path a worker takes — claim, engine, one
transaction per trial under the lease — on SQLite and on a fresh PostgreSQL database.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from sqlalchemy import text

from nas.service import Quotas, execute_job, submit
from nas.spec import JobSpec
from storage import tenants as tenants_q
from storage.db import session_scope
from scratch import fresh_database, seeded_database


def run(url: str, budget: int) -> tuple[float, int]:
    factory = seeded_database(url)
    spec = JobSpec.model_validate({
        "space": "nb201", "strategy": {"name": "evolution"}, "budget": {"evaluations": budget},
        "objectives": [{"metric": "accuracy", "goal": "maximize"},
                       {"metric": "latency_ms", "device": "pixel3", "goal": "minimize"}],
        "evaluator": {"type": "benchmark", "table": "nb201", "metric": "cifar10_acc"}})
    with session_scope(factory) as s:
        tenant = tenants_q.get_or_create_tenant(s, "bench").id
    job, _ = submit(factory, spec, tenant_id=tenant, quotas=Quotas(10, 10**9))
    started = time.perf_counter()
    outcome = execute_job(factory, job.id, owner="benchmark", lease_seconds=60)
    elapsed = time.perf_counter() - started
    with session_scope(factory) as s:
        evaluated = s.execute(text("SELECT evaluated FROM jobs WHERE id = :id"), {"id": job.id}).scalar_one()
    factory.kw["bind"].dispose()
    assert outcome == "succeeded", outcome
    return elapsed, evaluated


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", type=int, default=2000)
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        elapsed, n = run(f"sqlite:///{tmp}/bench.db", args.budget)
        print(f"sqlite     {n} evaluations in {elapsed:.2f}s = {n / elapsed:.0f} evaluations/s")
    with fresh_database(args.pg, "bench") as url:
        elapsed, n = run(url, args.budget)
        print(f"postgresql {n} evaluations in {elapsed:.2f}s = {n / elapsed:.0f} evaluations/s")

if __name__ == "__main__":
    main()
