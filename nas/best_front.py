"""The best front a job could have found, so its hypervolume can be read as a percentage.

Where every candidate's objectives are known without an evaluation, the best front is
exact: a benchmark evaluator names a table holding every architecture's accuracy, and
latency, energy and static metrics come from the tables and the space definition; a
job with only such free objectives over a space small enough to enumerate needs no
benchmark at all. The candidates obey the job's rules (constraints, the device's
budgets, degenerate architectures skipped unless the spec keeps them), and the
hypervolume uses the job's own reference point, so ``job hypervolume / best`` is the
share of the attainable volume the job covered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from latency_tables import estimator_for
from nas.catalog import Catalog
from nas.footprint import ENUMERATION_LIMIT, StaticMetrics, energy_estimators, static_names
from nas.pareto import Objective, hypervolume
from nas.resolve import build_estimators, job_space, resolved_constraints
from nas.spec import BenchmarkEvaluatorSpec, JobSpec, metric_key
from search_spaces.base import SearchSpace

#: Metrics an evaluator provides; every other objective is free (tables, space definition).
EVALUATED = {"accuracy"}


@dataclass(frozen=True)
class BestFront:
    hypervolume: float
    #: what the candidates were: "benchmark <table>" or "every architecture of <space>"
    basis: str
    candidates: int


def _candidates(spec: JobSpec, catalog: Catalog, space: SearchSpace) -> tuple[list[str], dict[str, np.ndarray], str] | None:
    needs_evaluator = any(o.metric in EVALUATED for o in spec.objectives)
    ev = spec.evaluator
    if isinstance(ev, BenchmarkEvaluatorSpec):
        data = catalog.benchmark(ev.table)
        if data is None or ev.metric not in data.columns:
            return None
        rows = [(a, r[ev.metric]) for a, r in data.rows.items() if r.get(ev.metric) is not None]
        return [a for a, _ in rows], {"accuracy": np.array([v for _, v in rows], dtype=float)}, \
            f"benchmark {ev.table}"
    if needs_evaluator or space.size > ENUMERATION_LIMIT:
        return None
    codes = space.largest_codes()
    return [space.decode(c) for c in codes], {}, f"every architecture of {space.name}"


def best_front(spec: JobSpec, reference: dict[str, float], catalog: Catalog) -> BestFront | None:
    """The attainable front's hypervolume against ``reference``; None where it is not knowable."""
    objectives = [Objective(o.key, o.goal == "maximize") for o in spec.objectives]
    if any(o.key not in reference for o in objectives):
        return None
    space = job_space(spec, catalog)
    found = _candidates(spec, catalog, space)
    if found is None:
        return None
    archs, values, basis = found
    if not spec.keep_degenerate:
        keep = np.array([not space.is_degenerate(a) for a in archs], dtype=bool)
        archs = [a for a, k in zip(archs, keep, strict=True) if k]
        values = {k: v[keep] for k, v in values.items()}
    constraints = [c for _, c in resolved_constraints(spec, catalog)]
    estimators = build_estimators(spec, catalog)
    for c in constraints:
        if c.metric == "latency_ms" and c.device and c.device not in estimators:
            table = catalog.latency_table(spec.space, c.device)
            if table is None:
                return None
            estimators[c.device] = estimator_for(table, space)
    energy = energy_estimators(spec, catalog, space)
    static = StaticMetrics(space, static_names(spec, constraints))
    if archs:
        values.update({metric_key("latency_ms", d): e.predict(archs) for d, e in estimators.items()})
        values.update({metric_key("energy_mj", d): e.predict(archs) for d, e in energy.items()})
        values.update(static.predict(archs))
    mask = np.ones(len(archs), dtype=bool)
    for c in constraints:
        if c.key not in values:
            return None
        if c.max is not None:
            mask &= values[c.key] <= c.max
        if c.min is not None:
            mask &= values[c.key] >= c.min
    if any(o.key not in values for o in objectives):
        return None
    points = np.stack([values[o.key] if o.maximize else -values[o.key] for o in objectives], axis=1)[mask]
    ref = np.array([reference[o.key] if o.maximize else -reference[o.key] for o in objectives])
    points = points[np.all(points > ref, axis=1)]
    points = _non_dominated(points)
    return BestFront(hypervolume(points, ref) if len(points) else 0.0, basis, int(mask.sum()))


def _non_dominated(points: np.ndarray) -> np.ndarray:
    """The non-dominated rows (oriented, larger is better), equal rows once.

    Rows in descending lexicographic order: a row's dominators all come before it, so
    each row is checked against the front so far (tens of rows), not against all n
    (nas.pareto.non_dominated_mask's n x n is ~1 min for a 15,625-row benchmark).
    """
    if len(points) == 0:
        return points
    points = np.unique(points, axis=0)[::-1]  # unique sorts ascending lexicographically
    front = points[:1]
    for p in points[1:]:
        if not np.any(np.all(front >= p, axis=1)):
            front = np.vstack([front, p])
    return front


def own_box(spec: JobSpec, reference: dict[str, float], points: Sequence[dict[str, float]]) -> float | None:
    """Volume of the box from the reference point to the ideal point of ``points`` (the job's
    feasible trials): the fallback scale when no best front is knowable."""
    objectives = [Objective(o.key, o.goal == "maximize") for o in spec.objectives]
    if not points or any(o.key not in reference for o in objectives):
        return None
    volume = 1.0
    for o in objectives:
        vals = [p[o.key] for p in points if o.key in p]
        if not vals:
            return None
        best = max(vals) if o.maximize else min(vals)
        side = (best - reference[o.key]) if o.maximize else (reference[o.key] - best)
        if side <= 0:
            return None
        volume *= side
    return volume
