"""Metrics that cost no evaluation besides table latency: static footprint metrics of the
space (params, MACs, peak memory, ...), table energy, and the budgets a device declares.

``resolve.build_search`` uses these to add free metrics, constraints and reference points.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from latency_tables import LatencyEstimator, estimator_for, TableError
from latency_tables.table import shipped_profiles
from nas.catalog import Catalog, SpecError
from nas.spec import ConstraintSpec, JobSpec, _MetricRef
from search_spaces import SearchSpace
from search_spaces.metrics import MODEL_SIZE, PEAK_MEMORY, STATIC_METRICS, static_metrics

#: Spaces up to this size get every architecture's static metrics computed once, then looked up.
ENUMERATION_LIMIT = 100_000


class StaticMetrics:
    """The static metrics a job names, for any architectures of a space (a lookup for small spaces)."""

    def __init__(self, space: SearchSpace, names: Sequence[str]):
        self.space = space
        self.names = list(names)
        self.table: dict[str, np.ndarray] | None = None
        if self.names and space.size <= ENUMERATION_LIMIT:
            dims = np.asarray(space.dims)
            self.radix = np.concatenate([np.cumprod(dims[::-1])[::-1][1:], [1]]).astype(np.int64)
            every = np.stack(np.unravel_index(np.arange(space.size), tuple(space.dims)), axis=1)
            self.table = static_metrics(space, every, self.names)

    def predict(self, archs: Sequence[str]) -> dict[str, np.ndarray]:
        if not self.names:
            return {}
        if not archs:
            return {n: np.zeros(0) for n in self.names}
        codes = np.stack([self.space.encode(a) for a in archs])
        if self.table is not None:
            index = codes @ self.radix
            return {n: v[index] for n, v in self.table.items()}
        return static_metrics(self.space, codes, self.names)

    def bounds(self, name: str) -> tuple[float | None, float]:
        """(lowest or None where unknown, highest) of a metric over the whole space."""
        if self.table is not None and name in self.table:
            return float(self.table[name].min()), float(self.table[name].max())
        return None, float(static_metrics(self.space, self.space.largest_codes(), [name])[name].max())


def _refs(spec: JobSpec) -> list[_MetricRef]:
    return [*spec.objectives, *spec.explicit_constraints]


def energy_estimators(spec: JobSpec, catalog: Catalog, space: SearchSpace) -> dict[str, LatencyEstimator]:
    """An energy estimator per device an energy_mj objective or constraint names."""
    out: dict[str, LatencyEstimator] = {}
    for ref in _refs(spec):
        if ref.metric != "energy_mj" or ref.device is None or ref.device in out:
            continue
        table = catalog.latency_table(spec.space, ref.device)
        if table is None or not table.has_metric("energy_mj"):
            raise SpecError("objectives", f"the table of device {ref.device!r} has no energy entries",
                            [t for t in catalog.device_names(spec.space)
                             if (tt := catalog.latency_table(spec.space, t)) and tt.has_metric("energy_mj")])
        try:
            out[ref.device] = estimator_for(table, space, "energy_mj")
        except (TableError, ValueError) as exc:
            raise SpecError("objectives", f"energy of {ref.device!r}: {exc}") from None
    return out


def target_device(spec: JobSpec) -> str:
    """The device whose budgets ``"constraints": "device"`` applies."""
    if spec.device:
        return spec.device
    devices = sorted({o.device for o in spec.objectives if o.device})
    if len(devices) != 1:
        raise SpecError("device", "\"constraints\": \"device\" needs the target device: set \"device\" "
                        f"(the objectives name {len(devices)} devices: {devices})")
    return devices[0]


def device_limits(catalog: Catalog, space: str, device: str) -> dict[str, Any]:
    """A device's declared budgets: from its table's ``device.limits``, else a shipped profile."""
    table = catalog.latency_table(space, device)
    if table is not None and table.limits:
        return table.limits
    profiles = shipped_profiles()
    if device in profiles:
        return dict(profiles[device]["limits"])
    with_limits = [d for d in catalog.device_names(space) if (t := catalog.latency_table(space, d)) and t.limits]
    raise SpecError("device", f"device {device!r} declares no limits (no device.limits in its table and no "
                    "shipped profile)", sorted({*with_limits, *profiles}))


def limit_constraints(spec: JobSpec, catalog: Catalog) -> list[ConstraintSpec]:
    """The target device's budgets as constraints: SRAM on peak memory, flash on model size
    (in the device's dtype, int8 unless it says), and its latency target."""
    if not spec.device_limits:
        return []
    device = target_device(spec)
    limits = device_limits(catalog, spec.space, device)
    dtype = limits.get("dtype", "int8")
    by_dtype = {d: n for n, d in PEAK_MEMORY.items()}, {d: n for n, d in MODEL_SIZE.items()}
    out: list[dict[str, Any]] = []
    if "sram_kb" in limits:
        out.append({"metric": by_dtype[0][dtype], "max": float(limits["sram_kb"])})
    if "flash_kb" in limits:
        out.append({"metric": by_dtype[1][dtype], "max": float(limits["flash_kb"])})
    if "latency_ms" in limits:
        if catalog.latency_table(spec.space, device) is None:
            raise SpecError("device", f"device {device!r} sets a latency target but has no latency table for "
                            f"space {spec.space!r}", catalog.device_names(spec.space))
        out.append({"metric": "latency_ms", "device": device, "max": float(limits["latency_ms"])})
    return [ConstraintSpec.model_validate(c) for c in out]


#: Static metrics every trial shows, named in the spec or not.
SHOWN = ("params", "macs", "peak_memory_kb", "model_size_kb")


def static_names(spec: JobSpec, constraints: Sequence[ConstraintSpec]) -> list[str]:
    """The static metrics a job computes: those it names, and SHOWN."""
    named = {r.metric for r in [*spec.objectives, *constraints] if r.metric in STATIC_METRICS}
    return sorted(named | set(SHOWN))


def check_reachable(constraints: Sequence[tuple[str, ConstraintSpec]], static: StaticMetrics) -> None:
    """SpecError naming the field when no architecture of the space can meet a static bound
    (checked where the space's lowest value is known). ``constraints``: (spec field, constraint)."""
    for where, c in constraints:
        if c.metric not in static.names:
            continue
        lo, hi = static.bounds(c.metric)
        if c.max is not None and lo is not None and lo > c.max:
            raise SpecError(f"{where}.max" if where != "device" else where,
                            f"no architecture of {static.space.name!r} has {c.metric} <= {c.max:g} (the smallest is {lo:g})")
        if c.min is not None and c.min > hi:
            raise SpecError(f"{where}.min" if where != "device" else where,
                            f"no architecture of {static.space.name!r} has {c.metric} >= {c.min:g} (the largest is {hi:g})")
