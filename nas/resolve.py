"""Turn a JobSpec into the parts the engine runs: space, estimators, strategy, evaluator."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from latency_tables import LatencyEstimator, TableError
from nas.catalog import Catalog, SpecError
from nas.evaluators import (BenchmarkEvaluator, CommandEvaluator, DatasetError, Evaluator, ProxyEvaluator,
                            TrainEvaluator, load_dataset)
from nas.pareto import Objective
from nas.problem import Problem
from nas.spec import (BenchmarkEvaluatorSpec, CommandEvaluatorSpec, ConstraintSpec, JobSpec, ProxyEvaluatorSpec,
                      TrainEvaluatorSpec, metric_key)
from nas.strategies import STRATEGIES, Strategy
from search_spaces import SearchSpace, get_space


@dataclass
class Search:
    spec: JobSpec
    space: SearchSpace
    estimators: dict[str, LatencyEstimator]
    objectives: list[Objective]
    problem: Problem
    strategy: Strategy
    evaluator: Evaluator
    reference: dict[str, float]

    def satisfies_constraints(self, metrics: dict[str, float]) -> bool:
        return all(c.key in metrics and c.satisfied(metrics[c.key]) for c in self.spec.constraints)


def check_spec(spec: JobSpec, catalog: Catalog) -> None:
    """Check what the spec names against the catalog; raises SpecError naming the field."""
    for i, ref in enumerate([*spec.objectives, *spec.constraints]):
        where = f"objectives[{i}]" if i < len(spec.objectives) else f"constraints[{i - len(spec.objectives)}]"
        if ref.device and catalog.latency_table(spec.space, ref.device) is None:
            raise SpecError(f"{where}.device", f"no latency table for device {ref.device!r} in space "
                            f"{spec.space!r}", catalog.device_names(spec.space))
    ev = spec.evaluator
    if isinstance(ev, BenchmarkEvaluatorSpec):
        info = catalog.benchmark_info(ev.table)
        if info is None:
            raise SpecError("evaluator.table", f"unknown benchmark table {ev.table!r}", catalog.benchmark_names())
        if info.space != spec.space:
            raise SpecError("evaluator.table", f"benchmark {ev.table!r} is for space {info.space!r}, "
                            f"not {spec.space!r}")
        if ev.metric not in info.columns:
            raise SpecError("evaluator.metric", f"benchmark {ev.table!r} has no column {ev.metric!r}",
                            info.columns)
    if isinstance(ev, (TrainEvaluatorSpec, ProxyEvaluatorSpec)) and ev.dataset != "digits" \
            and not ev.dataset.endswith(".npz"):
        raise SpecError("evaluator.dataset", "dataset must be 'digits' or a path to an .npz file")
    try:
        STRATEGIES[spec.strategy.name](Problem(get_space(spec.space), []), spec.seed, **spec.strategy.params)
    except (TypeError, ValueError) as exc:
        raise SpecError("strategy.params", str(exc)) from None


def build_estimators(spec: JobSpec, catalog: Catalog) -> dict[str, LatencyEstimator]:
    space = get_space(spec.space)
    estimators: dict[str, LatencyEstimator] = {}
    for device in spec.devices():
        table = catalog.latency_table(spec.space, device)
        if table is None:
            raise SpecError("objectives", f"no latency table for device {device!r}",
                            catalog.device_names(spec.space))
        try:
            estimators[device] = LatencyEstimator(table, space)
        except (TableError, ValueError) as exc:
            raise SpecError("objectives", f"latency table of {device!r}: {exc}") from None
    return estimators


def build_search(spec: JobSpec, catalog: Catalog, *, cwd: str | None = None) -> Search:
    check_spec(spec, catalog)
    space = get_space(spec.space)
    estimators = build_estimators(spec, catalog)
    objectives = [Objective(o.key, o.goal == "maximize") for o in spec.objectives]
    free_constraints: list[ConstraintSpec] = [c for c in spec.constraints if c.device]

    def free_metrics(archs: Sequence[str]) -> dict[str, np.ndarray]:
        return {metric_key("latency_ms", dev): est.predict(archs) for dev, est in estimators.items()}

    def feasible(archs: Sequence[str]) -> np.ndarray:
        mask = np.ones(len(archs), dtype=bool)
        if free_constraints:
            values = free_metrics(archs)
            for c in free_constraints:
                v = values[c.key]
                if c.max is not None:
                    mask &= v <= c.max
                if c.min is not None:
                    mask &= v >= c.min
        return mask

    problem = Problem(space, objectives, free_metrics, feasible)
    strategy = STRATEGIES[spec.strategy.name](problem, spec.seed, **spec.strategy.params)
    return Search(spec, space, estimators, objectives, problem, strategy,
                  _build_evaluator(spec, space, catalog, cwd), reference_point(spec, estimators))


def _build_evaluator(spec: JobSpec, space: SearchSpace, catalog: Catalog, cwd: str | None) -> Evaluator:
    ev = spec.evaluator
    if isinstance(ev, BenchmarkEvaluatorSpec):
        data = catalog.benchmark(ev.table)
        assert data is not None
        return BenchmarkEvaluator(data, ev.metric, space)
    if isinstance(ev, CommandEvaluatorSpec):
        return CommandEvaluator(ev.command, ev.timeout_s, ev.retries, cwd=cwd)
    try:
        dataset = load_dataset(ev.dataset, seed=spec.seed)
    except DatasetError as exc:
        raise SpecError("evaluator.dataset", str(exc)) from None
    if isinstance(ev, ProxyEvaluatorSpec):
        return ProxyEvaluator(space, dataset, proxy=ev.proxy, seed=spec.seed, batch_size=ev.batch_size,
                              width=ev.width, cells_per_stage=ev.cells_per_stage)
    return TrainEvaluator(space, dataset, seed=spec.seed, epochs=ev.epochs, width=ev.width,
                          cells_per_stage=ev.cells_per_stage, batch_size=ev.batch_size,
                          learning_rate=ev.learning_rate)


def reference_point(spec: JobSpec, estimators: dict[str, LatencyEstimator]) -> dict[str, float]:
    """Spec's values, else 0 for maximised metrics and 1.01 x the space's slowest for latency."""
    ref: dict[str, float] = {}
    for o in spec.objectives:
        if spec.reference_point and o.key in spec.reference_point:
            ref[o.key] = float(spec.reference_point[o.key])
        elif o.device in estimators:
            ref[o.key] = float(1.01 * estimators[o.device].bounds()[1])
        elif o.goal == "maximize":
            ref[o.key] = 0.0
        else:
            raise SpecError("reference_point", f"give a reference value for objective {o.key!r}")
    return ref
