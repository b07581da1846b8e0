"""``hwnas bench``: strategies x devices x seeds on a benchmark table, next to Optuna and random."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from hwnas.cli.render import console, fail, progress_bar
from hwnas.cli.search import _load_benchmark
from latency_tables import LatencyTable, TableError, load_table
from nas.bench import BASELINES, QUANTILES, BenchResult, RunResult, run_bench
from nas.catalog import MemoryCatalog
from nas.strategies import STRATEGIES
from search_spaces import DEFAULT_SPACE, SPACES

DEFAULT_STRATEGIES = ["default", "evolution", "nsga2", "rl"]
LABELS = {"tpe": "Optuna TPE", "optuna-nsga2": "Optuna NSGA-II"}


def bench(
    benchmark: Annotated[str, typer.Option(help="Benchmark CSV path or registered name")],
    space: Annotated[str, typer.Option(help=f"Search space: {', '.join(SPACES)}")] = DEFAULT_SPACE,
    metric: Annotated[str, typer.Option(help="Benchmark column used as accuracy")] = "cifar10_acc",
    strategy: Annotated[list[str] | None, typer.Option(
        help=f"Strategy to bench (repeatable; default {', '.join(DEFAULT_STRATEGIES)}); "
             f"{', '.join(BASELINES)} always run too")] = None,
    device: Annotated[list[str] | None, typer.Option(
        help="Device with a shipped latency table (repeatable; default all of the space's)")] = None,
    latency_table: Annotated[list[Path] | None, typer.Option(help="Latency table file (repeatable)")] = None,
    seeds: Annotated[int, typer.Option(min=1, help="Seeds 0..N-1 per strategy and device")] = 5,
    budget: Annotated[int, typer.Option(min=1, help="Evaluations per run")] = 100,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write every run's numbers here")] = None,
    database_url: Annotated[str | None, typer.Option(help="Where registered benchmarks live")] = None,
) -> None:
    """Score strategies by hypervolume regret against a benchmark table's true Pareto front."""
    names = list(dict.fromkeys([*(strategy or DEFAULT_STRATEGIES), *BASELINES]))
    unknown = [n for n in names if n not in STRATEGIES]
    if unknown:
        fail(f"unknown strategy {', '.join(unknown)}", f"valid: {', '.join(sorted(STRATEGIES))}")
    catalog = MemoryCatalog()
    data_name = _load_benchmark(catalog, benchmark, space, database_url)
    data = catalog.benchmarks[data_name]
    if metric not in data.columns:
        fail(f"benchmark {data_name!r} has no column {metric!r}", f"valid: {', '.join(data.columns)}")
    tables = _tables(catalog, space, device, latency_table)
    total = len(tables) * len(names) * seeds
    with progress_bar() as bar:
        task = bar.add_task("benchmarking", total=total, status="")

        def on_run(run: RunResult) -> None:
            bar.update(task, advance=1, status=f"{run.device} {run.strategy} seed {run.seed}: "
                                               f"regret {100 * run.regret:.2f}%")

        result = run_bench(data, metric, tables, names, list(range(seeds)), budget, on_run)
    wide = Console(width=max(console.width, 150))  # one row per device must not wrap when piped
    wide.print(regret_table(result, names, budget, seeds))
    wide.print(quantile_table(result, names))
    if json_out:
        json_out.write_text(json.dumps({"budget": budget, "seeds": seeds, "metric": metric,
                                        "truths": {d: asdict(t) for d, t in result.truths.items()},
                                        "runs": [asdict(r) for r in result.runs]}, indent=1) + "\n")
        console.print(f"wrote {json_out}")


def _tables(catalog: MemoryCatalog, space: str, devices: list[str] | None,
            files: list[Path] | None) -> list[LatencyTable]:
    tables: list[LatencyTable] = []
    for path in files or []:
        try:
            tables.append(load_table(path))
        except (OSError, TableError) as exc:
            fail(f"latency table {path}: {exc}")
    if devices or not tables:
        for name in devices or catalog.device_names(space):
            table = catalog.latency_table(space, name)
            if table is None:
                fail(f"no latency table for device {name!r}", f"valid: {', '.join(catalog.device_names(space))}")
            tables.append(table)
    if not tables:
        fail(f"no latency tables for space {space!r}")
    return tables


def _label(name: str) -> str:
    return LABELS.get(name, name)


def regret_table(result: BenchResult, names: list[str], budget: int, seeds: int) -> Table:
    table = Table(title=f"hypervolume regret 1 - HV/HV* (%), mean of {seeds} seeds, {budget} evaluations")
    table.add_column("device")
    for name in names:
        table.add_column(_label(name), justify="right")
    for device in result.truths:
        values = [result.mean_regret(n, device) for n in names]
        best = min(values)
        table.add_row(device, *(f"[bold]{100 * v:.2f}[/]" if v == best else f"{100 * v:.2f}" for v in values))
    table.add_section()
    table.add_row("mean", *(f"{100 * result.mean_regret(n):.2f}" for n in names))
    table.add_row("engine ms/eval", *(f"{1000 * np.mean([r.seconds_per_eval for r in result.runs if r.strategy == n]):.1f}"
                                      for n in names))
    return table


def quantile_table(result: BenchResult, names: list[str]) -> Table:
    """Best accuracy found under the 25/50/75% latency quantiles, mean over devices and seeds."""
    labels = [f"≤ q{int(100 * q)} latency" for q in QUANTILES]
    table = Table(title="best accuracy under latency limits (mean over devices and seeds; space's best last)")
    table.add_column("strategy")
    for label in labels:
        table.add_column(label, justify="right")
    for name in names:
        runs = [r for r in result.runs if r.strategy == name]
        table.add_row(_label(name), *(f"{np.nanmean([r.best_under[i] for r in runs]):.2f}"
                                      for i in range(len(QUANTILES))))
    table.add_section()
    table.add_row("space's best", *(f"{np.mean([t.best_under[i] for t in result.truths.values()]):.2f}"
                                    for i in range(len(QUANTILES))))
    return table
