"""Fit a device's table from whole-network measurements.

Three things known about latency go into the fit (see docs/latency-tables.md):

1. A new device is close to a non-negative combination of known devices (HELP,
   Lee et al. 2021, meta-learns this from 10 samples). The combination of the
   shipped tables' entries is the *prior* table.
2. Latency is a sum of per-op terms, so every table entry is fitted as a deviation
   from the prior, shrunk towards it (ridge), and kept non-negative.
3. A plain (edge, op) sum misses what runtimes do to the graph: ops whose output is
   dead or whose input is zero, node sums, a cell whose output is constant zero
   pruning the whole network. The space's signatures name these cases
   (``SearchSpace.signature_matrix``), so they are fitted as their own entries.

The shrinkage strength (or "prior only") is chosen by k-fold cross-validation on
the measurements themselves, so 10 rows lean on the prior and 1,000 rows on the data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from latency_tables.table import Entry, LatencyTable
from search_spaces.base import SearchSpace

#: Ridge strengths tried by cross-validation (per row, in units of relative error^2).
RIDGE_GRID = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7)
PRIOR_ONLY = float("inf")
PLAIN = -1.0  # the plain (position, choice) additive model, tied inside the vocabulary
METHOD = ("non-negative combination of basis tables (HELP-style prior) + non-negative ridge of every "
          "op-signature entry towards it (dead/zero-input edges, node sums, pruned network as their own "
          "signatures), strength chosen by k-fold cross-validation")


def row_weights(latencies: np.ndarray) -> np.ndarray:
    """1/latency, so the fit minimises relative error; floored so near-zero rows
    (a network a runtime pruned away) cannot dominate."""
    return 1.0 / np.maximum(latencies, 0.2 * float(np.median(latencies)) + 1e-9)


def basis_weights(counts: np.ndarray, y: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Non-negative w with counts @ (w @ basis) ~ y in relative error. basis: (K, S)."""
    from scipy.optimize import nnls

    wt = row_weights(y)
    predictions = counts @ basis.T * wt[:, None]
    k = basis.shape[0]
    a = np.vstack([predictions, 1e-6 * np.eye(k)])
    w, _ = nnls(a, np.concatenate([y * wt, np.zeros(k)]))
    return w


def nonnegative_lstsq(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """argmin_x>=0 |a x - b|. Reduced first by QR to a square problem, so a tall ``a``
    (thousands of rows) costs no more than a short one in the active-set solver."""
    from scipy.optimize import nnls

    q, r = np.linalg.qr(a)
    qb = q.T @ b
    try:
        x = np.linalg.solve(r, qb)
        if np.all(x >= 0):  # the unconstrained optimum is feasible, hence the answer
            return x
    except np.linalg.LinAlgError:
        pass
    x, _ = nnls(r, qb, maxiter=50 * a.shape[1])
    return x


def shrink_towards(counts: np.ndarray, y: np.ndarray, prior: np.ndarray, strength: float,
                   scale: float) -> np.ndarray:
    """argmin_e>=0 sum wt^2 (counts e - y)^2 + strength * n * sum ((e - prior) / s)^2.

    ``s`` is the prior entry's own size (plus a floor), so an entry may move in
    proportion to how large it already is; without a prior it is a typical entry size.
    """
    wt = row_weights(y)
    if np.any(prior):
        s = np.abs(prior) + 0.05 * float(np.abs(prior).mean())
    else:
        s = np.full(counts.shape[1], scale)
    n, m = counts.shape
    a = np.vstack([counts * s[None, :] * wt[:, None], np.sqrt(strength * n) * np.eye(m)])
    b = np.concatenate([y * wt, np.sqrt(strength * n) * prior / s])
    return nonnegative_lstsq(a, b) * s


@dataclass
class FitResult:
    entries: np.ndarray
    strength: float
    basis_weights: dict[str, float]
    cv_error: float | None


def _fit_once(counts: np.ndarray, y: np.ndarray, basis: np.ndarray | None, strength: float,
              tying: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    if strength == PLAIN and tying is not None:
        wt = row_weights(y)
        return tying @ nonnegative_lstsq(counts @ tying * wt[:, None], y * wt), np.zeros(0)
    if basis is not None and len(basis):
        w = basis_weights(counts, y, basis)
        prior = w @ basis
    else:
        w = np.zeros(0)
        prior = np.zeros(counts.shape[1])
    if strength == PRIOR_ONLY:
        return prior, w
    scale = float(np.median(y) / max(counts.sum(axis=1).mean(), 1.0))
    return shrink_towards(counts, y, prior, strength, scale), w


def fit_entries(counts: np.ndarray, y: np.ndarray, basis: np.ndarray | None = None,
                basis_names: Sequence[str] = (), *, tying: np.ndarray | None = None, folds: int = 5,
                repeats: int = 3, seed: int = 0) -> FitResult:
    """Fit entry means from (n, S) signature counts; the strength is chosen by k-fold CV.

    Candidates: ridge towards the basis prior at every strength of ``RIDGE_GRID``, the
    prior alone, and (given ``tying``, and rows enough to fit it) the plain additive model.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # small dense solves: BLAS threads only contend, on a shared machine badly
        return _fit_entries(counts, y, basis, basis_names, tying, folds, repeats, seed)


def _fit_entries(counts: np.ndarray, y: np.ndarray, basis: np.ndarray | None, basis_names: Sequence[str],
                 tying: np.ndarray | None, folds: int, repeats: int, seed: int) -> FitResult:
    y = np.asarray(y, dtype=float)
    grid: list[float] = list(RIDGE_GRID)
    if basis is not None and len(basis):
        grid.append(PRIOR_ONLY)
    if tying is not None and len(y) >= 2 * tying.shape[1]:
        grid.append(PLAIN)
    best, best_error = grid[0], None
    k = min(folds, len(y))
    if k >= 2 and len(grid) > 1:
        errors = np.zeros(len(grid))
        for repeat in range(repeats):  # repeated k-fold: one split of 100 rows is a noisy judge
            fold_of = np.random.default_rng(seed + repeat).permutation(len(y)) % k
            for f in range(k):
                train, test = fold_of != f, fold_of == f
                for g, strength in enumerate(grid):
                    entries, _ = _fit_once(counts[train], y[train], basis, strength, tying)
                    errors[g] += float((np.abs(counts[test] @ entries - y[test]) * row_weights(y)[test]).sum())
        errors /= repeats * len(y)
        best_error = float(errors.min())
        best = grid[int(errors.argmin())]
    entries, w = _fit_once(counts, y, basis, best, tying)
    return FitResult(entries, best, {name: float(v) for name, v in zip(basis_names, w) if v > 0}, best_error)


def fit_table(space: SearchSpace, archs: Sequence[str], latencies: Sequence[float], *,
              device: dict[str, Any], source: str, basis: Sequence[LatencyTable] = (),
              seed: int = 0, metric: str = "latency_ms") -> LatencyTable:
    """A whole-space table for ``device`` from measured architectures.

    ``basis``: tables of other devices for the same space (same-named ones and ones
    without ``metric`` are left out). ``metric`` names what was measured: the entry means
    of the result are in its unit (``energy_mj``: merge them into a latency table with
    ``with_energy``).
    """
    if len(archs) != len(latencies) or not len(archs):
        raise ValueError("need at least one (arch, latency) row")
    y = np.asarray(latencies, dtype=float)
    if not np.all(np.isfinite(y)) or np.any(y < 0):
        raise ValueError("latencies must be finite and non-negative")
    vocabulary = space.all_op_signatures()
    counts = space.signature_matrix(np.stack([space.encode(a) for a in archs]))
    usable = [t for t in basis
              if t.space == space.name and t.device_name != device["name"] and t.has_metric(metric)]
    basis_matrix = np.stack([t.values(vocabulary, metric) for t in usable]) if usable else None
    result = fit_entries(counts, y, basis_matrix, [t.device_name for t in usable], tying=space.plain_tying(),
                         seed=seed)
    residual = y - counts @ result.entries
    seen = counts.sum(axis=0)
    entries = {sig: Entry(mean=float(v), std=0.0, count=max(1, int(seen[j])))
               for j, (sig, v) in enumerate(zip(vocabulary, result.entries))}
    return LatencyTable(
        device=device, space=space.name, entries=entries, corrections={},
        provenance={"source": source, "metric": metric, "method": METHOD, "rows": int(len(y)),
                    "date": dt.date.today().isoformat(),
                    "model": ("basis prior only" if result.strength == PRIOR_ONLY else
                              "plain additive (tied entries)" if result.strength == PLAIN else
                              "ridge towards the basis prior" if usable else "ridge"),
                    "ridge_strength": result.strength if result.strength in RIDGE_GRID else None,
                    "basis_weights": result.basis_weights,
                    "cv_relative_error": result.cv_error,
                    "residual_std_ms": float(residual.std())},
    )


def with_energy(table: LatencyTable, energy: LatencyTable) -> LatencyTable:
    """``table`` with every entry's ``energy_mj`` set from the means of a table fitted on
    energy (``fit_table(..., metric="energy_mj")``); its provenance goes under ``energy_mj``."""
    if (table.space, table.device_name) != (energy.space, energy.device_name):
        raise ValueError(f"energy fitted for {energy.device_name!r} ({energy.space}) cannot go into the table "
                         f"of {table.device_name!r} ({table.space})")
    entries = {sig: Entry(e.mean, e.std, e.count, energy.entries[sig].mean) for sig, e in table.entries.items()
               if sig in energy.entries}
    if len(entries) != len(table.entries):
        missing = sorted(set(table.entries) - set(energy.entries))
        raise ValueError(f"energy fit lacks entries {missing[:3]}")
    return LatencyTable(device=table.device, space=table.space, entries=entries, metric=table.metric,
                        corrections={**table.corrections, "intercept_mj": energy.intercept_of("latency_ms")},
                        provenance={**table.provenance, "energy_mj": energy.provenance},
                        validation=table.validation, version=table.version)


class PlainAdditive:
    """The baseline: ordinary least squares over one-hot (position, choice) plus an intercept."""

    def __init__(self, dims: Sequence[int], codes: np.ndarray, latencies: np.ndarray):
        self.dims = list(dims)
        self.coef = np.linalg.lstsq(self._design(codes), np.asarray(latencies, float), rcond=None)[0]

    def _design(self, codes: np.ndarray) -> np.ndarray:
        codes = np.atleast_2d(codes)
        columns = [np.ones(len(codes))]
        for p, d in enumerate(self.dims):
            columns += [codes[:, p] == c for c in range(d)]
        return np.stack(columns, axis=1).astype(float)

    def predict(self, codes: np.ndarray) -> np.ndarray:
        return self._design(codes) @ self.coef


def validation_report(predicted: np.ndarray, measured: np.ndarray) -> dict[str, float]:
    from scipy.stats import kendalltau, spearmanr

    predicted, measured = np.asarray(predicted, float), np.asarray(measured, float)
    rel = np.abs(predicted - measured) / np.maximum(measured, 1e-9)
    return {
        "n": int(len(measured)),
        "within_5pct": float((rel <= 0.05).mean()),
        "within_10pct": float((rel <= 0.10).mean()),
        "mape": float(rel.mean()),
        "kendall_tau": float(kendalltau(predicted, measured).statistic),
        "spearman": float(spearmanr(predicted, measured).statistic),
    }
