"""Latency of ``GET /v1/jobs/{id}/pareto`` and ``GET /v1/jobs/{id}`` on a job of 100,000 trials.

    .venv/bin/python benchmarks/pareto_read_latency.py [--trials 100000] [--requests 1000]

Loads a finished job into a fresh PostgreSQL database through the worker's own
recording path (claim, engine, one transaction per batch of trials with the running
front and hypervolume, under the lease) -- fbnet space, random strategy, accuracy
from a trivial in-process function, pixel3 latency from the shipped table -- then
starts a real ``hwnas serve`` and times sequential requests over HTTP (keep-alive,
after 50 warm-up requests). The front is kept with the job as trial seqs while
trials arrive, so a read fetches those rows by the (job_id, seq) index and never
looks at the other trials.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import func, select

from nas.engine import run_search
from nas.resolve import build_search
from nas.service import DbCatalog, DbRecorder, Quotas, register_shipped_tables, submit
from storage import jobs as jobs_q
from storage import tenants as tenants_q
from storage.db import make_engine, make_session_factory, session_scope
from storage.migrate import upgrade
from storage.models import Trial
from scratch import CodeSum, code_sum_spec, fresh_database

ROOT = Path(__file__).resolve().parents[1]


def load_job(url: str, trials: int, batch: int) -> tuple[str, str]:
    """A finished job of ``trials`` trials, written as a worker writes it. Returns (job id, API key)."""
    upgrade(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    register_shipped_tables(factory)
    spec = code_sum_spec(trials, batch)
    with session_scope(factory) as s:
        key = tenants_q.create_key(s, "bench").key
        tenant = tenants_q.get_or_create_tenant(s, "bench").id
    job, _ = submit(factory, spec, tenant_id=tenant, quotas=Quotas(10, 10**9))
    search = build_search(spec, DbCatalog(factory))
    search.evaluator = CodeSum(search.space)
    with session_scope(factory) as s:
        token = jobs_q.claim(s, job.id, "benchmark", lease_seconds=3600)
    assert token
    started = time.perf_counter()
    summary = run_search(search, DbRecorder(factory, job.id, token, lease_seconds=3600))
    with session_scope(factory) as s:
        jobs_q.finish(s, job.id, token, "succeeded")
        stored = s.scalar(select(func.count()).select_from(Trial).where(Trial.job_id == job.id))
    assert stored == summary.evaluated == trials, (stored, summary.evaluated)
    print(f"loaded {trials} trials in {time.perf_counter() - started:.1f}s (batch {batch}); "
          f"front {len(summary.front)} trials, hypervolume {summary.hypervolume:.1f}", flush=True)
    engine.dispose()
    return job.id, key


@contextmanager
def server(url: str, redis_url: str) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "HWNAS_DATABASE_URL": url, "HWNAS_BROKER_URL": redis_url, "HWNAS_PORT": str(port),
           "HWNAS_QUEUE": f"hwnas-bench-{uuid.uuid4().hex[:8]}", "HWNAS_RATE_LIMIT_PER_MINUTE": "1000000"}
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen([sys.executable, "-m", "hwnas.cli.main", "serve"], env=env, cwd=ROOT, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base}/v1/health", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"hwnas serve did not come up:\n{log.read().decode()[-3000:]}")
                time.sleep(0.2)
            yield base
        finally:
            os.killpg(proc.pid, 15)
            proc.wait(timeout=20)


def timed(client: httpx.Client, path: str, requests: int) -> tuple[list[float], int]:
    """Milliseconds per request, and the response size."""
    size = 0
    for _ in range(50):
        client.get(path).raise_for_status()
    times = []
    for _ in range(requests):
        t0 = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - t0) * 1000)
        response.raise_for_status()
        size = len(response.content)
    return times, size


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    with fresh_database(args.pg, "pareto") as url:
        job_id, key = load_job(url, args.trials, args.batch)
        with server(url, args.redis) as base, \
                httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
            for label, path in (("GET /v1/jobs/{id}/pareto", f"/v1/jobs/{job_id}/pareto"),
                                ("GET /v1/jobs/{id}", f"/v1/jobs/{job_id}")):
                times, size = timed(client, path, args.requests)
                print(f"{label:26} {args.requests} requests: p50 {percentile(times, 50):6.2f} ms  "
                      f"p99 {percentile(times, 99):6.2f} ms  max {max(times):7.2f} ms  "
                      f"mean {statistics.fmean(times):6.2f} ms  ({size} bytes)", flush=True)


if __name__ == "__main__":
    main()
