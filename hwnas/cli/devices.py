"""``hwnas agent`` (measure on this device) and ``hwnas devices`` (onboard a device, show its agent)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from hwnas.cli.remote import DEFAULT_URL, ApiKey, Url, connect
from hwnas.cli.render import console, fail, progress_bar

app = typer.Typer(help="Devices with measurement agents: onboard one, show its agent.", no_args_is_help=True)


def agent(device: Annotated[str, typer.Option("--device", help="Name of the device this agent measures on")],
          space: Annotated[str, typer.Option("--space", help="Search space of the models it is sent")],
          runtime: Annotated[str, typer.Option("--runtime", help="onnxruntime, torch or command")] = "onnxruntime",
          threads: Annotated[int, typer.Option("--threads", help="Threads the runtime may use (pinned)")] = 1,
          command: Annotated[str | None, typer.Option("--command", help="--runtime command: the benchmark tool, "
                                                      "{model} = the exported ONNX file, {arch} = the architecture")] = None,
          rounds: Annotated[int, typer.Option("--rounds", help="Interleaved timing rounds (in-process runtimes)")] = 10,
          batch: Annotated[int, typer.Option("--batch", help="Models claimed and measured together")] = 8,
          timeout_s: Annotated[float | None, typer.Option("--timeout-s", help="Longest one model's measurement "
                                                          "(command runtime; default HWNAS_MEASURE_TIMEOUT_S)")] = None,
          cache_dir: Annotated[Path | None, typer.Option("--cache-dir", help="Where exported models are kept")] = None) -> None:
    """Run a measurement agent: a Celery worker on the device's own queue that measures the models it is sent.

    Needs HWNAS_BROKER_URL and HWNAS_DATABASE_URL (the same as the workers').
    """
    import logging
    import tempfile

    from hwnas_settings import get_settings
    from nas.devices.agent import Agent, device_queue
    from nas.devices.runtimes import RuntimeConfigError, make_runtime
    from search_spaces import get_space
    from storage.db import make_engine, make_session_factory

    settings = get_settings()
    if settings.embedded:
        fail("HWNAS_BROKER_URL is not set", "an agent is a Celery worker: export HWNAS_BROKER_URL=redis://HOST:6379/0 "
             "and HWNAS_DATABASE_URL=postgresql://… as for `hwnas worker`")
    try:
        get_space(space)
    except KeyError as exc:
        fail(str(exc.args[0]))
    if rounds < 1 or batch < 1:
        fail("--rounds and --batch must be >= 1")
    try:
        rt = make_runtime(runtime, threads=threads, command=command, rounds=rounds,
                          timeout_s=timeout_s or settings.measure_timeout_s)
    except RuntimeConfigError as exc:
        fail(str(exc))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    factory = make_session_factory(make_engine(settings.database_url))
    queue = device_queue(settings.queue, device)
    cache = cache_dir or Path(tempfile.gettempdir()) / f"hwnas-agent-{device}"
    worker = Agent(factory, device=device, space=space, runtime=rt, queue=queue, cache_dir=cache,
                   heartbeat_s=settings.agent_heartbeat_s, offline_after_s=settings.agent_offline_after_s, batch=batch)
    console.print(f"agent for device {device!r} ({space}, {rt.name}, {threads} thread(s)) on queue {queue}")
    from workers.agent import run

    run(worker)


def _band(validation: dict[str, Any]) -> str:
    q = validation.get("residual_ratio_quantiles") or {}
    if not q:
        return "no error bar (no held-out measurements)"
    return (f"measured / predicted: 68 % within x{q['0.16']:.3f}..x{q['0.84']:.3f}, "
            f"90 % within x{q['0.05']:.3f}..x{q['0.95']:.3f}, 95 % within x{q['0.025']:.3f}..x{q['0.975']:.3f}")


def print_validation(validation: dict[str, Any], title: str) -> None:
    table = Table(title=title)
    for key in ("n", "kendall_tau", "spearman", "within_10pct", "within_5pct", "mape"):
        table.add_column(key, justify="right")
    table.add_row(*(_fmt(k, validation.get(k)) for k in ("n", "kendall_tau", "spearman", "within_10pct",
                                                         "within_5pct", "mape")))
    console.print(table)
    console.print(f"error bar per prediction: {_band(validation)}")


def _fmt(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if key in ("within_5pct", "within_10pct", "mape"):
        return f"{value:.1%}"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


@app.command()
def onboard(device: Annotated[str, typer.Option("--device", help="Device name (its agent must be running)")],
            space: Annotated[str, typer.Option("--space", help="Search space")],
            samples: Annotated[int, typer.Option("--samples", help="Reference architectures to fit from")] = 20,
            validate: Annotated[int, typer.Option("--validate", help="Held-out architectures to validate on")] = 30,
            seed: Annotated[int, typer.Option("--seed", help="Seed of the choice")] = 0,
            timeout: Annotated[float | None, typer.Option("--timeout", help="Give up waiting after this many s")] = None,
            url: Url = DEFAULT_URL, api_key: ApiKey = None) -> None:
    """Measure reference and validation architectures on the device's agent, fit its table, register it."""
    from hwnas_client import WaitTimeout

    with connect(url, api_key) as client:
        op = client.onboard(device, space, samples=samples, validate=validate, seed=seed)
        console.print(f"onboarding {device!r} ({space}): {samples} references + {validate} held out, operation {op['id']}")
        with progress_bar() as bar:
            task = bar.add_task("onboarding", total=samples + validate, status="")

            def update(o: dict[str, Any]) -> None:
                p = o.get("progress") or {}
                bar.update(task, completed=p.get("measured", 0), total=p.get("total", samples + validate),
                           description=p.get("phase", o["status"]), status=(p.get("message") or "")[:90])

            try:
                op = client.wait_operation(device, op["id"], timeout=timeout, on_update=update)
            except WaitTimeout as exc:
                fail(str(exc), f"it goes on in the background: GET /v1/devices/{device}/operations/{op['id']}")
    if op["status"] != "succeeded":
        fail(f"onboarding failed: {op.get('error')}")
    result = op["result"]
    console.print(f"registered table {device!r} ({space}) revision {result['revision']}, fitted from "
                  f"{result['references']} references ({result.get('model')})")
    for failed in result.get("failed", [])[:5]:
        console.print(f"  not measured: {failed['arch'][:70]}: {failed['error']}")
    print_validation(result.get("validation") or {}, f"held out: {result['validation'].get('n', 0)} networks")


@app.command()
def show(device: Annotated[str, typer.Argument(help="Device name")], url: Url = DEFAULT_URL,
         api_key: ApiKey = None) -> None:
    """The device's agent (online, last answered, environment) and its tables."""
    with connect(url, api_key) as client:
        rows = client.device(device)
    agent_info = rows[0].get("agent")
    if agent_info:
        env = agent_info.get("environment") or {}
        console.print(f"agent: {'online' if agent_info['online'] else 'offline'}, last answered "
                      f"{agent_info['last_seen']}, {agent_info['runtime']} on {env.get('host')} "
                      f"({env.get('cpu_model')}, {env.get('threads')} thread(s)), queue {agent_info['queue']}")
    else:
        console.print("agent: never seen")
    for row in rows:
        if row["entries"]:
            v = row.get("validation") or {}
            console.print(f"table {row['space']}: {row['entries']} entries, revision "
                          f"{row['provenance'].get('revision', 0)}, tau {v.get('kendall_tau', '-')}, "
                          f"within 10 % {v.get('within_10pct', '-')}")
