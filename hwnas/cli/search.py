"""``hwnas search``: one job run locally, no server, no database (unless a benchmark is named)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from hwnas.cli.render import console, fail, fail_definition, front_table, progress_bar
from latency_tables import TableError, load_table
from nas.catalog import MemoryCatalog, SpecError
from nas.engine import MemoryRecorder, Summary, TrialRecord, run_search
from nas.evaluators import BenchmarkError, read_benchmark_csv
from nas.fanout import ThreadedDispatch, threads_safe
from nas.resolve import build_search, pin_space
from nas.spec import JobSpec, metric_key
from search_spaces import DEFAULT_SPACE, SPACES, SpaceDefinitionError, resolve_space




def _spec_from_flags(space: str, strategy: str, budget: int, seed: int, devices: list[str],
                     evaluator: dict[str, Any], max_latency: float | None) -> dict[str, Any]:
    objectives: list[dict[str, Any]] = [{"metric": "accuracy", "goal": "maximize"}]
    objectives += [{"metric": "latency_ms", "device": d, "goal": "minimize"} for d in devices]
    constraints = [{"metric": "latency_ms", "device": d, "max": max_latency} for d in devices] \
        if max_latency is not None else []
    return {"name": "hwnas search", "space": space, "strategy": {"name": strategy},
            "budget": {"evaluations": budget}, "seed": seed, "objectives": objectives,
            "constraints": constraints, "evaluator": evaluator}


def _check_torch_device(name: str) -> None:
    if name.split(":")[0] not in ("cpu", "cuda"):
        fail(f"--torch-device {name!r} is not a torch device", "use cpu or cuda (cuda:N)")
    if name.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            fail(f"--torch-device {name}: CUDA is not available on this machine", "use --torch-device cpu")


def _load_benchmark(catalog: MemoryCatalog, ref: str, space: str, database_url: str | None) -> str:
    """Register a benchmark given as a CSV path, or fetch a registered one by name; returns its name."""
    path = Path(ref)
    if path.suffix == ".csv" or path.exists():
        found = catalog.space(space)
        if found is None:
            fail(f"unknown search space {space!r}", f"valid: {', '.join(catalog.space_names())}")
        try:
            data = read_benchmark_csv(path, found)
        except BenchmarkError as exc:
            fail(str(exc), "pass a CSV with an 'arch' column, or the name of a registered benchmark")
        catalog.benchmarks[data.name] = data
        return data.name
    from hwnas_settings import Settings
    from nas.service import DbCatalog
    from storage.db import make_engine, make_session_factory

    settings = Settings(database_url=database_url) if database_url else Settings()
    data = DbCatalog(make_session_factory(make_engine(settings.database_url))).benchmark(ref)
    if data is None:
        fail(f"no benchmark {ref!r} in {settings.database_url}",
             "register it with `hwnas benchmarks import FILE.csv --name NAME --space SPACE` or pass the CSV path")
    catalog.benchmarks[ref] = data
    return ref


def _space_option(catalog: MemoryCatalog, value: str | None) -> str | None:
    """``--space``: a shipped name, or a definition file whose space joins the catalog. Its name, or None."""
    if value is None:
        return None
    try:
        found = resolve_space(value)
    except SpaceDefinitionError as exc:
        fail_definition(exc)
    except KeyError as exc:
        fail(str(exc.args[0]), "name a shipped space (`hwnas spaces list`) or a definition file (FILE.json)")
    if SPACES.get(found.name) is not found:
        catalog.add_space(found)
    return found.name


def search(
    spec_file: Annotated[Path | None, typer.Option("--spec", help="Job spec JSON (as POST /v1/jobs takes)")] = None,
    space: Annotated[str | None, typer.Option(
        help=f"Search space: {', '.join(sorted(SPACES))} or a definition file (hwnas.space/1 JSON); "
             f"default {DEFAULT_SPACE}, with --spec the spec's")] = None,
    strategy: Annotated[str, typer.Option(help="Search strategy (see `hwnas strategies`)")] = "default",
    budget: Annotated[int, typer.Option(help="Evaluations to spend")] = 100,
    seed: Annotated[int, typer.Option(help="Random seed")] = 0,
    device: Annotated[list[str] | None, typer.Option(help="Device with a shipped latency table (repeatable)")] = None,
    latency_table: Annotated[list[Path] | None, typer.Option(help="Latency table file (repeatable)")] = None,
    benchmark: Annotated[str | None, typer.Option(help="Benchmark CSV path or registered name")] = None,
    metric: Annotated[str, typer.Option(help="Benchmark column used as accuracy")] = "cifar10_acc",
    evaluator_cmd: Annotated[str | None, typer.Option(help="Command run per candidate; {arch} is replaced")] = None,
    evaluator_timeout: Annotated[float, typer.Option(help="Seconds before a command evaluation fails")] = 600.0,
    train: Annotated[str | None, typer.Option(help="Short real training on 'digits' or an .npz file")] = None,
    train_resolution: Annotated[int | None, typer.Option(
        help="With --train: resize the images to this many pixels square (the space's own resolution, or "
             "smaller to train cheaply)")] = None,
    max_latency: Annotated[float | None, typer.Option(help="Latency limit (ms) on every device")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write evaluated trials and the front here")] = None,
    database_url: Annotated[str | None, typer.Option(help="Where registered benchmarks live")] = None,
    torch_device: Annotated[str | None, typer.Option(
        help="Where differentiable strategies (darts, fbnet) train their supernet: cpu or cuda")] = None,
) -> None:
    """Run one search here and print its Pareto front."""
    catalog = MemoryCatalog()
    space_name = _space_option(catalog, space)
    space = space_name or DEFAULT_SPACE
    table_devices: list[str] = []
    for path in latency_table or []:
        try:
            table = load_table(path)
        except (OSError, TableError) as exc:
            fail(f"latency table {path}: {exc}")
        catalog.add_table(table)
        table_devices.append(table.device_name)
    if spec_file is not None:
        try:
            raw = json.loads(spec_file.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            fail(f"cannot read spec {spec_file}: {exc}")
        if not isinstance(raw, dict):
            fail(f"spec {spec_file} is not a JSON object")
        if space_name is not None:  # --space overrides the spec's (a definition file names its own space)
            raw = {**{k: v for k, v in raw.items() if k != "space_hash"}, "space": space_name}
        if benchmark and isinstance(raw.get("evaluator"), dict) and raw["evaluator"].get("type") == "benchmark":
            data_name = _load_benchmark(catalog, benchmark, raw.get("space", space), database_url)
            catalog.benchmarks[raw["evaluator"].get("table", data_name)] = catalog.benchmarks[data_name]
    else:
        devices = [*(device or []), *table_devices]
        if not devices:
            fail("no device to search for", "add --device NAME (a shipped table) or --latency-table FILE")
        if sum(x is not None for x in (evaluator_cmd, benchmark, train)) != 1:
            fail("say how candidates are scored", "give exactly one of --benchmark, --evaluator-cmd, --train")
        if evaluator_cmd:
            evaluator: dict[str, Any] = {"type": "command", "command": evaluator_cmd,
                                         "timeout_s": evaluator_timeout}
        elif train:
            evaluator = {"type": "train", "dataset": train}
            if train_resolution is not None:
                evaluator["resolution"] = train_resolution
        else:
            assert benchmark is not None
            evaluator = {"type": "benchmark", "table": _load_benchmark(catalog, benchmark, space, database_url),
                         "metric": metric}
        raw = _spec_from_flags(space, strategy, budget, seed, devices, evaluator, max_latency)
    if torch_device is not None:
        _check_torch_device(torch_device)
        if isinstance(raw.get("strategy"), dict):
            raw["strategy"] = {**raw["strategy"],
                               "params": {**raw["strategy"].get("params", {}), "torch_device": torch_device}}
    try:
        spec = pin_space(JobSpec.model_validate(raw), catalog)
        run = build_search(spec, catalog, cwd=str(Path.cwd()))
    except ValidationError as exc:
        fail("invalid job spec:\n" + "\n".join(
            f"  {'.'.join(map(str, e['loc']))}: {e['msg'].removeprefix('Value error, ')}" for e in exc.errors()))
    except SpecError as exc:
        fail(f"{exc.field}: {exc.message}")

    recorder = MemoryRecorder()
    started = time.perf_counter()
    summary = Summary()
    interrupted = False
    with progress_bar() as bar:
        task = bar.add_task("searching", total=spec.budget.evaluations, status="")

        def on_progress(s: Summary) -> None:
            best = s.best["metrics"].get(spec.objectives[0].key) if s.best else None
            status = f"failed {s.failed}  front {len(s.front)}  best {best if best is None else round(best, 3)}"
            if s.phase and "epoch" in s.phase:
                p = s.phase
                status += (f"  | weight {p['latency_weight']:g} ({p['sweep_point']}/{p['sweep_points']}) "
                           f"epoch {p['epoch']}/{p['epochs']}  derived {p['derived_latency_ms']:.2f} ms")
            bar.update(task, completed=s.evaluated, status=status)

        try:
            threads = spec.parallelism > 1 and threads_safe(spec)
            summary = run_search(run, recorder, on_progress, dispatcher=ThreadedDispatch(
                run.evaluator, spec.parallelism, lambda: False) if threads else None)
        except KeyboardInterrupt:
            interrupted = True
    wall = time.perf_counter() - started
    by_seq = {t.seq: t for t in recorder.trials}
    front = [by_seq[s] for s in summary.front if s in by_seq]
    keys = [o.key for o in spec.objectives]
    devices_in_front = [o.device for o in spec.objectives if o.device]
    console.print(front_table([{"arch": t.arch, "metrics": t.metrics} for t in front], keys,
                              f"Pareto front: {len(front)} of {len(recorder.trials)} evaluated"))
    console.print(f"hypervolume {summary.hypervolume:.4g} (reference {run.reference}); "
                  f"{len(recorder.trials)} evaluations in {wall:.1f}s "
                  f"({len(recorder.trials) / max(wall, 1e-9):.1f}/s)")
    if json_out:
        def flat(t: TrialRecord) -> dict[str, Any]:
            row: dict[str, Any] = {"arch": t.arch, **t.metrics}
            if len(devices_in_front) == 1:
                row["latency_ms"] = t.metrics.get(metric_key("latency_ms", devices_in_front[0]))
            return row

        payload = {
            "job": {"spec": spec.model_dump(mode="json"), "status": "interrupted" if interrupted else "succeeded",
                    "evaluated": summary.evaluated, "failed": summary.failed, "hypervolume": summary.hypervolume,
                    "reference_point": run.reference, "stop_reason": summary.stop_reason, "wall_s": wall},
            "evaluated": [{**flat(t), "status": t.status, **({"error": t.error} if t.error else {})}
                          for t in recorder.trials],
            "pareto": [flat(t) for t in front],
        }
        json_out.write_text(json.dumps(payload, indent=1) + "\n")
        console.print(f"wrote {json_out}")
    if interrupted:
        raise typer.Exit(130)
