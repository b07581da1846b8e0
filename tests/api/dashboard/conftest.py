"""A live embedded server with real finished jobs, and headless Chromium driven by Playwright.

The browser is Debian's ``chromium`` (never a downloaded one). Without it, or without
the playwright package, browser tests skip with a message; with ``CI`` set they fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import WORKER_ENV, ARTIFACTS, Service, free_port, hwnas_cmd, start_process, stop, wait_healthy

CHROMIUM = os.environ.get("HWNAS_CHROMIUM", "/usr/bin/chromium")
#: Flags this machine needs: no sandbox as root, no GPU, no calls home (the network is closed).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
SCREENSHOTS = ARTIFACTS / "dashboard"


def benchmark_spec(name: str, devices: list[str], budget: int, strategy: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "space": "nb201", "strategy": {"name": strategy, "params": {}},
            "budget": {"evaluations": budget}, "seed": 3, "batch_size": 10,
            "objectives": [{"metric": "accuracy", "goal": "maximize"},
                           *({"metric": "latency_ms", "device": d, "goal": "minimize"} for d in devices)],
            "evaluator": {"type": "benchmark", "table": "nb201", "metric": "cifar10_acc"}, **extra}


def slow_command_spec(name: str, budget: int, seconds: float) -> dict[str, Any]:
    """Each trial sleeps; its 'accuracy' is the architecture string's length (varies with the ops)."""
    return {"name": name, "space": "nb201", "strategy": {"name": "random", "params": {}},
            "budget": {"evaluations": budget}, "seed": 5,
            "objectives": [{"metric": "accuracy", "goal": "maximize"},
                           {"metric": "latency_ms", "device": "pixel3", "goal": "minimize"}],
            "evaluator": {"type": "command",
                          "command": f"sh -c 'sleep {seconds}; echo \"{{\\\"accuracy\\\": ${{#HWNAS_ARCH}}}}\"'"}}


def wait_for_job(client: httpx.Client, job_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").raise_for_status().json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} still {job['status']} after {timeout}s")


@dataclass
class DashboardServer:
    url: str
    client: httpx.Client
    #: finished jobs by role, as GET /v1/jobs/{id} returned them
    jobs: dict[str, dict[str, Any]]
    service: Service


@pytest.fixture(scope="session")
def dashboard_server(tmp_path_factory: pytest.TempPathFactory, nb201_csv: Path) -> Iterator[DashboardServer]:
    """One embedded server for the dashboard tests, with the nb201 benchmark and two finished jobs:
    ``multi`` (evolution, pixel3 + raspi4, a pixel3 latency constraint) and ``single`` (random, pixel3)."""
    tmp = tmp_path_factory.mktemp("dashboard")
    port = free_port()
    env = {**os.environ, "HWNAS_DATABASE_URL": f"sqlite:///{tmp / 'hwnas.db'}", "HWNAS_BROKER_URL": "",
           "HWNAS_PORT": str(port), "PYTHONUNBUFFERED": "1", **WORKER_ENV}
    api, log = start_process("api", hwnas_cmd("serve", "--embedded"), env, tmp)
    url = f"http://127.0.0.1:{port}"
    server = DashboardServer(url, httpx.Client(base_url=url, timeout=30), {},
                             Service(url, env, {"api": api}, {"api": log}))
    try:
        wait_healthy(url, api, log)
        subprocess.run(hwnas_cmd("benchmarks", "import", str(nb201_csv), "--name", "nb201", "--space", "nb201"),
                       env=env, check=True, capture_output=True, timeout=120)
        specs = {"multi": benchmark_spec("multi-device evolution", ["pixel3", "raspi4"], 120, "evolution",
                                         constraints=[{"metric": "latency_ms", "device": "pixel3", "max": 12.0}]),
                 "single": benchmark_spec("pixel3 random", ["pixel3"], 60, "random")}
        ids = {k: server.client.post("/v1/jobs", json=s).raise_for_status().json()["id"] for k, s in specs.items()}
        server.jobs = {k: wait_for_job(server.client, i) for k, i in ids.items()}
        for key, job in server.jobs.items():
            assert job["status"] == "succeeded", (key, job, server.service.log("api"))
        yield server
    finally:
        server.client.close()
        stop(api)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    problem = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        problem = f"the playwright package is not installed ({exc})"
    if problem is None and not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        problem = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"{problem}; CI is set, so browser tests must not skip")
        pytest.skip(f"browser tests skipped: {problem}")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


class ConsoleLog:
    """Console errors, uncaught exceptions and failed requests of one page."""

    def __init__(self, page: Any):
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(f"console.{m.type}: {m.text}")
                if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        page.on("requestfailed", lambda r: self.errors.append(f"request failed: {r.url} {r.failure}"))


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)  # a bound, not a speed bar: the machine may be busy
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def console(page: Any) -> ConsoleLog:
    """Request it before the first navigation (listing it after ``page`` is enough)."""
    return ConsoleLog(page)


def screenshot(page: Any, name: str) -> Path:
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
