"""Device in the loop on this machine: onboard an onnxruntime agent (1 thread) and check it.

    .venv/bin/python benchmarks/onboard_quality.py [--spaces nb201 fbnet] [--samples 20] [--validate 30]
                                                   [--held-out 100] [--budget 100]

Starts a real stack on a fresh PostgreSQL database and a Redis queue of its own: ``hwnas
serve``, ``hwnas worker`` and ``hwnas agent --runtime onnxruntime --threads 1`` per space.
For each space it onboards the device (``--samples`` references + ``--validate`` held out),
then measures ``--held-out`` fresh random networks twice (both copies interleaved in the
same batches) and prints the table's Kendall tau and ±10 % share on them beside the noise
floor (the second measurement predicting the first) and FLOPs. On nb201 it also runs a
verified job (front's top 5 measured: predicted vs measured, the refitted table's tau on the
held-out networks before and after), and the same latency-limited job with and without
``"confidence": 0.95``, every front member then measured: the share that breaks the limit.
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
from typing import Any

import httpx
import numpy as np
from hwnas_client import ApiError, Client

from latency_tables import LatencyTable, estimator_for
from latency_tables.fit import validation_report
from nas.devices.measure import DeviceMeasurer
from nas.devices.onboard import unique_sample
from nas.evaluators import read_benchmark_csv
from nas.footprint import StaticMetrics
from nas.service import register_shipped_tables
from scratch import fresh_database
from search_spaces import get_space
from storage import catalog as catalog_q
from storage import devices as devices_q
from storage import tenants as tenants_q
from storage.db import make_engine, make_session_factory, session_scope
from storage.migrate import upgrade
from workers.agent import sender

ROOT = Path(__file__).resolve().parents[1]
NB201_CSV = ROOT.parent / "shared" / "data" / "nb201_hw.csv"


def load() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def start(name: str, args: list[str], env: dict[str, str], logs: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "hwnas.cli.main", *args], env=env, cwd=ROOT,
                            stdout=(logs / f"{name}.log").open("wb"), stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)


def wait_until(what: str, check: Any, timeout: float = 300.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except (httpx.HTTPError, ApiError):
            value = None
        if value:
            return value
        time.sleep(1.0)
    raise RuntimeError(f"{what} not reached in {timeout}s")


def current_table(factory: Any, device: str, space: str, revision: int | None = None) -> LatencyTable:
    with session_scope(factory) as s:
        if revision is not None:
            return LatencyTable.from_dict(devices_q.table_at(s, device, space, revision))
        return LatencyTable.from_dict(catalog_q.get_device(s, device, space)[0].table)


def fmt(report: dict[str, float]) -> str:
    return f"tau {report['kendall_tau']:.3f}  spearman {report['spearman']:.3f}  within 10% {report['within_10pct']:5.1%}"


def held_out(factory: Any, measurer: DeviceMeasurer, device: str, space_name: str, n: int,
             exclude: set[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    space = get_space(space_name)
    archs = unique_sample(space, n, np.random.default_rng(12345), exclude)
    twice = [a for a in archs for _ in range(2)]  # both copies in the same batch: same conditions
    rows = measurer.measure(twice, purpose="probe", owner="benchmark")
    ok = [i for i in range(n) if rows[2 * i].ok and rows[2 * i + 1].ok]
    first = np.array([rows[2 * i].latency_ms for i in ok])
    second = np.array([rows[2 * i + 1].latency_ms for i in ok])
    return [archs[i] for i in ok], first, second


def job_spec(device: str, budget: int, **extra: Any) -> dict[str, Any]:
    return {"space": "nb201", "strategy": {"name": "evolution"}, "budget": {"evaluations": budget}, "seed": 0,
            "objectives": [{"metric": "accuracy", "goal": "maximize"},
                           {"metric": "latency_ms", "device": device, "goal": "minimize"}],
            "evaluator": {"type": "benchmark", "table": "nb201", "metric": "cifar10_acc"}, **extra}


def verify_all(client: Client, job_id: str, device: str) -> list[dict[str, Any]]:
    op = client.verify(job_id, device, top_k=100)
    op = client.wait_operation(device, op["id"], timeout=3600, poll=2)
    if op["status"] != "succeeded":
        raise RuntimeError(f"verification failed: {op['error']}")
    return op["result"]["trials"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spaces", nargs="+", default=["nb201", "fbnet"])
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--validate", type=int, default=30)
    parser.add_argument("--held-out", type=int, default=100)
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--device", default="thiscpu_ort_1t")
    parser.add_argument("--database", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    device = args.device
    with fresh_database(args.database, "onboard") as url, tempfile.TemporaryDirectory() as tmp:
        logs = Path(tmp)
        upgrade(url)
        factory = make_session_factory(make_engine(url))
        register_shipped_tables(factory)
        if NB201_CSV.is_file():
            data = read_benchmark_csv(NB201_CSV, get_space("nb201"), "nb201")
            with session_scope(factory) as s:
                catalog_q.replace_benchmark(s, name="nb201", space="nb201", columns=data.columns, rows=data.rows,
                                            source=str(NB201_CSV))
        with session_scope(factory) as s:
            key = tenants_q.create_key(s, "bench").key
        port = 18000 + os.getpid() % 1000
        queue = f"hwnas-bench-{uuid.uuid4().hex[:8]}"
        env = {**os.environ, "HWNAS_DATABASE_URL": url, "HWNAS_BROKER_URL": args.redis, "HWNAS_QUEUE": queue,
               "HWNAS_PORT": str(port), "HWNAS_AGENT_HEARTBEAT_S": "2", "HWNAS_AGENT_OFFLINE_AFTER_S": "60",
               "PYTHONUNBUFFERED": "1"}
        procs = [start("api", ["serve"], env, logs), start("worker", ["worker"], env, logs)]
        client = Client(f"http://127.0.0.1:{port}", api_key=key, timeout=60)
        notify = sender(args.redis, queue)
        try:
            wait_until("api", lambda: client.health())
            for space_name in args.spaces:
                agent = start(f"agent-{space_name}", ["agent", "--device", device, "--space", space_name,
                                                      "--runtime", "onnxruntime", "--threads", "1"], env, logs)
                try:
                    wait_until("agent online", lambda: any((r.get("agent") or {}).get("online") and
                                                           r["agent"]["space"] == space_name
                                                           for r in client.device(device)))
                    measurer = DeviceMeasurer(factory, device, space_name, notify=notify, offline_after_s=60,
                                              wait_timeout_s=3600)
                    run_space(client, factory, measurer, device, space_name, args)
                finally:
                    stop(agent)
        finally:
            for proc in procs:
                stop(proc)
            client.close()
            print(f"logs: {logs}" if os.environ.get("KEEP_LOGS") else "", end="")


def run_space(client: Client, factory: Any, measurer: DeviceMeasurer, device: str, space_name: str,
              args: argparse.Namespace) -> None:
    space = get_space(space_name)
    started = time.perf_counter()
    op = client.onboard(device, space_name, samples=args.samples, validate=args.validate)
    op = client.wait_operation(device, op["id"], timeout=7200, poll=2)
    if op["status"] != "succeeded":
        raise RuntimeError(f"onboarding failed: {op['error']}")
    result = op["result"]
    print(f"\n== {space_name}: onboarded {device!r} from {result['references']} references in "
          f"{time.perf_counter() - started:.0f} s (load {load()}); model: {result['model']}")
    v = result["validation"]
    q = v["residual_ratio_quantiles"]
    print(f"   its own {v['n']} held-out networks: {fmt(v)}; error bar x{q['0.05']:.3f}..x{q['0.95']:.3f} (90 %)")
    with session_scope(factory) as s:
        seen = {space.canonical_hash(m.arch) for m in devices_q.owner_measurements(s, op["id"])}
    archs, first, second = held_out(factory, measurer, device, space_name, args.held_out, seen)
    table = current_table(factory, device, space_name)
    predicted = estimator_for(table, space).predict(archs)
    flops = StaticMetrics(space, ["flops"]).predict(archs)["flops"]
    print(f"   {len(archs)} fresh held-out networks measured twice (load {load()}):")
    print(f"     table ({args.samples} samples){' ' * (9 - len(str(args.samples)))} {fmt(validation_report(predicted, first))}")
    print(f"     noise floor (2nd vs 1st)  {fmt(validation_report(second, first))}")
    print(f"     FLOPs                     tau {validation_report(flops, first)['kendall_tau']:.3f}")
    if space_name != "nb201" or not NB201_CSV.is_file():
        return
    # a verified job: its front's top 5 measured, the table refitted with them
    job = client.submit(job_spec(device, args.budget, verify={"device": device, "top_k": 5}))
    job = client.wait(job.id, timeout=7200, poll=2)
    front = client._request("GET", f"/v1/jobs/{job.id}/pareto")
    [verification] = front["verifications"]
    print(f"\n   verified job {job.id} ({job.status}, load {load()}): top 5 of its front, predicted vs measured")
    for row in verification["trials"]:
        print(f"     seq {row['seq']:4d}  predicted {row['predicted_ms']:7.3f} ms  measured {row['measured_ms']:7.3f} ms"
              f"  ratio {row['ratio']:.3f}  {'leaves the front' if row['leaves_front'] else ''}")
    refit = verification["refit"]
    before = current_table(factory, device, space_name, refit["revision_before"])
    after = current_table(factory, device, space_name, refit["revision_after"])
    print(f"   refit revision {refit['revision_before']} -> {refit['revision_after']} ({refit['fit_rows']} rows): "
          f"on the {len(archs)} fresh held-out networks tau "
          f"{validation_report(estimator_for(before, space).predict(archs), first)['kendall_tau']:.3f} -> "
          f"{validation_report(estimator_for(after, space).predict(archs), first)['kendall_tau']:.3f}; on the onboarding "
          f"validation set tau {refit['validation_before']['kendall_tau']:.3f} -> "
          f"{refit['validation_after']['kendall_tau']:.3f}")
    # a latency limit with and without confidence; every front member measured
    limit = float(np.percentile(first, 30))
    for confidence in (None, 0.95):
        constraint: dict[str, Any] = {"metric": "latency_ms", "device": device, "max": round(limit, 4)}
        if confidence:
            constraint["confidence"] = confidence
        job = client.wait(client.submit(job_spec(device, args.budget, constraints=[constraint])).id,
                          timeout=7200, poll=2)
        rows = verify_all(client, job.id, device)
        broken = [r for r in rows if r["measured_ms"] is not None and r["measured_ms"] > limit]
        print(f"   limit {limit:.3f} ms, confidence {confidence or 'none'}: front of {len(rows)}, "
              f"{len(broken)} break the limit measured ({len(broken) / max(len(rows), 1):.0%}); "
              f"best accuracy {max((t.metrics['accuracy'] for t in client.pareto(job.id).trials), default=0):.2f} "
              f"(load {load()})")


if __name__ == "__main__":
    main()
