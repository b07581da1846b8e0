"""What the job and compare pages need to choose an architecture, beyond the stored trials.

- ``job_extras``: each table's error band, every axis a plot or the
  shortlist may show, and the scale that turns the raw hypervolume into a percentage;
- ``trial_columns``: values of extra axes (another device's latency, static metrics) for
  every trial of a job, computed through the tables and the space;
- ``compare_data``: several jobs' fronts, each projected onto every device any of them names;
- ``normalised_hv``: a job's hypervolume as a share of the best front (nas.best_front), or
  of the box between its reference point and its own ideal point where no best front is known.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from api.dashboard.projection import available_axes, band_of, project
from api.dashboard.series import duplicates_of, metric_label
from api.dashboard.trialcache import JobTrials, TrialRow, job_trials
from nas.best_front import BestFront, best_front, own_box
from nas.service import DbCatalog
from nas.spec import JobSpec
from nas.resolve import job_space
from search_spaces.base import SearchSpace
from storage import catalog as catalog_q
from storage import jobs as jobs_q
from storage.db import session_scope
from storage.models import Job, Trial

MAX_KEYS = 8
_CACHE_SIZE = 64
_best_cache: OrderedDict[str, BestFront | None] = OrderedDict()
_best_lock = threading.Lock()


def _tables(factory: Any, space: str) -> dict[str, dict[str, Any]]:
    with session_scope(factory) as s:
        return {d.name: d.table for d in catalog_q.list_devices(s, space)}


def _best_key(spec: dict[str, Any], reference: dict[str, float], tenant_id: int | None = None) -> str:
    """What the best front depends on (not the name, budget, seed or strategy of the job)."""
    parts: dict[str, Any] = {k: spec.get(k) for k in ("space", "space_hash", "objectives", "constraints", "device",
                                                      "device_limits", "keep_degenerate")}
    parts["tenant"] = tenant_id
    ev = spec.get("evaluator") or {}
    parts["evaluator"] = {k: ev.get(k) for k in ("type", "table", "metric")}
    return json.dumps([parts, reference], sort_keys=True, default=str)


_MISSING = object()
_pending: dict[str, threading.Event] = {}


def job_space_of(factory: Any, job: Job) -> SearchSpace:
    """The job's space as it ran: a registered definition pinned by ``space_hash`` included."""
    return job_space(JobSpec.model_validate(job.spec), DbCatalog(factory, job.tenant_id))


def _compute(factory: Any, key: str, spec: dict[str, Any], reference: dict[str, float],
             tenant_id: int | None) -> None:
    try:
        value = best_front(JobSpec.model_validate(spec), reference, DbCatalog(factory, tenant_id))
    except Exception:  # a table or benchmark removed since the job ran: no scale, not an error page
        value = None
    with _best_lock:
        _best_cache[key] = value
        while len(_best_cache) > _CACHE_SIZE:
            _best_cache.popitem(last=False)
        done = _pending.pop(key, None)
    if done:
        done.set()


def _best(factory: Any, job: Job, wait: bool) -> BestFront | None:
    """The job's best front from the cache; computed here when ``wait`` (series.json, compare.json),
    else in a background thread while the caller shows what it has (the pages, the jobs list).
    A benchmark's best front takes ~1-2 s on an idle core; many jobs share one (same space, benchmark,
    objectives, constraints and reference point), so the cache is keyed by those."""
    reference = job.reference_point or {}
    key = _best_key(job.spec, reference, job.tenant_id)
    with _best_lock:
        value = _best_cache.get(key, _MISSING)
        if value is not _MISSING:
            _best_cache.move_to_end(key)
            return value  # type: ignore[return-value]
        running = _pending.get(key)
        if running is None:
            running = _pending[key] = threading.Event()
            start = True
        else:
            start = False
    if start and wait:
        _compute(factory, key, job.spec, reference, job.tenant_id)
    elif start:
        threading.Thread(target=_compute, args=(factory, key, job.spec, reference, job.tenant_id), daemon=True,
                         name="hwnas-best-front").start()
    if wait:
        running.wait(120)
    with _best_lock:
        value = _best_cache.get(key, None)
    return value  # type: ignore[return-value]


def normalised_hv(factory: Any, job: Job, front: Sequence[Trial | TrialRow] | None = None,
                  wait: bool = True) -> dict[str, Any] | None:
    """{"fraction", "scale", "kind": "best" | "own", "basis"} for the job's stored hypervolume.

    Without ``wait`` a best front not yet computed gives None (it is being computed meanwhile)."""
    if job.hypervolume is None:
        return None
    best = _best(factory, job, wait)
    if best is None and not wait:
        with _best_lock:
            if _best_key(job.spec, job.reference_point or {}, job.tenant_id) in _pending:
                return None
    if best is not None and best.hypervolume > 0:
        return {"fraction": job.hypervolume / best.hypervolume, "scale": best.hypervolume, "kind": "best",
                "basis": f"the best front of {best.basis} ({best.candidates} candidates under the job's rules)"}
    if front is None:
        with session_scope(factory) as s:
            front = jobs_q.front_trials(s, job)
    box = own_box(JobSpec.model_validate(job.spec), job.reference_point or {}, [t.metrics for t in front])
    if not box:
        return None
    return {"fraction": job.hypervolume / box, "scale": box, "kind": "own",
            "basis": "the box from the job's reference point to the best value found for each objective"}


def job_extras(factory: Any, job: Job, trials: JobTrials, space: SearchSpace) -> dict[str, Any]:
    """Each table's error band, every axis a plot or the shortlist may show and the hypervolume scale
    (the degenerate trials come with the trial columns: ``JobTrials.degenerate``)."""
    spec = JobSpec.model_validate(job.spec)
    tables = _tables(factory, spec.space)
    labels = {k: metric_label(spec, k) for k in trials.keys} | {o.key: metric_label(spec, o.key) for o in spec.objectives}
    hv = normalised_hv(factory, job, trials.front(job.front or []))
    return {
        "bands": {f"latency_ms@{d}": b for d, table in tables.items() if (b := band_of(table))},
        "available": available_axes(space, trials.keys, tables, labels),
        "hv_scale": hv and {k: hv[k] for k in ("scale", "kind", "basis")},
        "constraint_keys": sorted({c.key for c in spec.constraints}),
    }


def trial_columns(factory: Any, job: Job, keys: Sequence[str]) -> dict[str, Any]:
    """{"seq": [...], "values": {key: [...]}, "unknown": [...]} for every trial of ``job``."""
    space = job_space_of(factory, job)
    trials = job_trials(factory, job.id, space).rows
    keys = list(dict.fromkeys(keys))[:MAX_KEYS]
    values = project(space, [t.arch for t in trials], keys, _tables(factory, space.name))
    return {"seq": [t.seq for t in trials], "values": values, "unknown": [k for k in keys if k not in values]}


def compare_data(factory: Any, jobs: Sequence[Job]) -> dict[str, Any]:
    """Each job's front with its own metrics and its latency on every device any job names."""
    devices = sorted({d for j in jobs for d in JobSpec.model_validate(j.spec).devices()})
    out = []
    for job in jobs:
        spec = JobSpec.model_validate(job.spec)
        with session_scope(factory) as s:
            front = jobs_q.front_trials(s, job)
        tables = _tables(factory, spec.space)
        keys = [f"latency_ms@{d}" for d in devices]
        projected = project(job_space_of(factory, job), [t.arch for t in front], keys, tables)
        duplicates = duplicates_of(spec, job.front or [], front)
        plain = [o.key for o in spec.objectives if o.device is None]
        hv = normalised_hv(factory, job, front)
        out.append({
            "id": job.id, "name": job.name or job.id[:8], "status": job.status, "space": spec.space,
            "y": plain[0] if plain else None, "y_label": metric_label(spec, plain[0]) if plain else None,
            "objective_keys": [o.key for o in spec.objectives],
            "devices": [d for d in devices if f"latency_ms@{d}" in projected],
            "searched_devices": spec.devices(),
            "hypervolume": job.hypervolume, "hv": hv,
            "front": [{"seq": t.seq, "arch": t.arch, "metrics": t.metrics,
                       "projected": {k: v[i] for k, v in projected.items() if k not in t.metrics}}
                      for i, t in enumerate(front) if not any(t.seq in d for d in duplicates.values())],
        })
    return {"devices": devices, "jobs": out}
