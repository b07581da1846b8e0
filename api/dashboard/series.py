"""What the job page plots, computed from the stored trials (no FastAPI, no SQL here).

``job_series`` turns a job and its trials (in evaluation order) into columns the
browser plots directly: one entry per trial, metrics per key, the seqs of the
stored Pareto front, and the hypervolume after every evaluation. The history is
recomputed with ``nas.pareto`` under the same rules the engine applies (completed,
all objectives present, constraints satisfied), against ``job.reference_point``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nas.pareto import Objective, oriented
from nas.spec import JobSpec


def objectives_of(spec: JobSpec) -> list[Objective]:
    return [Objective(o.key, o.goal == "maximize") for o in spec.objectives]


def feasible(spec: JobSpec, status: str, metrics: dict[str, float]) -> bool:
    """Whether a trial may join the front: the engine's rule (nas.engine._Tracker.add)."""
    if status != "completed" or any(o.key not in metrics for o in spec.objectives):
        return False
    return all(c.check_key in metrics and c.satisfied(metrics[c.check_key]) for c in spec.constraints)


def _hypervolume(points: np.ndarray, reference: np.ndarray) -> float:
    """nas.pareto.hypervolume's sweep and slicing, without its non-dominated filtering.

    Dominated points add nothing to a sweep (their gain over the running maximum is
    zero), so the filter only costs time: nas.pareto's version spends ~40 ms on a
    3-objective front of 50 points, this one ~1 ms. tests/api/dashboard checks both agree.
    """
    pts = points[np.all(points > reference, axis=1)]
    if len(pts) == 0:
        return 0.0
    if pts.shape[1] == 1:
        return float(pts[:, 0].max() - reference[0])
    if pts.shape[1] == 2:
        pts = pts[np.argsort(-pts[:, 0], kind="stable")]
        running = np.maximum.accumulate(np.maximum(pts[:, 1], reference[1]))
        gains = np.diff(running, prepend=reference[1])
        return float(np.sum((pts[:, 0] - reference[0]) * gains))
    pts = pts[np.argsort(-pts[:, -1], kind="stable")]
    lower = np.append(pts[1:, -1], reference[-1])
    volume = 0.0
    for i in range(len(pts)):
        depth = pts[i, -1] - lower[i]
        if depth > 0:
            volume += depth * _hypervolume(pts[: i + 1, :-1], reference[:-1])
    return float(volume)


def hypervolume_history(spec: JobSpec, reference: dict[str, float],
                        trials: Sequence[tuple[str, dict[str, float]]]) -> list[tuple[int, float]]:
    """(evaluations, hypervolume) at every evaluation where the hypervolume changed.

    ``trials`` are (status, metrics) in evaluation order. The archive keeps the
    points no earlier point dominates, like nas.pareto.ParetoArchive, but as one
    array so 10,000 trials take one vectorised check each.
    """
    objectives = objectives_of(spec)
    if not objectives or any(o.key not in reference for o in objectives):
        return []
    ref = oriented(reference, objectives)
    front = np.empty((0, len(objectives)))
    history: list[tuple[int, float]] = []
    current = 0.0
    for n, (status, metrics) in enumerate(trials, start=1):
        if not feasible(spec, status, metrics):
            continue
        point = oriented(metrics, objectives)
        if len(front) and np.any(np.all(front >= point, axis=1)):  # dominated, or equal to a member
            continue
        keep = ~(np.all(point >= front, axis=1) & np.any(point > front, axis=1))
        front = np.vstack([front[keep], point])
        value = _hypervolume(front, ref)
        if value != current:
            current = value
            history.append((n, value))
    return history


def plot_axes(spec: JobSpec) -> dict[str, Any]:
    """The y metric (first objective without a device) and one x metric per device panel."""
    plain = [o.key for o in spec.objectives if o.device is None]
    y = plain[0] if plain else None
    panels = [{"device": d, "x": f"latency_ms@{d}", "title": f"{y or 'seq'} vs latency on {d}"}
              for d in spec.devices()]
    limits: dict[str, dict[str, float]] = {}
    for c in spec.constraints:
        bounds = limits.setdefault(c.key, {})
        if c.max is not None:
            bounds["max"] = min(c.max, bounds.get("max", c.max))
        if c.min is not None:
            bounds["min"] = max(c.min, bounds.get("min", c.min))
    return {"y": y, "panels": panels, "limits": limits}


def metric_label(spec: JobSpec, key: str) -> str:
    """What a metric key is, for axis titles: a proxy's score is named, never called accuracy."""
    if key != "accuracy":
        return key
    ev = spec.evaluator
    if ev.type == "proxy":
        return f"{ev.proxy} score (zero-cost proxy)"
    if ev.type == "benchmark":
        return f"accuracy (%, {ev.metric} from benchmark {ev.table})"
    if ev.type == "train":
        return f"accuracy (%, short training on {ev.dataset})"
    return "accuracy (from the evaluator command)"


def duplicates_of(spec: JobSpec, front: Sequence[int], trials: Sequence[Any]) -> dict[int, list[int]]:
    """Front seq -> the later feasible trials with exactly its objective values (nas.pareto.ParetoArchive's rule)."""
    keys = [o.key for o in spec.objectives]
    members = set(front)
    owner: dict[tuple[float, ...], int] = {}
    for t in trials:
        if t.seq in members and all(k in t.metrics for k in keys):
            owner.setdefault(tuple(t.metrics[k] for k in keys), t.seq)
    out: dict[int, list[int]] = {}
    for t in trials:
        if not feasible(spec, t.status, t.metrics):
            continue
        first = owner.get(tuple(t.metrics[k] for k in keys))  # a front stored before this rule may hold both
        if first is not None and first < t.seq:
            out.setdefault(first, []).append(t.seq)
    return out


def job_series(job_spec: dict[str, Any], reference: dict[str, float] | None, front: Sequence[int],
               trials: Sequence[Any]) -> dict[str, Any]:
    """Columns for the job page; ``trials`` are ORM rows (seq, arch, status, metrics) in seq order."""
    spec = JobSpec.model_validate(job_spec)
    keys = sorted({k for t in trials for k in t.metrics})
    columns: dict[str, list[float | None]] = {k: [t.metrics.get(k) for t in trials] for k in keys}
    history = hypervolume_history(spec, reference or {}, [(t.status, t.metrics) for t in trials])
    return {
        "labels": {k: metric_label(spec, k) for k in keys} | {o.key: metric_label(spec, o.key) for o in spec.objectives},
        "duplicates": {str(k): v for k, v in duplicates_of(spec, front, trials).items()},
        "objectives": [{"key": o.key, "goal": o.goal} for o in spec.objectives],
        "axes": plot_axes(spec),
        "reference_point": reference or {},
        "seq": [t.seq for t in trials],
        "arch": [t.arch for t in trials],
        "trial_status": [t.status for t in trials],
        "metrics": columns,
        "front": sorted(front),
        "hypervolume": {"evaluations": [n for n, _ in history], "values": [v for _, v in history],
                        "total": len(trials)},
    }
