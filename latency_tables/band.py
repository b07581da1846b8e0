"""A table's per-prediction error band: quantiles of measured / predicted latency on held-out rows.

The band is stored in the validation block as ``residual_ratio_quantiles`` (keys
``"0.025"`` … ``"0.975"``); the upper bound at confidence c is predicted × quantile(c).
``quantiles_of`` prefers ``LatencyTable.residual_ratio_quantiles`` where the table class
has it, so this module is a thin fallback beside the fit's own computation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from latency_tables.table import LatencyTable

LEVELS = (0.025, 0.05, 0.16, 0.5, 0.84, 0.95, 0.975)


def residual_ratio_quantiles(predicted: np.ndarray, measured: np.ndarray) -> dict[str, float]:
    """Quantiles of measured / predicted (rows with a positive prediction), keyed as strings."""
    predicted, measured = np.asarray(predicted, float), np.asarray(measured, float)
    ok = predicted > 0
    ratio = measured[ok] / predicted[ok]
    if not len(ratio):
        return {}
    return {f"{q:g}": float(np.quantile(ratio, q)) for q in LEVELS}


def quantiles_of(table: LatencyTable) -> dict[float, float] | None:
    """The table's band as {level: ratio}, or None when it has none."""
    own = getattr(table, "residual_ratio_quantiles", None)
    if isinstance(own, Mapping) and own:
        return {float(k): float(v) for k, v in own.items()}
    raw = (table.validation or {}).get("residual_ratio_quantiles")
    if not isinstance(raw, Mapping) or not raw:
        return None
    return {float(k): float(v) for k, v in raw.items()}


def ratio_at(quantiles: Mapping[float, float], level: float) -> float:
    """The ratio at ``level``, interpolated linearly between stored levels (clamped at the ends)."""
    levels = sorted(quantiles)
    values = [quantiles[q] for q in levels]
    if not math.isfinite(level):
        raise ValueError("level must be finite")
    return float(np.interp(level, levels, values))
