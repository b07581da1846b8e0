"""Fit a table from whole-network measurements: additive (position, op) least squares."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import numpy as np

from latency_tables.table import Entry, LatencyTable
from search_spaces.base import SearchSpace


def fit_additive(space: SearchSpace, archs: Sequence[str], latencies: Sequence[float], *,
                 device: dict[str, Any], source: str) -> LatencyTable:
    """Non-negative least squares over one-hot (position, choice) features plus an intercept.

    Non-negative so that no architecture is predicted below zero, however far it is
    from the measured ones.
    """
    from scipy.optimize import nnls

    codes = np.stack([space.encode(a) for a in archs])
    y = np.asarray(latencies, dtype=float)
    columns = [(p, c) for p, d in enumerate(space.dims) for c in range(d)]
    x = np.zeros((len(codes), len(columns) + 1))
    x[:, 0] = 1.0
    for j, (p, c) in enumerate(columns, start=1):
        x[:, j] = codes[:, p] == c
    coef, _ = nnls(x, y)
    residual = y - x @ coef
    std = float(residual.std()) if len(y) > 1 else 0.0
    intercept = float(coef[0])
    entries: dict[str, Entry] = {}
    for j, (p, c) in enumerate(columns, start=1):
        (sig,) = space.position_signatures(p, c)
        entries[sig] = Entry(mean=float(coef[j]), std=std, count=max(1, int((codes[:, p] == c).sum())))
    return LatencyTable(
        device=device, space=space.name, entries=entries,
        corrections={"intercept_ms": intercept},
        provenance={"source": source, "method": "non-negative least squares over (position, op)",
                    "rows": len(y), "date": dt.date.today().isoformat()},
    )


def validation_report(predicted: np.ndarray, measured: np.ndarray) -> dict[str, float]:
    from scipy.stats import kendalltau, spearmanr

    rel = np.abs(predicted - measured) / np.maximum(measured, 1e-9)
    return {
        "n": int(len(measured)),
        "within_5pct": float((rel <= 0.05).mean()),
        "within_10pct": float((rel <= 0.10).mean()),
        "mape": float(rel.mean()),
        "kendall_tau": float(kendalltau(predicted, measured).statistic),
        "spearman": float(spearmanr(predicted, measured).statistic),
    }
