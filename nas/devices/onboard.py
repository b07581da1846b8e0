"""Onboarding a device from a few measurements, and refitting its table as new ones arrive.

References are chosen where the known tables disagree, as HELP picks its reference
set: every known device's table predicts a seeded pool of architectures; in log space,
each prediction minus the architecture's mean over devices is what the devices disagree
on, and that mean is its overall size. Farthest-point selection over these (standardised)
coordinates picks references that span both, so a handful of rows pins down which
known devices the new one resembles and how it scales. The validation set is a separate
seeded random sample: its held-out figures are honest.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from latency_tables import LatencyTable, estimator_for
from latency_tables.band import residual_ratio_quantiles
from latency_tables.fit import fit_table, validation_report
from nas.devices.measure import DeviceMeasurer, Measured
from search_spaces import SearchSpace, get_space
from storage import catalog as catalog_q
from storage import devices as devices_q
from storage.db import session_scope

POOL = 2000
#: Measurements a fit learns from (validation rows stay held out of every refit).
FIT_PURPOSES = ("reference", "verify", "objective")
MIN_ROWS = 3


class OnboardingError(RuntimeError):
    """Onboarding cannot finish (too few successful measurements, no space, ...)."""


def unique_sample(space: SearchSpace, n: int, rng: np.random.Generator, exclude: set[str] = frozenset(),  # type: ignore[assignment]
                  tries: int = 50) -> list[str]:
    out, seen = [], set(exclude)
    for _ in range(n * tries):
        if len(out) == n:
            break
        arch = space.sample(rng)
        h = space.canonical_hash(arch)
        if h not in seen:
            seen.add(h)
            out.append(arch)
    return out


def choose_references(space: SearchSpace, tables: Sequence[LatencyTable], n: int, seed: int = 0,
                      pool: int = POOL) -> list[str]:
    """``n`` architectures spread over what ``tables`` disagree on (see the module docstring)."""
    rng = np.random.default_rng(seed)
    candidates = unique_sample(space, pool, rng)
    predictions = []
    for table in tables:
        try:
            predictions.append(estimator_for(table, space).predict(candidates))
        except (ValueError, KeyError):  # a table that cannot predict this space is no guide
            continue
    if not predictions or n >= len(candidates):
        return candidates[:n]
    logp = np.log(np.maximum(np.stack(predictions, axis=1), 1e-6))
    size = logp.mean(axis=1, keepdims=True)
    features = np.hstack([size, logp - size])
    spread = features.std(axis=0)
    features = (features - features.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
    chosen = [int(np.argmin(np.linalg.norm(features, axis=1)))]  # the most typical first
    distance = np.linalg.norm(features - features[chosen[0]], axis=1)
    while len(chosen) < n:
        nxt = int(np.argmax(distance))
        chosen.append(nxt)
        distance = np.minimum(distance, np.linalg.norm(features - features[nxt], axis=1))
    return [candidates[i] for i in chosen]


def flops_table(space: SearchSpace, rows: int = 400, seed: int = 0) -> LatencyTable | None:
    """A pseudo-device whose "latency" is the network's FLOPs (per op signature, fitted exactly
    from the space's static FLOPs): a basis direction no measured table may carry. On a CPU
    runtime latency follows FLOPs closely; the fit's cross-validation decides how much."""
    from scipy.optimize import lsq_linear

    from latency_tables.table import Entry
    from search_spaces.metrics import static_metrics

    try:
        archs = unique_sample(space, rows, np.random.default_rng(seed))
        codes = np.stack([space.encode(a) for a in archs])
        flops = static_metrics(space, codes, ["flops"])["flops"] / 1e6
    except (KeyError, ValueError, NotImplementedError):  # a space without static FLOPs
        return None
    counts = space.signature_matrix(codes)
    values = lsq_linear(counts, flops, bounds=(0, np.inf), method="trf").x
    vocabulary = space.all_op_signatures()
    return LatencyTable(device={"name": "flops-proxy", "kind": "proxy"}, space=space.name,
                        entries={sig: Entry(float(v)) for sig, v in zip(vocabulary, values)},
                        provenance={"source": "static FLOPs (MFLOPs per signature)"})


def with_flops(space: SearchSpace, tables: Sequence[LatencyTable]) -> list[LatencyTable]:
    proxy = flops_table(space)
    return [*tables, proxy] if proxy is not None else list(tables)


def device_block(device: str, environment: dict[str, Any] | None) -> dict[str, Any]:
    env = environment or {}
    return {"name": device, "kind": "measured", "runtime": env.get("runtime_version", env.get("runtime", "")),
            "threads": env.get("threads"), "hardware": env.get("cpu_model", ""), "host": env.get("host", ""),
            "batch_size": 1, "measured": "hwnas agent"}


def fit_and_validate(space: SearchSpace, device: str, fit_rows: Sequence[Measured], val_rows: Sequence[Measured],
                     basis: Sequence[LatencyTable], *, source: str, seed: int = 0) -> LatencyTable:
    """Fit from ``fit_rows`` with ``tables fit``'s code and validate on ``val_rows`` (held out)."""
    fit_ok = [m for m in fit_rows if m.ok]
    val_ok = [m for m in val_rows if m.ok]
    if len(fit_ok) < MIN_ROWS:
        raise OnboardingError(f"only {len(fit_ok)} of {len(fit_rows)} reference measurements succeeded "
                              f"(need {MIN_ROWS}); " + _reasons(fit_rows))
    env = next((m.environment for m in fit_ok if m.environment), None)
    table = fit_table(space, [m.arch for m in fit_ok], [float(m.latency_ms) for m in fit_ok],  # type: ignore[arg-type]
                      device=device_block(device, env), source=source, basis=basis, seed=seed)
    table.provenance["environment"] = env or {}
    if val_ok:
        predicted = estimator_for(table, space).predict([m.arch for m in val_ok])
        measured = np.array([float(m.latency_ms) for m in val_ok])  # type: ignore[arg-type]
        report = validation_report(predicted, measured) if len(val_ok) >= 2 else {"n": len(val_ok)}
        table.validation = {"held_out": True, "source": f"{len(val_ok)} random networks measured on the device "
                            "by its agent, not in the fit", **report,
                            "residual_ratio_quantiles": residual_ratio_quantiles(predicted, measured)}
    return table


def _reasons(rows: Sequence[Measured]) -> str:
    failed = [m for m in rows if not m.ok]
    return "; ".join(f"{m.arch[:60]}: {(m.error or '')[:200]}" for m in failed[:3]) or "no failures"


Progress = Callable[[dict[str, Any]], None]


def run_onboarding(factory: sessionmaker[Session], op_id: str, measurer: DeviceMeasurer,
                   basis: Callable[[str, str], list[LatencyTable]]) -> dict[str, Any]:
    """Measure references and validation set on the agent, fit, validate, register. Returns the result.

    Resumable: a redelivered operation reuses the measurements it already asked for.
    ``basis(space, device)``: the known tables of the space, the device's own left out.
    """
    with session_scope(factory) as s:
        op = devices_q.get_operation(s, op_id)
        assert op is not None
        device, space_name, params, tenant_id = op.device, op.space, dict(op.params), op.tenant_id
        existing = devices_q.owner_measurements(s, op_id)
    space = get_space(space_name)
    known = basis(space_name, device)
    seed = int(params.get("seed", 0))
    if existing:
        ref_ids = [m.id for m in existing if m.purpose == "reference"]
        val_ids = [m.id for m in existing if m.purpose == "validation"]
    else:
        refs = choose_references(space, known, int(params["samples"]), seed)
        validation = unique_sample(space, int(params["validate"]), np.random.default_rng(seed + 1),
                                   {space.canonical_hash(a) for a in refs})
        ref_ids = measurer.request(refs, purpose="reference", owner=op_id)
        val_ids = measurer.request(validation, purpose="validation", owner=op_id)
    total = len(ref_ids) + len(val_ids)

    def progress(message: str, done: int, _total: int) -> None:
        with session_scope(factory) as s:
            devices_q.operation_progress(s, op_id, {"phase": "measuring", "message": message,
                                                     "measured": done, "total": total})

    rows = measurer.wait([*ref_ids, *val_ids], on_progress=progress)
    fit_rows, val_rows = rows[:len(ref_ids)], rows[len(ref_ids):]
    with session_scope(factory) as s:
        devices_q.operation_progress(s, op_id, {"phase": "fitting", "message": "fitting the table",
                                                 "measured": total, "total": total})
    table = fit_and_validate(space, device, fit_rows, val_rows, with_flops(space, known),
                             source="hwnas devices onboard", seed=seed)
    table.provenance.update({"onboarding": op_id, "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")})
    with session_scope(factory) as s:
        stored = devices_q.store_revision(s, table.to_dict(), tenant_id)
        revision = devices_q.table_revision(stored.table)
    return {"device": device, "space": space_name, "revision": revision, "references": sum(m.ok for m in fit_rows),
            "validation": table.validation, "model": table.provenance.get("model"),
            "basis_weights": table.provenance.get("basis_weights"),
            "failed": [{"arch": m.arch, "error": m.error} for m in rows if not m.ok]}


def refit(factory: sessionmaker[Session], device: str, space_name: str, basis: list[LatencyTable],
          *, reason: str) -> dict[str, Any] | None:
    """A new revision of the device's table from all its fit measurements, validated on its held-out rows.

    Returns {revision_before, revision_after, validation_before, validation_after}, or None when the
    device has too few measurements (a shipped or uploaded table is never refitted from nothing).
    """
    space = get_space(space_name)
    with session_scope(factory) as s:
        fit_rows = _as_measured(devices_q.device_data(s, device, space_name, FIT_PURPOSES))
        val_rows = _as_measured(devices_q.device_data(s, device, space_name, ("validation",)))
        current = catalog_q.get_device(s, device, space_name)
        old = LatencyTable.from_dict(current[0].table) if current else None
        owner = current[0].tenant_id if current else None
    fit_rows = _distinct(fit_rows, space)
    if len(fit_rows) < MIN_ROWS or old is None:
        return None
    before = _report(old, space, val_rows)
    table = fit_and_validate(space, device, fit_rows, val_rows, with_flops(space, basis),
                             source=f"hwnas refit ({reason})")
    table.provenance.update({k: old.provenance[k] for k in ("onboarding",) if k in old.provenance})
    with session_scope(factory) as s:
        stored = devices_q.store_revision(s, table.to_dict(), owner)
        revision = devices_q.table_revision(stored.table)
    return {"revision_before": devices_q.table_revision(old.to_dict()), "revision_after": revision,
            "fit_rows": len(fit_rows), "validation_before": before, "validation_after": table.validation}


def _report(table: LatencyTable, space: SearchSpace, rows: Sequence[Measured]) -> dict[str, Any]:
    ok = [m for m in rows if m.ok]
    if len(ok) < 2:
        return {"n": len(ok)}
    predicted = estimator_for(table, space).predict([m.arch for m in ok])
    return validation_report(predicted, np.array([float(m.latency_ms) for m in ok]))  # type: ignore[arg-type]


def _as_measured(rows: Sequence[Any]) -> list[Measured]:
    return [Measured(r.arch, r.latency_ms, r.energy_mj, r.peak_memory_kb, r.error, r.environment) for r in rows]


def _distinct(rows: Sequence[Measured], space: SearchSpace) -> list[Measured]:
    """One row per architecture (the geometric mean of its repeats)."""
    groups: dict[str, list[Measured]] = {}
    for m in rows:
        groups.setdefault(space.canonical_hash(m.arch), []).append(m)
    out = []
    for group in groups.values():
        lat = float(np.exp(np.mean([np.log(float(m.latency_ms)) for m in group])))  # type: ignore[arg-type]
        out.append(Measured(group[0].arch, lat, None, None, None, group[-1].environment))
    return out
