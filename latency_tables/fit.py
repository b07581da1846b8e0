"""Fit a device's table from whole-network measurements.

Three things known about latency go into the fit (see docs/latency-tables.md):

1. A new device is close to a non-negative combination of known devices (HELP,
   Lee et al. 2021, meta-learns this from 10 samples). The combination of the
   shipped tables' entries is the *prior* table; optionally each op type's part of
   it (convolutions, pools, per-network overhead, ...) is rescaled on its own, since
   a new device often resembles one known device in its convolutions and another in
   its fixed costs.
2. Latency is a sum of per-op terms, so every table entry is fitted as a deviation
   from the prior, shrunk towards it (ridge), and kept non-negative.
3. A plain (edge, op) sum misses what runtimes do to the graph: ops whose output is
   dead or whose input is zero, node sums, a cell whose output is constant zero
   pruning the whole network. The space's signatures name these cases
   (``SearchSpace.signature_matrix``), so they are fitted as their own entries.

The prior (plain combination or op-type scaled), the shrinkage strength (or "prior
only") are chosen by k-fold cross-validation on the measurements themselves (from under
50 rows, the least complex model within one standard error of the best), so 10 rows lean
on the prior and 1,000 rows on the data. The same cross-validation's
out-of-fold predictions then give (from 50 rows) one factor on every entry that puts the
most rows within +-10 % (``within_10_scale``; ranks unchanged) and the table's error band,
quantiles of measured / predicted stored as ``validation.residual_ratio_quantiles``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from latency_tables.table import QUANTILE_LEVELS, Entry, LatencyTable
from search_spaces.base import SearchSpace

#: Ridge strengths tried by cross-validation (per row, in units of relative error^2).
RIDGE_GRID = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7)
PRIOR_ONLY = float("inf")
CV_FOLDS, CV_REPEATS = 5, 3
PLAIN = -1.0  # the plain (position, choice) additive model, tied inside the vocabulary
#: Ridge of the per-op-type scales of the basis prior towards 1, tried by cross-validation
#: (0 = no per-op-type scales: the plain combination).
TYPE_SCALE_GRID = (0.0, 1e-1, 1e-3)
METHOD = ("non-negative combination of basis tables (HELP-style prior), optionally rescaled per op type + "
          "non-negative ridge of every op-signature entry towards it (dead/zero-input edges, node sums, pruned "
          "and constant cells as their own signatures); prior and strength chosen by k-fold cross-validation")


def signature_group(signature: str) -> str:
    """The op type a signature belongs to (``edge3:nor_conv_3x3:dead_output`` -> ``nor_conv_3x3``,
    ``k5_e6:24x32x32->32/s2`` -> ``k5_e6``, node sums and network terms by kind). The profile's
    calibration and the fit's prior each scale one op type as a whole."""
    head = signature.split(":")
    if head[0].startswith("edge"):
        return head[1]
    if head[0].startswith("node"):
        return "node_sum"
    if head[0] in ("network", "input"):
        return "network"
    return head[0]


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


def type_scaled_prior(counts: np.ndarray, y: np.ndarray, basis: np.ndarray, types: np.ndarray,
                      ridge: float, iterations: int = 8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Prior ``(w @ basis) * scale[type]``: basis weights ``w`` and one scale per op type,
    fitted alternately in relative error, the scales ridge-shrunk towards 1.

    types: (G, S) 0/1 matrix, one row per op type. Returns (prior, w, scales).
    """
    wt = row_weights(y)
    n, g = len(y), types.shape[0]
    scales = np.ones(g)
    w = np.zeros(basis.shape[0])
    for _ in range(iterations):
        w = basis_weights(counts, y, basis * (scales @ types)[None, :])
        per_type = (counts * (w @ basis)[None, :]) @ types.T  # (n, G): each type's share of the prior
        a = np.vstack([per_type * wt[:, None], np.sqrt(ridge * n) * np.eye(g)])
        b = np.concatenate([y * wt, np.sqrt(ridge * n) * np.ones(g)])
        scales = nonnegative_lstsq(a, b)
    return (w @ basis) * (scales @ types), w, scales


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
    #: Per-op-type scales of the basis prior (empty when the plain combination was chosen).
    type_scales: dict[str, float] = field(default_factory=dict)
    type_ridge: float = 0.0
    #: Out-of-fold predictions of the chosen model, one row per CV repeat: (repeats, n), or None
    #: when there were too few rows to cross-validate.
    oof_predictions: np.ndarray | None = None


@dataclass(frozen=True)
class Candidate:
    """One model cross-validation can choose: which prior, and how strongly entries shrink to it."""

    strength: float  # a RIDGE_GRID value, PRIOR_ONLY or PLAIN
    type_ridge: float = 0.0  # 0: plain combination prior; else per-op-type scales, this ridge

    @property
    def complexity(self) -> int:
        """How freely the model follows the rows: the prior alone is the most constrained, then ever
        weaker ridges, then the plain additive model; per-op-type scales (weaker ridge: freer) add to it."""
        strengths = [PRIOR_ONLY, *sorted(RIDGE_GRID, reverse=True), PLAIN]
        type_ridges = [0.0, *sorted((r for r in TYPE_SCALE_GRID if r > 0), reverse=True)]
        return strengths.index(self.strength) + type_ridges.index(self.type_ridge)


#: Fits from fewer rows pick their model by ``one_standard_error_choice``; from more, the minimum. On the
#: shared data the rule moves 10-row fits little (nb201 tau 0.890 -> 0.893, fbnet 0.792 -> 0.789) and mends
#: refits from 25 rows (a weak ridge had lowered a refit's held-out tau from 0.89 to 0.84); from 100 rows
#: it is mixed (nb201 0.904 -> 0.906, fbnet 0.859 -> 0.853: eyeriss 0.933 -> 0.845 on the prior alone).
ONE_SE_BELOW_ROWS = 50


def one_standard_error_choice(errors: np.ndarray, complexity: Sequence[int]) -> int:
    """The least complex candidate whose cross-validated error is within one standard error of the best.

    errors: (candidates, rows), each row's out-of-fold error. The minimum over two dozen candidates
    estimated from 20-30 rows is biased towards the freest model (it fits that sample's noise best):
    a weak ridge picked from 25 rows lowered a table's held-out tau from 0.89 to 0.84. The standard
    error is that of the paired per-row difference to the best candidate. Ties in complexity go to the
    lower error.
    """
    mean = errors.mean(axis=1)
    best = int(mean.argmin())
    n = errors.shape[1]
    if n < 2:
        return best
    difference = errors - errors[best][None, :]
    standard_error = difference.std(axis=1, ddof=1) / np.sqrt(n)
    eligible = np.flatnonzero(mean - mean[best] <= standard_error + 1e-15)
    return int(min(eligible, key=lambda g: (complexity[g], mean[g])))


def _prior(counts: np.ndarray, y: np.ndarray, basis: np.ndarray | None, types: np.ndarray | None,
           type_ridge: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if basis is None or not len(basis):
        return np.zeros(counts.shape[1]), np.zeros(0), np.zeros(0)
    if type_ridge > 0 and types is not None:
        return type_scaled_prior(counts, y, basis, types, type_ridge)
    w = basis_weights(counts, y, basis)
    return w @ basis, w, np.zeros(0)


def _shrunk(counts: np.ndarray, y: np.ndarray, prior: np.ndarray, strength: float,
            tying: np.ndarray | None) -> np.ndarray:
    if strength == PLAIN and tying is not None:
        wt = row_weights(y)
        return tying @ nonnegative_lstsq(counts @ tying * wt[:, None], y * wt)
    if strength == PRIOR_ONLY:
        return prior
    scale = float(np.median(y) / max(counts.sum(axis=1).mean(), 1.0))
    return shrink_towards(counts, y, prior, strength, scale)


def fit_entries(counts: np.ndarray, y: np.ndarray, basis: np.ndarray | None = None,
                basis_names: Sequence[str] = (), *, tying: np.ndarray | None = None,
                op_types: Sequence[str] | None = None, folds: int = CV_FOLDS, repeats: int = CV_REPEATS,
                seed: int = 0) -> FitResult:
    """Fit entry means from (n, S) signature counts; the model is chosen by k-fold CV.

    Candidates: ridge towards the basis prior at every strength of ``RIDGE_GRID`` and the
    prior alone, for the plain combination prior and (given ``op_types``, the op type of
    each of the S signatures) the per-op-type scaled prior at each ``TYPE_SCALE_GRID``
    ridge; and (given ``tying``, and rows enough to fit it) the plain additive model.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # small dense solves: BLAS threads only contend, on a shared machine badly
        return _fit_entries(counts, y, basis, basis_names, tying, op_types, folds, repeats, seed)


def _candidates(n_rows: int, has_basis: bool, tying: np.ndarray | None, has_types: bool) -> list[Candidate]:
    strengths: list[float] = list(RIDGE_GRID) + ([PRIOR_ONLY] if has_basis else [])
    type_ridges = [r for r in TYPE_SCALE_GRID if r == 0 or (has_basis and has_types)]
    grid = [Candidate(s, r) for r in type_ridges for s in strengths]
    if tying is not None and n_rows >= 2 * tying.shape[1]:
        grid.append(Candidate(PLAIN))
    return grid


def _fit_entries(counts: np.ndarray, y: np.ndarray, basis: np.ndarray | None, basis_names: Sequence[str],
                 tying: np.ndarray | None, op_types: Sequence[str] | None, folds: int, repeats: int,
                 seed: int) -> FitResult:
    y = np.asarray(y, dtype=float)
    has_basis = basis is not None and len(basis) > 0
    type_names = sorted(set(op_types)) if op_types is not None else []
    types = (np.array([[t == g for t in op_types] for g in type_names], dtype=float)
             if op_types is not None else None)
    grid = _candidates(len(y), has_basis, tying, types is not None)
    best, best_error, oof = grid[0], None, None
    k = min(folds, len(y))
    if k >= 2:
        errors = np.zeros((len(grid), len(y)))  # each row's weighted absolute error, summed over repeats
        predictions = np.zeros((len(grid), repeats, len(y)))
        for repeat in range(repeats):  # repeated k-fold: one split of 100 rows is a noisy judge
            fold_of = np.random.default_rng(seed + repeat).permutation(len(y)) % k
            for f in range(k):
                train, test = fold_of != f, fold_of == f
                priors: dict[float, np.ndarray] = {}
                for g, candidate in enumerate(grid):
                    if candidate.type_ridge not in priors:
                        priors[candidate.type_ridge] = _prior(counts[train], y[train], basis, types,
                                                              candidate.type_ridge)[0]
                    entries = _shrunk(counts[train], y[train], priors[candidate.type_ridge], candidate.strength,
                                      tying)
                    predictions[g, repeat, test] = counts[test] @ entries
                    errors[g, test] += np.abs(predictions[g, repeat, test] - y[test]) * row_weights(y)[test]
        errors /= repeats
        chosen = (one_standard_error_choice(errors, [c.complexity for c in grid]) if len(y) < ONE_SE_BELOW_ROWS
                  else int(errors.mean(axis=1).argmin()))
        best, best_error, oof = grid[chosen], float(errors[chosen].mean()), predictions[chosen]
    prior, w, scales = _prior(counts, y, basis, types, best.type_ridge)
    entries = _shrunk(counts, y, prior, best.strength, tying)
    return FitResult(entries, best.strength,
                     {name: float(v) for name, v in zip(basis_names, w) if v > 0} if best.strength != PLAIN else {},
                     best_error, dict(zip(type_names, scales.tolist())) if len(scales) else {}, best.type_ridge,
                     oof)


#: Rows from which ``fit_table`` applies ``within_10_scale``: from 10 or 30 rows of nb201's phones and
#: CPUs the factor the out-of-fold predictions pick lowers +-10 % on the other rows, from 50 on it lifts it.
MIN_SCALE_ROWS = 50
#: Scales of the fitted table tried by ``within_10_scale`` (a whole-table factor, so ranks stay).
SCALE_GRID = np.round(np.arange(0.85, 1.15 + 1e-9, 0.0025), 4)


def within_10_scale(oof: np.ndarray, y: np.ndarray, window: int = 8, margin: float = 0.02) -> float:
    """The factor on every entry that puts the most out-of-fold predictions within +-10 % of
    their measurement, or 1 unless it gains at least ``margin`` of them and two rows' worth
    (10 rows cannot tell a shift from noise).

    The relative least squares centres predictions on the *mean* ratio, which heavy tails (a
    network a runtime pruned, a timing spike) and integer-ms rounding pull away from where most
    rows sit; +-10 % counts the bulk. Scores are averaged over +-``window`` grid steps (a few
    rows must not pick a spike), ties go to the factor nearest 1. Kendall tau and Spearman are
    unchanged by construction.
    """
    oof = np.atleast_2d(oof)
    within = np.array([(np.abs(s * oof - y[None, :]) <= 0.1 * y[None, :]).mean() for s in SCALE_GRID])
    smooth = np.convolve(within, np.ones(2 * window + 1) / (2 * window + 1), mode="same")
    smooth[:window] = smooth[-window:] = -1.0  # edges average over fewer steps
    best = np.flatnonzero(smooth >= smooth.max() - 1e-12)
    pick = int(best[np.argmin(np.abs(SCALE_GRID[best] - 1.0))])
    at_one = int(np.argmin(np.abs(SCALE_GRID - 1.0)))
    gain = max(margin, 2.0 / len(y))
    return float(SCALE_GRID[pick]) if within[pick] >= within[at_one] + gain - 1e-12 else 1.0


def ratio_quantiles(measured: np.ndarray, predicted: np.ndarray, rows: int | None = None) -> dict[str, float] | None:
    """The error band: quantiles of measured / predicted at ``QUANTILE_LEVELS``, keyed "0.025" ...

    ``measured``/``predicted`` may hold several predictions per row (repeated cross-validation);
    ``rows`` is the number of distinct rows (default: their length). The level of each quantile is
    moved outwards to the conformal rank ceil((rows + 1) q) (upper levels) or floor((rows + 1) q)
    (lower) out of ``rows``, so that few rows give a wider band rather than an overconfident one:
    with 10 rows the 0.95 bound is the largest ratio seen. Rows predicted at <= 0 carry no ratio.
    """
    measured, predicted = np.ravel(measured).astype(float), np.ravel(predicted).astype(float)
    keep = predicted > 0
    if not keep.any():
        return None
    ratio = measured[keep] / predicted[keep]
    n = rows if rows is not None else len(ratio)
    out = {}
    for q in QUANTILE_LEVELS:
        if q > 0.5:
            level = min(1.0, np.ceil((n + 1) * q) / n)
        elif q < 0.5:
            level = max(0.0, np.floor((n + 1) * q) / n)
        else:
            level = 0.5
        out[f"{q:g}"] = float(np.quantile(ratio, level))
    return out


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
                         op_types=[signature_group(s) for s in vocabulary], seed=seed)
    scale = 1.0
    if result.oof_predictions is not None and len(y) >= MIN_SCALE_ROWS:
        scale = within_10_scale(result.oof_predictions, y)
        result.entries, result.oof_predictions = result.entries * scale, result.oof_predictions * scale
    residual = y - counts @ result.entries
    seen = counts.sum(axis=0)
    band = (ratio_quantiles(np.broadcast_to(y, result.oof_predictions.shape), result.oof_predictions, len(y))
            if result.oof_predictions is not None else None)
    entries = {sig: Entry(mean=float(v), std=0.0, count=max(1, int(seen[j])))
               for j, (sig, v) in enumerate(zip(vocabulary, result.entries))}
    return LatencyTable(
        device=device, space=space.name, entries=entries, corrections={},
        provenance={"source": source, "metric": metric, "method": METHOD, "rows": int(len(y)),
                    "date": dt.date.today().isoformat(),
                    "model": _model_name(result, bool(usable)),
                    "ridge_strength": result.strength if result.strength in RIDGE_GRID else None,
                    "basis_weights": result.basis_weights,
                    "op_type_scales": result.type_scales,
                    "cv_relative_error": result.cv_error,
                    "within_10_scale": scale,
                    "residual_std_ms": float(residual.std())},
        validation=({"held_out": False,
                     "source": f"out-of-fold predictions of {_folds(len(y))}-fold cross-validation on the {len(y)} "
                               f"fitted rows (band over {len(result.oof_predictions)} repeats)",
                     **_finite_report(validation_report(result.oof_predictions[0], y)),
                     "residual_ratio_quantiles": band}
                    if band and len(y) >= 2 else {}),
    )


def _finite_report(report: dict[str, float]) -> dict[str, float | None]:
    """A rank statistic of rows that all tie is NaN, which JSON cannot hold: None instead."""
    return {k: (v if np.isfinite(v) else None) for k, v in report.items()}


def _folds(rows: int) -> int:
    return min(CV_FOLDS, rows)


def _model_name(result: FitResult, has_basis: bool) -> str:
    if result.strength == PLAIN:
        return "plain additive (tied entries)"
    if not has_basis:
        return "ridge"
    prior = "op-type-scaled basis prior" if result.type_scales else "basis prior"
    return f"{prior} only" if result.strength == PRIOR_ONLY else f"ridge towards the {prior}"


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
