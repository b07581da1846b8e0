"""Any trial on any axis: latency on every registered device of the space, static metrics, error bands.

A job only stores the metrics its objectives and constraints name. The tables price
any architecture of their space and the space definition gives its static footprint,
so the dashboard can put a job's trials (and its front) on axes the job never
searched on: latency on another device, parameters, MACs, peak memory. Values that
come from a table carry its error band (helper ``fit``'s ``residual_ratio_quantiles``,
measured / predicted on held-out rows) where the table has one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from latency_tables import LatencyTable, TableError, estimator_for
from search_spaces.base import SearchSpace
from search_spaces.metrics import STATIC_METRICS

#: The band drawn and printed: the central 90 % of measured / predicted on held-out rows.
BAND = ("0.05", "0.95")
#: Metrics whose values come from a device's table.
TABLE_METRICS = ("latency_ms",)


def band_of(table: Mapping[str, Any]) -> dict[str, float] | None:
    """{"lo": ratio, "hi": ratio, "level": 0.9} from a table's validation block, or None."""
    quantiles = (table.get("validation") or {}).get("residual_ratio_quantiles")
    if not isinstance(quantiles, Mapping):
        return None
    by_level = {float(k): float(v) for k, v in quantiles.items()}
    lo, hi = by_level.get(float(BAND[0])), by_level.get(float(BAND[1]))
    if lo is None or hi is None:
        return None
    return {"lo": lo, "hi": hi, "level": float(BAND[1]) - float(BAND[0])}


def static_names(space: SearchSpace) -> list[str]:
    """The static metrics this space can compute (its ``footprint`` hook)."""
    try:
        space.footprint(space.encode(space.sample(np.random.default_rng(0)))[None, :])
    except NotImplementedError:
        return []
    return list(STATIC_METRICS)


def available_axes(space: SearchSpace, stored: Sequence[str], tables: Mapping[str, Mapping[str, Any]],
                   labels: Mapping[str, str]) -> list[dict[str, str]]:
    """Every key a plot axis or shortlist column may show, stored ones first."""
    out = [{"key": k, "label": labels.get(k, k), "source": "trial"} for k in stored]
    seen = set(stored)
    for device in sorted(tables):
        key = f"latency_ms@{device}"
        if key not in seen:
            out.append({"key": key, "label": f"{key} (predicted by its table)", "source": "table"})
            seen.add(key)
    for name in static_names(space):
        if name not in seen:
            out.append({"key": name, "label": f"{name} ({STATIC_METRICS[name]})", "source": "static"})
            seen.add(name)
    return out


def project(space: SearchSpace, archs: Sequence[str], keys: Sequence[str],
            tables: Mapping[str, Mapping[str, Any]]) -> dict[str, list[float | None]]:
    """Values of ``keys`` (``latency_ms@DEVICE`` or a static metric) for every architecture.

    A key no table or hook can compute is left out of the answer (the caller reports it).
    """
    out: dict[str, list[float | None]] = {}
    static = [k for k in keys if k in STATIC_METRICS]
    if static and archs:
        from search_spaces.metrics import static_metrics

        codes = np.stack([space.encode(a) for a in archs])
        try:
            values = static_metrics(space, codes, static)
            out.update({k: [float(x) for x in values[k]] for k in static})
        except NotImplementedError:
            pass
    for key in keys:
        metric, _, device = key.partition("@")
        if metric not in TABLE_METRICS or device not in tables:
            continue
        try:
            estimator = estimator_for(LatencyTable.from_dict(dict(tables[device])), space)
        except (TableError, ValueError):
            continue
        out[key] = [float(x) for x in estimator.predict(list(archs))] if archs else []
    return out
