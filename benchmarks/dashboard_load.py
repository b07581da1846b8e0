"""How fast the dashboard shows a big job: page load and plot render time in headless Chromium.

On a fresh SQLite file: registers the nb201 benchmark, stores one finished job of
``--trials`` evaluations through the worker's storage calls (see ``write_job``),
starts the embedded server, then opens the job's page in Debian's chromium
``--runs`` times, each in a fresh browser context (cold cache), and prints the numbers:

    .venv/bin/python benchmarks/dashboard_load.py            # 10,000 trials, 3 runs

Times are from the browser's own clocks (Navigation Timing and performance.now()
around the page script's fetch and plot calls); ``ready`` is navigation start to
every plot drawn and painted. Bytes over the wire are Chromium's own counts of each
response as sent (compressed body plus headers): the page, its assets (plot.js,
dashboard.js/css) and its data (series.json, columns.json, the trials page).
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
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(env: dict[str, str], port: int, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen([sys.executable, "-m", "hwnas.cli.main", "serve", "--embedded", "--port", str(port)],
                            env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server exited:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/v1/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.terminate()
    sys.exit("server did not come up in 60 s")


SPEC: dict[str, Any] = {
    "name": "dashboard load test", "space": "nb201", "strategy": {"name": "random", "params": {}},
    "budget": {"evaluations": 10_000}, "seed": 0,
    "objectives": [{"metric": "accuracy", "goal": "maximize"},
                   {"metric": "latency_ms", "device": "pixel3", "goal": "minimize"},
                   {"metric": "latency_ms", "device": "raspi4", "goal": "minimize"}],
    "constraints": [{"metric": "latency_ms", "device": "pixel3", "max": 15.0}],
    "evaluator": {"type": "benchmark", "table": "nb201", "metric": "cifar10_acc"}}


def write_job(database_url: str, trials: int) -> str:
    """Store a finished job of ``trials`` evaluations the way a worker does (claim, batches, finish).

    A search cannot produce 10,000 trials in nb201: strategies never repeat a cell up to
    isomorphism, and the space has about 6,500 distinct ones. So architectures are drawn
    uniformly with repetition; accuracy is the benchmark's, latency the tables', and the
    stored front and hypervolume come from nas.pareto as in the engine.
    """
    import datetime as dt

    import numpy as np

    from nas.pareto import ParetoArchive
    from nas.resolve import build_search
    from hwnas_settings import Settings
    from nas.service import DbCatalog, Quotas, submit
    from nas.spec import JobSpec
    from storage import hypervolume as hv_q
    from storage import jobs as jobs_q
    from storage import tenants as tenants_q
    from storage.db import make_engine, make_session_factory, session_scope

    engine = make_engine(database_url)
    factory = make_session_factory(engine)
    spec = JobSpec.model_validate({**SPEC, "budget": {"evaluations": trials}, "name": f"{trials} trials"})
    with session_scope(factory) as s:  # embedded mode's implicit tenant, whose jobs the dashboard shows
        tenant_id = tenants_q.get_or_create_tenant(s, tenants_q.DEFAULT_TENANT).id
    settings = Settings(database_url=database_url)
    job, _ = submit(factory, spec, tenant_id=tenant_id,
                    quotas=Quotas(settings.max_concurrent_jobs, max(trials, settings.max_active_evaluations)))
    catalog = DbCatalog(factory)
    search = build_search(spec, catalog)
    table = catalog.benchmark(spec.evaluator.table)
    assert table is not None
    with session_scope(factory) as s:
        token = jobs_q.claim(s, job.id, "dashboard-benchmark", 3600)
    assert token is not None
    rng = np.random.default_rng(0)
    archs = [search.space.decode(c) for c in rng.integers(0, 5, size=(trials, 6))]
    free = search.problem.free_metrics(archs)
    archive = ParetoArchive(search.objectives, search.reference)
    best: dict[str, Any] | None = None
    now = dt.datetime.now(dt.UTC)
    current = 0.0
    for start in range(0, trials, 1000):
        rows = []
        history: list[tuple[int, float]] = []  # the worker's stored hypervolume history (nas.engine)
        for i in range(start, min(start + 1000, trials)):
            metrics = {k: float(v[i]) for k, v in free.items()}
            metrics["accuracy"] = float(table.lookup(search.space, archs[i])[spec.evaluator.metric])
            rows.append({"seq": i, "arch": archs[i], "arch_hash": search.space.canonical_hash(archs[i]),
                         "status": "completed", "metrics": metrics, "error": None, "started_at": now,
                         "finished_at": now, "duration_s": 0.0})
            if search.satisfies_constraints(metrics):
                archive.add(i, metrics)
                if archive.hypervolume() != current:
                    current = archive.hypervolume()
                    history.append((i + 1, current))
                if best is None or metrics["accuracy"] > best["metrics"]["accuracy"]:
                    best = {"seq": i, "arch": archs[i], "metrics": metrics}
        with session_scope(factory) as s:
            jobs_q.record_batch(s, job.id, token, rows, checkpoint={}, evaluated=start + len(rows), failed=0,
                                front=archive.trial_ids, hypervolume=archive.hypervolume(), best=best)
            hv_q.append(s, job.id, history)
    with session_scope(factory) as s:
        jobs_q.finish(s, job.id, token, "succeeded")
    engine.dispose()
    return job.id


def measure(browser: Any, url: str, points: int) -> dict[str, float]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    requests: list[Any] = []
    page.on("requestfinished", lambda r: requests.append(r))
    page.goto(url, wait_until="load", timeout=120_000)
    page.wait_for_function("() => Number(document.body.dataset.plotsReady) >= 1", timeout=120_000)
    page.wait_for_function("() => document.getElementById('plot-explore').dataset.ready", timeout=120_000)
    result = page.evaluate("""() => {
        const nav = performance.getEntriesByType('navigation')[0];
        const t = window.hwnasTimings;
        return {html_ms: nav.responseEnd - nav.startTime, dom_ms: nav.domContentLoadedEventEnd - nav.startTime,
                load_ms: nav.loadEventEnd - nav.startTime, series_fetch_ms: t.seriesFetchMs,
                plot_render_ms: t.plotRenderMs, ready_ms: t.readyAt, points: t.points,
                hover_text_ms: t.hoverTextMs, panel_ms: t.panelMs,
                drawn: document.getElementById('plot-pixel3').hwplot.spec.series[0].x.length};
    }""")
    wire = {"assets": 0, "data": 0, "html": 0}
    for request in requests:  # bytes as sent (compressed), headers included
        sizes = request.sizes()
        size = sizes["responseBodySize"] + sizes["responseHeadersSize"]
        wire["assets" if "/assets/" in request.url else "html" if request.resource_type == "document" else "data"] += size
    result.update({f"{k}_kb": v / 1024 for k, v in wire.items()})
    context.close()
    if errors:
        sys.exit(f"console errors: {errors}")
    if result["points"] != points or result["drawn"] == 0:
        sys.exit(f"expected {points} trials on the page, got {result}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--csv", type=Path, default=ROOT.parent / "shared" / "data" / "nb201_hw.csv")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="hwnas-bench-") as tmp:
        db, log = Path(tmp) / "hwnas.db", Path(tmp) / "server.log"
        database_url = f"sqlite:///{db}"
        env = {**os.environ, "HWNAS_DATABASE_URL": database_url, "HWNAS_BROKER_URL": ""}
        for command in (["db", "upgrade"], ["benchmarks", "import", str(args.csv), "--name", "nb201"]):
            subprocess.run([sys.executable, "-m", "hwnas.cli.main", *command], env=env, check=True,
                           capture_output=True, cwd=ROOT)
        t0 = time.perf_counter()
        job_id = write_job(database_url, args.trials)
        print(f"job {job_id}: {args.trials} trials stored in {time.perf_counter() - t0:.1f}s")
        server, url = start_server(env, free_port(), log)
        try:
            with httpx.Client(base_url=url, timeout=120) as client:
                job = client.get(f"/v1/jobs/{job_id}").raise_for_status().json()
                front = client.get(f"/v1/jobs/{job_id}/pareto").json()["trials"]
                print(f"status {job['status']}, {job['progress']['evaluated']} evaluated, {len(front)} on the front")
                series = []
                for _ in range(3):
                    t0 = time.perf_counter()
                    r = client.get(f"/jobs/{job_id}/series.json").raise_for_status()
                    series.append((time.perf_counter() - t0) * 1000)
                print(f"series.json: {len(r.content) / 1e6:.2f} MB, server+transfer median "
                      f"{statistics.median(series):.0f} ms (httpx, 3 requests)")
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
                runs = [measure(browser, f"{url}/jobs/{job_id}", args.trials) for _ in range(args.runs)]
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=15)
    keys = ["html_ms", "dom_ms", "load_ms", "series_fetch_ms", "plot_render_ms", "ready_ms"]
    print(f"\njob page, {args.trials} trials, 2 device panels + hypervolume chart, "
          f"{args.runs} cold loads in Chromium (ms):")
    print("run  " + "  ".join(f"{k:>15}" for k in keys))
    for i, r in enumerate(runs, 1):
        print(f"{i:<4} " + "  ".join(f"{r[k]:>15.0f}" for k in keys)
              + f"   (hover texts {r['hover_text_ms']:.0f}, panels {', '.join(f'{p:.0f}' for p in r['panel_ms'])})")
    print("med  " + "  ".join(f"{statistics.median(r[k] for r in runs):>15.0f}" for k in keys))
    print("over the wire (KB, median): " + ", ".join(
        f"{k} {statistics.median(r[f'{k}_kb'] for r in runs):.0f}" for k in ("html", "assets", "data")))
    print(f"load: {os.getloadavg()[0]:.1f} (1-min load average on {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
