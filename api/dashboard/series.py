"""What the job page plots, computed from the stored trials (no FastAPI, no SQL here).

The job page's series.json is the trial columns the browser plots directly (one entry
per trial, metrics per key: encoded once per job by api/dashboard/trialcache.py) and
``job_series``: labels, axes, the seqs of the stored Pareto front and its duplicates,
and the hypervolume history. The history is the one the worker
stored as trials landed (``job_hypervolume``, storage/hypervolume.py): a request never
computes a hypervolume, and it reads only the trials stored since the last one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nas.pareto import Objective
from nas.spec import JobSpec


def objectives_of(spec: JobSpec) -> list[Objective]:
    return [Objective(o.key, o.goal == "maximize") for o in spec.objectives]


def feasible(spec: JobSpec, status: str, metrics: dict[str, float]) -> bool:
    """Whether a trial may join the front: the engine's rule (nas.engine._Tracker.add)."""
    if status != "completed" or any(o.key not in metrics for o in spec.objectives):
        return False
    return all(c.check_key in metrics and c.satisfied(metrics[c.check_key]) for c in spec.constraints)


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


def job_series(spec: JobSpec, reference: dict[str, float] | None, front: Sequence[int], keys: Sequence[str],
               duplicates: dict[int, list[int]], history: Sequence[tuple[int, float]], total: int) -> dict[str, Any]:
    """What the job page needs besides the trial columns (``trialcache.JobTrials.columns``: seq,
    arch, trial_status, metrics): ``keys`` are the stored metric keys, ``duplicates`` the front's
    (``duplicates_of``), ``history`` the stored (evaluations, hypervolume) rows, ``total`` the trials."""
    return {
        "labels": {k: metric_label(spec, k) for k in keys} | {o.key: metric_label(spec, o.key) for o in spec.objectives},
        "duplicates": {str(k): v for k, v in duplicates.items()},
        "objectives": [{"key": o.key, "goal": o.goal} for o in spec.objectives],
        "axes": plot_axes(spec),
        "reference_point": reference or {},
        "front": sorted(front),
        "hypervolume": {"evaluations": [n for n, _ in history], "values": [v for _, v in history],
                        "total": total},
    }
