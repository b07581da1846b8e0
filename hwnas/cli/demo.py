"""``hwnas demo``: the whole service on embedded defaults, end to end over HTTP.

Starts the embedded server (SQLite + in-process worker), submits a hardware-aware
search through hwnas-client, waits with a progress bar and prints the front.
Accuracy comes from real short training on scikit-learn's digits, latency from
the shipped Pixel 3 table, so it needs nothing but the installed packages.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import httpx
import typer
from hwnas_client import Client

from hwnas.cli.remote import print_front, wait_with_bar
from hwnas.cli.render import console, fail
from search_spaces import DEFAULT_SPACE

DEMO_DIR = Path(".hwnas")


def demo_spec(budget: int, device: str, max_latency_ms: float) -> dict[str, object]:
    return {
        "name": f"demo: digits accuracy vs {device} latency",
        "space": DEFAULT_SPACE,
        "strategy": {"name": "evolution", "params": {"population_size": 10, "sample_size": 3}},
        "budget": {"evaluations": budget},
        "seed": 0,
        "objectives": [{"metric": "accuracy", "goal": "maximize"},
                       {"metric": "latency_ms", "device": device, "goal": "minimize"}],
        "constraints": [{"metric": "latency_ms", "device": device, "max": max_latency_ms}],
        "evaluator": {"type": "train", "dataset": "digits", "epochs": 2, "width": 8, "cells_per_stage": 1},
    }


def demo(port: Annotated[int, typer.Option(help="Port of the demo server")] = 8765,
         budget: Annotated[int, typer.Option(help="Evaluations (each trains a network on digits)")] = 24,
         device: Annotated[str, typer.Option(help="Device whose latency table is used")] = "pixel3",
         max_latency_ms: Annotated[float, typer.Option(help="Latency limit on the device")] = 15.0,
         keep_serving: Annotated[bool | None, typer.Option(
             help="Keep the server up afterwards (default: when run in a terminal)")] = None) -> None:
    """Run a real hardware-aware search on the embedded server and print its Pareto front."""
    DEMO_DIR.mkdir(exist_ok=True)
    db = DEMO_DIR / "demo.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    url = f"http://127.0.0.1:{port}"
    log = (DEMO_DIR / "demo-server.log").open("w")
    env = {**os.environ, "HWNAS_EMBEDDED": "true", "HWNAS_HOST": "127.0.0.1", "HWNAS_DATABASE_URL": f"sqlite:///{db}"}
    server = subprocess.Popen([sys.executable, "-m", "hwnas.cli.main", "serve", "--embedded",
                               "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        with Client(url) as client:
            _wait_until_up(client, server, DEMO_DIR / "demo-server.log")
            console.print(f"embedded server up at {url} (SQLite {db}, in-process worker)")
            job = client.submit(demo_spec(budget, device, max_latency_ms))
            console.print(f"submitted job {job.id}: {DEFAULT_SPACE}, evolution, {budget} evaluations, "
                          f"accuracy on digits vs {device} latency (<= {max_latency_ms} ms)")
            started = time.perf_counter()
            job = wait_with_bar(client, job.id, timeout=900, poll=0.5)
            console.print(f"job {job.status} in {time.perf_counter() - started:.1f}s: "
                          f"{job.evaluated} evaluated, {job.failed} failed")
            if job.status != "succeeded":
                fail(f"demo job ended {job.status}: {job.error}")
            print_front(client, job.id)
            console.print(f"\nLook at it: {url}/jobs/{job.id}  (JSON: {url}/v1/jobs/{job.id}/pareto, API docs: {url}/docs)")
        if keep_serving if keep_serving is not None else sys.stdin.isatty():
            console.print("server still running; press Ctrl+C to stop")
            server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.terminate()
        server.wait(timeout=10)


def _wait_until_up(client: Client, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            fail(f"the demo server exited:\n{log.read_text()[-2000:]}")
        try:
            client.health()
            return
        except httpx.TransportError:
            time.sleep(0.2)
    fail(f"the demo server did not come up in 60 s; see {log}")
