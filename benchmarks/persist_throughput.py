"""Trials persisted per second to PostgreSQL: hwnas's engine vs Optuna's RDB storage.

    .venv/bin/python benchmarks/persist_throughput.py [--trials 10000] [--batch 500]

Both runs write the same number of trials to fresh databases on the same server
with a trivial objective, so the figure is the cost of searching and persisting.
hwnas runs the worker's own path (claim, engine, one transaction per batch under
the lease) on the fbnet space — nb201 has only 6,466 distinct cells, fewer than
10,000 — with the random strategy, accuracy from a trivial in-process function
and pixel3 latency from the shipped table. Optuna runs `study.optimize` with its
RandomSampler and two objectives on RDBStorage.
"""

from __future__ import annotations

import argparse
import time

from nas.resolve import build_search
from nas.service import DbCatalog, DbRecorder, Quotas, register_shipped_tables, submit
from nas.engine import run_search
from storage import jobs as jobs_q
from storage import tenants as tenants_q
from storage.db import make_engine, make_session_factory, session_scope
from storage.migrate import upgrade
from scratch import CodeSum, code_sum_spec, fresh_database


def run_hwnas(url: str, trials: int, batch: int) -> float:
    upgrade(url)
    factory = make_session_factory(make_engine(url))
    register_shipped_tables(factory)
    spec = code_sum_spec(trials, batch)
    with session_scope(factory) as s:
        tenant = tenants_q.get_or_create_tenant(s, "bench").id
    job, _ = submit(factory, spec, tenant_id=tenant, quotas=Quotas(10, 10**9))
    search = build_search(spec, DbCatalog(factory))
    search.evaluator = CodeSum(search.space)
    started = time.perf_counter()
    with session_scope(factory) as s:
        token = jobs_q.claim(s, job.id, "benchmark", lease_seconds=600)
    assert token
    summary = run_search(search, DbRecorder(factory, job.id, token, lease_seconds=600))
    elapsed = time.perf_counter() - started
    with session_scope(factory) as s:
        stored = len(jobs_q.job_trials(s, job.id))
    assert stored == summary.evaluated == trials, (stored, summary.evaluated)
    return elapsed


def run_optuna(url: str, trials: int) -> float:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=url, directions=["maximize", "minimize"],
                                sampler=optuna.samplers.RandomSampler(seed=0))

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        codes = [trial.suggest_int(f"layer{i}", 0, 8) for i in range(22)]
        return float(sum(codes)), float(codes[0])

    started = time.perf_counter()
    study.optimize(objective, n_trials=trials)
    elapsed = time.perf_counter() - started
    assert len(study.trials) == trials
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    with fresh_database(args.pg, "tp") as url:
        ours = run_hwnas(url, args.trials, args.batch)
    with fresh_database(args.pg, "tp") as url:
        theirs = run_optuna(url, args.trials)
    print(f"hwnas  {args.trials} trials in {ours:7.1f}s = {args.trials / ours:8.0f} trials/s (batch {args.batch})")
    print(f"optuna {args.trials} trials in {theirs:7.1f}s = {args.trials / theirs:8.0f} trials/s")
    print(f"ratio  {theirs / ours:.1f}x")


if __name__ == "__main__":
    main()
