"""What hypervolume costs now that it is bounded, and what series.json costs now that it reads the
stored history instead of recomputing it.

    .venv/bin/python benchmarks/hypervolume_bound.py                # HV figures + series.json p99
    .venv/bin/python benchmarks/hypervolume_bound.py --trials 10000 --requests 50

HV: points on the unit sphere's positive orthant (all mutually non-dominated, the worst
case for a front), reference 0, median of ``--repeats`` calls. ``series.json``: a finished
job of ``--trials`` trials with three objectives (accuracy, pixel3 and raspi4 latency) is
stored the way the worker stores it (benchmarks/dashboard_load.write_job, history included)
in a fresh SQLite file; the embedded server is started and ``/jobs/ID/series.json``
requested ``--requests`` times one after the other; p50/p99 of the wall time per request.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.dashboard_load import free_port, start_server, write_job  # noqa: E402
from nas.pareto import hypervolume  # noqa: E402


def hv_ms(objectives: int, points: int, repeats: int, identical: bool = False) -> float:
    rng = np.random.default_rng(0)
    x = rng.random((points, objectives))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    if identical:
        x[:] = x[0]
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        hypervolume(x, np.zeros(objectives))
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def series_latency(trials: int, requests: int) -> tuple[float, float, int]:
    import subprocess

    from tests.conftest import SHARED_DATA

    with tempfile.TemporaryDirectory(prefix="hwnas-hv-bench-") as tmp:
        database_url = f"sqlite:///{Path(tmp) / 'hwnas.db'}"
        env = {**os.environ, "HWNAS_DATABASE_URL": database_url, "HWNAS_BROKER_URL": "", "PYTHONUNBUFFERED": "1"}
        port = free_port()
        proc, url = start_server(env, port, Path(tmp) / "server.log")
        try:
            subprocess.run([sys.executable, "-m", "hwnas.cli.main", "benchmarks", "import",
                            str(SHARED_DATA / "nb201_hw.csv"), "--name", "nb201", "--space", "nb201"],
                           env=env, check=True, capture_output=True, cwd=ROOT)
            job_id = write_job(database_url, trials)
            times, size = [], 0
            with httpx.Client(base_url=url, timeout=120) as c:
                for _ in range(requests):
                    t = time.perf_counter()
                    r = c.get(f"/jobs/{job_id}/series.json")
                    times.append((time.perf_counter() - t) * 1000)
                    r.raise_for_status()
                    size = len(r.content)
            times.sort()
            return times[len(times) // 2], times[min(len(times) - 1, int(0.99 * len(times)))], size
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"load average before: {open('/proc/loadavg').read().split()[:3]}")
    for objectives, points, identical in ((2, 1000, False), (3, 200, False), (3, 2000, False), (4, 200, False),
                                          (4, 500, False), (6, 80, False), (8, 200, False), (16, 200, False),
                                          (6, 1000, True), (3, 1000, True)):
        label = f"{objectives} objectives x {points} {'identical ' if identical else ''}points"
        method = "exact" if objectives <= 4 else "Monte-Carlo"
        print(f"HV {label:38s} {method:11s} {hv_ms(objectives, points, args.repeats, identical):9.1f} ms")
    p50, p99, size = series_latency(args.trials, args.requests)
    print(f"series.json, {args.trials} trials, 3 objectives, {args.requests} requests: "
          f"p50 {p50:.0f} ms, p99 {p99:.0f} ms ({size / 1e6:.1f} MB)")
    print(f"load average after: {open('/proc/loadavg').read().split()[:3]}")


if __name__ == "__main__":
    main()
