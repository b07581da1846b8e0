"""Turn a JobSpec into the parts the engine runs: space, estimators, strategy, evaluator."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import ValidationError

from latency_tables import LatencyEstimator, estimator_for, TableError
from latency_tables.band import quantiles_of, ratio_at
from nas.catalog import Catalog, MemoryCatalog, SpecError
from nas.evaluators import Evaluator
from nas.evaluators.command import CommandPolicy
from nas.evaluators.kinds import evaluator_kind
from nas.footprint import (StaticMetrics, check_reachable, energy_estimators, limit_constraints,
                           static_names)
from nas.pareto import Objective
from search_spaces.metrics import STATIC_METRICS
from nas.problem import Problem
from nas.spec import ConstraintSpec, JobSpec, _MetricRef, band_key, metric_key
from nas.strategies import STRATEGIES, Strategy
from search_spaces import SearchSpace


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
    #: The spec's constraints with the target device's budgets spelled out.
    constraints: list[ConstraintSpec] | None = None
    energy: dict[str, LatencyEstimator] = field(default_factory=dict)

    def satisfies_constraints(self, metrics: dict[str, float]) -> bool:
        constraints = self.spec.explicit_constraints if self.constraints is None else self.constraints
        return all(c.check_key in metrics and c.satisfied(metrics[c.check_key]) for c in constraints)


def job_space(spec: JobSpec, catalog: Catalog) -> SearchSpace:
    """The space the job runs on: the definition pinned by ``space_hash`` when given, else the
    one ``space`` names now (see ``pin_space``). SpecError naming the field otherwise."""
    space = catalog.space(spec.space, spec.space_hash)
    if space is not None:
        return space
    if spec.space_hash is not None and catalog.space(spec.space) is not None:
        raise SpecError("space_hash", f"search space {spec.space!r} has no definition with content hash "
                        f"{spec.space_hash}")
    raise SpecError("space", f"unknown search space {spec.space!r}", catalog.space_names())


def pin_space(spec: JobSpec, catalog: Catalog) -> JobSpec:
    """The spec with ``space_hash`` set to its space's content hash (what a stored job keeps)."""
    return spec.model_copy(update={"space_hash": job_space(spec, catalog).content_hash})


def check_spec(spec: JobSpec, catalog: Catalog) -> None:
    """Check what the spec names against the catalog; raises SpecError naming the field."""
    measures = callable(getattr(catalog, "measurer", None))
    space = job_space(spec, catalog)
    for where, ref in _located_refs(spec):
        if ref.source == "measured":
            if not measures:
                raise SpecError(f"{where}.source", "measured metrics need the service in Celery mode and an agent "
                                f"of device {ref.device!r} (`hwnas agent --device {ref.device} --space {spec.space}`)")
            continue
        if isinstance(ref, ConstraintSpec) and ref.confidence is not None:
            table = catalog.latency_table(spec.space, ref.device or "")
            if table is not None and quantiles_of(table) is None:
                raise SpecError(f"{where}.confidence", f"the table of {ref.device!r} has no error band "
                                "(validation.residual_ratio_quantiles); onboard the device with "
                                "`hwnas devices onboard` or fit it with held-out rows",
                                [d for d in catalog.device_names(spec.space)
                                 if (t := catalog.latency_table(spec.space, d)) and quantiles_of(t)])
        if ref.metric == "latency_ms" and ref.device and catalog.latency_table(spec.space, ref.device) is None:
            raise SpecError(f"{where}.device", f"no latency table for device {ref.device!r} in space "
                            f"{spec.space!r}", catalog.device_names(spec.space))
        if ref.metric == "energy_mj" and ref.device:
            table = catalog.latency_table(spec.space, ref.device)
            if table is None or not table.has_metric("energy_mj"):
                raise SpecError(f"{where}.device", f"no energy table for device {ref.device!r} in space "
                                f"{spec.space!r}", [d for d in catalog.device_names(spec.space)
                                                    if (t := catalog.latency_table(spec.space, d))
                                                    and t.has_metric("energy_mj")])
    if spec.verify is not None and not measures:
        raise SpecError("verify.device", "verifying the front needs the service in Celery mode and an agent of "
                        f"device {spec.verify.device!r}")
    located = resolved_constraints(spec, catalog)
    check_reachable(located, StaticMetrics(space, [c.metric for _, c in located if c.metric in STATIC_METRICS]))
    evaluator_kind(spec).check(spec, catalog)
    params = strategy_params(spec)
    try:
        STRATEGIES[spec.strategy.name](Problem(space, [], spec=spec), spec.seed, **params)
    except SpecError:
        raise
    except (TypeError, ValueError) as exc:
        raise SpecError("strategy.params", str(exc)) from None


def strategy_params(spec: JobSpec) -> dict[str, Any]:
    """The spec's strategy params checked against the strategy's declared ``Params`` (ranges, names).

    Returns only the params given (the constructor's defaults apply to the rest); raises a
    SpecError naming ``strategy.params.X``.
    """
    model = STRATEGIES[spec.strategy.name].Params
    try:
        return model.model_validate(spec.strategy.params).model_dump(exclude_unset=True)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            names = sorted(model.model_fields)
            message = f"strategy {spec.strategy.name!r} takes no param {where!r}" + ("" if names else " (it takes none)")
            raise SpecError(f"strategy.params.{where}", message, names) from None
        raise SpecError(f"strategy.params.{where}" if where else "strategy.params", message) from None


def _located_refs(spec: JobSpec) -> list[tuple[str, _MetricRef]]:
    """Every objective and explicit constraint with its JSON path in the spec."""
    out: list[tuple[str, _MetricRef]] = [(f"objectives[{i}]", o) for i, o in enumerate(spec.objectives)]
    return out + [(f"constraints[{i}]", c) for i, c in enumerate(spec.constraints)]


def resolved_constraints(spec: JobSpec, catalog: Catalog) -> list[tuple[str, ConstraintSpec]]:
    """The explicit constraints and the target device's budgets, each with its spec field."""
    located = [(w, c) for w, c in _located_refs(spec) if isinstance(c, ConstraintSpec)]
    return located + [("device", c) for c in limit_constraints(spec, catalog)]


def build_estimators(spec: JobSpec, catalog: Catalog) -> dict[str, LatencyEstimator]:
    space = job_space(spec, catalog)
    estimators: dict[str, LatencyEstimator] = {}
    for device in spec.devices():
        table = catalog.latency_table(spec.space, device)
        if table is None:
            raise SpecError("objectives", f"no latency table for device {device!r}",
                            catalog.device_names(spec.space))
        try:
            estimators[device] = estimator_for(table, space)
        except (TableError, ValueError) as exc:
            raise SpecError("objectives", f"latency table of {device!r}: {exc}") from None
    return estimators


def build_search(spec: JobSpec, catalog: Catalog, *, cwd: str | None = None,
                 command_policy: CommandPolicy | None = None) -> Search:
    """Everything the engine runs. ``command_policy`` is how a command evaluator runs: by
    default ``CommandPolicy.local()`` (the caller's own machine, as ``hwnas search``); the
    service (nas/service.py) always passes its sandbox, and only for tenants allowed to."""
    check_spec(spec, catalog)
    space = job_space(spec, catalog)
    estimators = build_estimators(spec, catalog)
    energy = energy_estimators(spec, catalog, space)
    located = resolved_constraints(spec, catalog)
    constraints = [c for _, c in located]
    for c in constraints:
        if c.metric == "latency_ms" and c.source == "table" and c.device not in estimators:
            table = catalog.latency_table(spec.space, c.device)
            assert table is not None  # limit_constraints checked it
            try:
                estimators[c.device] = estimator_for(table, space)
            except (TableError, ValueError) as exc:
                raise SpecError("device", f"latency table of {c.device!r}: {exc}") from None
    static = StaticMetrics(space, static_names(spec, constraints))
    check_reachable(located, static)
    objectives = [Objective(o.key, o.goal == "maximize") for o in spec.objectives]
    free_constraints = [c for c in constraints if c.metric != "accuracy"]

    bands = _bands(constraints, catalog, spec.space)

    def free_metrics(archs: Sequence[str]) -> dict[str, np.ndarray]:
        values = {metric_key("latency_ms", dev): est.predict(archs) for dev, est in estimators.items()}
        values.update({metric_key("energy_mj", dev): est.predict(archs) for dev, est in energy.items()})
        values.update(static.predict(archs))
        for key, base, ratio in bands:  # error-band bounds of confidence limits
            values[key] = values[base] * ratio
        return values

    def feasible(archs: Sequence[str]) -> np.ndarray:
        if spec.keep_degenerate:
            mask = np.ones(len(archs), dtype=bool)
        else:  # a cell computing nothing from its input (space.is_degenerate) is never proposed
            mask = np.array([not space.is_degenerate(a) for a in archs], dtype=bool)
        if free_constraints:
            values = free_metrics(archs)
            for c in free_constraints:
                if c.check_key not in values:
                    continue  # an evaluator's or an agent's metric
                v = values[c.check_key]
                if c.max is not None:
                    mask &= v <= c.max
                if c.min is not None:
                    mask &= v >= c.min
        return mask

    problem = Problem(space, objectives, free_metrics, feasible, spec=spec, estimators=estimators)
    strategy = STRATEGIES[spec.strategy.name](problem, spec.seed, **strategy_params(spec))
    return Search(spec, space, estimators, objectives, problem, strategy,
                  _build_evaluator(spec, space, catalog, cwd, command_policy), reference_point(spec, estimators, energy, static, catalog),
                  constraints, energy)


def _bands(constraints: Sequence[ConstraintSpec], catalog: Catalog, space: str) -> list[tuple[str, str, float]]:
    """(band key, predicted key, ratio) for both bounds of every confidence limit's band."""
    out: list[tuple[str, str, float]] = []
    for c in constraints:
        if c.confidence is None:
            continue
        table = catalog.latency_table(space, c.device or "")
        quantiles = quantiles_of(table) if table is not None else None
        if quantiles is None:
            raise SpecError("constraints", f"the table of {c.device!r} has no error band for a confidence limit")
        for level in (c.confidence, round(1 - c.confidence, 6)):
            key = band_key(c.key, level)
            if key not in {k for k, _, _ in out}:
                out.append((key, c.key, ratio_at(quantiles, level)))
    return out


def _measuring(spec: JobSpec, evaluator: Evaluator, catalog: Catalog) -> Evaluator:
    """The evaluator, wrapped to measure candidates on agents when the spec has measured metrics."""
    refs = spec.measured_refs()
    if not refs:
        return evaluator
    from nas.devices.evaluator import MeasuringEvaluator

    keys: dict[str, dict[str, str]] = {}
    for ref in refs:
        keys.setdefault(str(ref.device), {})[ref.metric] = ref.key
    measurers = {device: catalog.measurer(device, spec.space) for device in keys}  # type: ignore[attr-defined]
    return MeasuringEvaluator(evaluator, measurers, keys)


def build_evaluator(spec: JobSpec, catalog: Catalog, *, cwd: str | None = None,
                    command_policy: CommandPolicy | None = None) -> Evaluator:
    """The evaluator alone (a helper worker of a fanned-out job needs no strategy or tables)."""
    return _build_evaluator(spec, job_space(spec, catalog), catalog, cwd, command_policy)


def _build_evaluator(spec: JobSpec, space: SearchSpace, catalog: Catalog, cwd: str | None,
                     command_policy: CommandPolicy | None = None) -> Evaluator:
    return _measuring(spec, evaluator_kind(spec).build(spec, space, catalog, cwd, command_policy=command_policy),
                      catalog)


def reference_point(spec: JobSpec, estimators: dict[str, LatencyEstimator],
                    energy: dict[str, LatencyEstimator] | None = None,
                    static: StaticMetrics | None = None, catalog: Catalog | None = None,
                    space: SearchSpace | None = None) -> dict[str, float]:
    """Spec's values, else 0 for maximised metrics and 1.01 x the space's largest value for
    latency, energy and static metrics (estimators built here when not given)."""
    if static is None:
        static = StaticMetrics(space if space is not None else job_space(spec, catalog or MemoryCatalog()),
                               [o.metric for o in spec.objectives if o.metric in STATIC_METRICS])
    if energy is None and catalog is not None:
        energy = energy_estimators(spec, catalog, job_space(spec, catalog))
    ref: dict[str, float] = {}
    for o in spec.objectives:
        if spec.reference_point and o.key in spec.reference_point:
            ref[o.key] = float(spec.reference_point[o.key])
        elif o.metric == "energy_mj" and energy and o.device in energy:
            ref[o.key] = float(1.01 * energy[o.device].bounds()[1])
        elif static is not None and o.metric in static.names and o.goal == "minimize":
            ref[o.key] = float(1.01 * static.bounds(o.metric)[1])
        elif o.source == "measured":
            table = catalog.latency_table(spec.space, o.device or "") if catalog is not None else None
            if table is None or o.metric != "latency_ms":
                raise SpecError("reference_point", f"give a reference value for objective {o.key!r} "
                                f"(device {o.device!r} has no table to bound its measured {o.metric})")
            ratio = ratio_at(quantiles_of(table) or {1.0: 1.5}, 1.0)
            on = space if space is not None else job_space(spec, catalog or MemoryCatalog())
            ref[o.key] = float(1.01 * max(ratio, 1.0) * estimator_for(table, on).bounds()[1])
        elif o.metric == "latency_ms" and o.device in estimators:
            ref[o.key] = float(1.01 * estimators[o.device].bounds()[1])
        elif o.goal == "maximize":
            ref[o.key] = 0.0
        else:
            raise SpecError("reference_point", f"give a reference value for objective {o.key!r}")
    return ref
