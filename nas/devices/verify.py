"""Verify a job's front on the device: measure its best k, compare with the prediction, feed the error back.

Each verified trial gets ``measured_latency_ms@DEVICE`` beside its predicted
``latency_ms@DEVICE``; the measurements join the device's data and its table is refitted
as a new revision (the job keeps the revision it pinned at submit). ``front_report``
says, for the Pareto endpoint, which verified trials would leave the front or break a
limit once their measured latency replaces the predicted one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from latency_tables import LatencyTable
from nas.devices.measure import DeviceMeasurer, OnProgress
from nas.devices.onboard import refit
from nas.pareto import Objective, non_dominated_mask, oriented
from nas.spec import JobSpec, metric_key
from storage import devices as devices_q
from storage import jobs as jobs_q
from storage.db import session_scope


def best_of_front(trials: Sequence[Any], spec: JobSpec, k: int) -> list[Any]:
    """The front's best ``k`` by the first objective (ties by seq)."""
    first = spec.objectives[0]
    scored = [t for t in trials if first.key in t.metrics]
    sign = -1.0 if first.goal == "maximize" else 1.0
    return sorted(scored, key=lambda t: (sign * t.metrics[first.key], t.seq))[:k]


def run_verification(factory: sessionmaker[Session], op_id: str, measurer: DeviceMeasurer,
                     basis: Callable[[str, str], list[LatencyTable]], on_progress: OnProgress | None = None,
                     stop: Callable[[], bool] | None = None) -> dict[str, Any]:
    with session_scope(factory) as s:
        op = devices_q.get_operation(s, op_id)
        assert op is not None and op.job_id is not None
        job = jobs_q.get_job(s, op.job_id)
        assert job is not None
        spec = JobSpec.model_validate(job.spec)
        front = jobs_q.front_trials(s, job)
        device, space, top_k = op.device, op.space, int(op.params.get("top_k", 5))
        existing = [m.id for m in devices_q.owner_measurements(s, op_id)]
    chosen = best_of_front(front, spec, top_k)
    if not chosen:
        return {"device": device, "trials": [], "refit": None, "note": "the front is empty"}
    ids = existing or measurer.request([t.arch for t in chosen], purpose="verify", owner=op_id)
    results = measurer.wait(ids, on_progress=on_progress, stop=stop)
    predicted_key, measured_key = metric_key("latency_ms", device), metric_key("latency_ms", device, "measured")
    rows = []
    with session_scope(factory) as s:
        for trial, result in zip(chosen, results, strict=True):
            predicted = trial.metrics.get(predicted_key)
            row: dict[str, Any] = {"seq": trial.seq, "arch": trial.arch, "predicted_ms": predicted,
                                   "measured_ms": result.latency_ms if result.ok else None,
                                   "error": result.error}
            if result.ok:
                extra = {measured_key: float(result.latency_ms)}  # type: ignore[arg-type]
                for metric in ("energy_mj", "peak_memory_kb"):
                    if result.value(metric) is not None:
                        extra[metric_key(metric, device, "measured")] = float(result.value(metric))  # type: ignore[arg-type]
                devices_q.add_trial_metrics(s, job.id, trial.seq, extra)
                if predicted:
                    row["ratio"] = float(result.latency_ms) / float(predicted)  # type: ignore[arg-type]
            rows.append(row)
    refitted = refit(factory, device, space, basis(space, device), reason=f"verified job {job.id}")
    return {"device": device, "top_k": top_k, "trials": rows, "refit": refitted}


def front_report(spec: JobSpec, trials: Sequence[Any], device: str) -> list[dict[str, Any]]:
    """Per trial of the front: predicted vs measured, and whether, measured, it breaks a limit or leaves the front."""
    predicted_key, measured_key = metric_key("latency_ms", device), metric_key("latency_ms", device, "measured")
    objectives = [Objective(o.key, o.goal == "maximize") for o in spec.objectives]
    limits = [c for c in spec.constraints if c.metric == "latency_ms" and c.device == device and c.source == "table"]
    measured_values = []
    for t in trials:
        values = dict(t.metrics)
        if measured_key in values:
            values[predicted_key] = values[measured_key]
        measured_values.append(values)
    usable = [i for i, v in enumerate(measured_values) if all(o.key in v for o in objectives)]
    keep = np.zeros(len(trials), dtype=bool)
    if usable:
        points = np.stack([oriented(measured_values[i], objectives) for i in usable])
        keep[np.array(usable)] = non_dominated_mask(points)
    out = []
    for i, t in enumerate(trials):
        if measured_key not in t.metrics:
            continue
        measured = float(t.metrics[measured_key])
        broken = [c.model_dump(exclude_none=True) for c in limits if not c.satisfied(measured)]
        out.append({"seq": t.seq, "predicted_ms": t.metrics.get(predicted_key), "measured_ms": measured,
                    "ratio": measured / t.metrics[predicted_key] if t.metrics.get(predicted_key) else None,
                    "breaks_limit": bool(broken), "broken_limits": broken,
                    "leaves_front": bool(broken) or not bool(keep[i])})
    return out
