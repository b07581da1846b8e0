"""``hwnas bench``: strategies x devices x seeds on a benchmark table, scored against the true front.

Every run goes through the engine (``run_search``), exactly as a job would. The
true front is the benchmark's accuracy against each device's table latency over
every architecture in the table; hypervolume uses the reference point
(minimum accuracy, 1.01 x maximum latency) of the space.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from latency_tables import LatencyEstimator, LatencyTable
from nas.catalog import MemoryCatalog
from nas.engine import MemoryRecorder, run_search
from nas.evaluators import BenchmarkData
from nas.pareto import hypervolume
from nas.resolve import build_search
from nas.spec import JobSpec, metric_key
from search_spaces import DEFAULT_SPACE, get_space

QUANTILES = (0.25, 0.5, 0.75)
#: the space the benchmark harness runs on unless told (the one with a shared accuracy benchmark)
#: The baselines every bench runs next to the strategies asked for.
BASELINES = ("tpe", "optuna-nsga2", "random")


@dataclass
class DeviceTruth:
    """What a device's runs are scored against."""

    device: str
    reference: dict[str, float]
    hv_star: float
    limits: list[float]  # latency at QUANTILES of the space
    best_under: list[float]  # best accuracy in the space under each limit


@dataclass
class RunResult:
    strategy: str
    device: str
    seed: int
    regret: float
    best_under: list[float]  # best accuracy found under each limit (nan: none found)
    seconds_per_eval: float
    evaluated: int


@dataclass
class BenchResult:
    truths: dict[str, DeviceTruth]
    runs: list[RunResult] = field(default_factory=list)

    def mean_regret(self, strategy: str, device: str | None = None) -> float:
        vals = [r.regret for r in self.runs if r.strategy == strategy and (device is None or r.device == device)]
        return float(np.mean(vals)) if vals else float("nan")


def device_truth(data: BenchmarkData, metric: str, table: LatencyTable) -> DeviceTruth:
    space = get_space(data.space)
    archs = [a for a, row in data.rows.items() if metric in row]
    acc = np.array([data.rows[a][metric] for a in archs])
    lat = LatencyEstimator(table, space).predict(archs)
    key = metric_key("latency_ms", table.device_name)
    reference = {"accuracy": float(acc.min()), key: float(1.01 * lat.max())}
    hv_star = hypervolume(np.stack([acc, -lat], axis=1), np.array([reference["accuracy"], -reference[key]]))
    limits = [float(np.quantile(lat, q)) for q in QUANTILES]
    return DeviceTruth(table.device_name, reference, hv_star, limits,
                       [float(acc[lat <= lim].max()) for lim in limits])


def bench_spec(strategy: str, device: str, seed: int, budget: int, table_name: str, metric: str,
               reference: dict[str, float], space: str = DEFAULT_SPACE) -> JobSpec:
    return JobSpec.model_validate({
        "name": f"bench {strategy} {device} {seed}", "space": space, "strategy": {"name": strategy},
        "budget": {"evaluations": budget}, "seed": seed,
        "objectives": [{"metric": "accuracy", "goal": "maximize"},
                       {"metric": "latency_ms", "device": device, "goal": "minimize"}],
        "evaluator": {"type": "benchmark", "table": table_name, "metric": metric},
        "reference_point": reference,
    })


def run_one(catalog: MemoryCatalog, truth: DeviceTruth, strategy: str, seed: int, budget: int,
            table_name: str, metric: str, space: str = DEFAULT_SPACE) -> RunResult:
    spec = bench_spec(strategy, truth.device, seed, budget, table_name, metric, truth.reference, space)
    started = time.perf_counter()
    search = build_search(spec, catalog)
    recorder = MemoryRecorder()
    summary = run_search(search, recorder)
    elapsed = time.perf_counter() - started
    trials = [t for t in recorder.trials if t.status == "completed"]
    key = metric_key("latency_ms", truth.device)
    best = []
    for lim in truth.limits:
        under = [t.metrics["accuracy"] for t in trials if t.metrics[key] <= lim]
        best.append(max(under) if under else float("nan"))
    return RunResult(strategy, truth.device, seed, 1.0 - summary.hypervolume / truth.hv_star, best,
                     elapsed / max(summary.evaluated, 1), summary.evaluated)


def run_bench(data: BenchmarkData, metric: str, tables: Sequence[LatencyTable], strategies: Sequence[str],
              seeds: Sequence[int], budget: int,
              on_run: Callable[[RunResult], None] | None = None) -> BenchResult:
    catalog = MemoryCatalog(tables=list(tables), benchmarks={data.name: data})
    result = BenchResult({t.device_name: device_truth(data, metric, t) for t in tables})
    for table in tables:
        truth = result.truths[table.device_name]
        for strategy in strategies:
            for seed in seeds:
                run = run_one(catalog, truth, strategy, seed, budget, data.name, metric, data.space)
                result.runs.append(run)
                if on_run:
                    on_run(run)
    return result
