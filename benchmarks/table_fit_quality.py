"""The fit's quality bar on the shared data: few rows of one device, validated on all the others.

    python benchmarks/table_fit_quality.py [--space nb201|fbnet] [--rows 100] [--seeds 1]

For each device: fit ``fit_table`` from ``--rows`` random rows with the shipped tables of
the *other* devices as basis (leave-one-device-out), and a plain additive (position, op)
least-squares table on the same rows; print +-10% share, Kendall tau and Spearman of
both on every other row, and how often the measured latency stays under the table's
0.95 error-band bound (``upper_bound(predicted, 0.95)``; about 95 % when the band is honest).

Beside them, what the measurements themselves allow:

* ``noise`` (+-10 % and tau): one measurement predicting another measurement of the same
  computation, where the data hold such pairs: architectures with the same
  ``canonical_hash`` that run the same multiset of ops (signatures with their position
  prefix, ``edge3:`` / ``node2:``, removed), e.g. nb201 cells whose nodes 1 and 2 swap.
  fbnet's 5,000 random rows hold none, so its noise floor is not computable here.
* ``step``: the measurements' resolution (smallest gap between distinct values) relative to
  their median; integer-ms phones show it (1 ms of a 14 ms network is 7 %).
"""

from __future__ import annotations

import argparse
import re
from collections import defaultdict

import numpy as np

from latency_tables.estimator import LatencyEstimator
from latency_tables.fit import PlainAdditive, fit_table, validation_report
from latency_tables.measurements import SHARED_DATA, read_shared
from latency_tables.ship import device_metadata
from latency_tables.table import shipped_tables
from search_spaces import get_space
from search_spaces.base import SearchSpace

_POSITION = re.compile(r"^[a-z]+\d+:")


def same_network_pairs(space: SearchSpace, archs: list[str], codes: np.ndarray) -> np.ndarray:
    """(m, 2) row indices of architectures that run the same computation (see the module docstring)."""
    counts = space.signature_matrix(codes)
    vocabulary = [_POSITION.sub("", s) for s in space.all_op_signatures()]
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, arch in enumerate(archs):
        ops: dict[str, float] = defaultdict(float)
        for j in np.flatnonzero(counts[i]):
            ops[vocabulary[j]] += counts[i, j]
        groups[(space.canonical_hash(arch), tuple(sorted(ops.items())))].append(i)
    return np.array([g[:2] for g in groups.values() if len(g) > 1], dtype=int).reshape(-1, 2)


def resolution(y: np.ndarray) -> float:
    values = np.unique(y)
    return float(np.diff(values).min() / np.median(y)) if len(values) > 1 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--space", default="nb201")
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--data", default=None, help="CSV of the shared data (default: <shared>/<space>_hw.csv)")
    args = parser.parse_args()
    space = get_space(args.space)
    archs, columns = read_shared(space, args.data or SHARED_DATA / f"{space.name}_hw.csv")
    codes = np.stack([space.encode(a) for a in archs])
    basis = shipped_tables(space.name)
    pairs = same_network_pairs(space, archs, codes)
    print(f"{space.name}, {args.rows} rows, {args.seeds} seed(s); ours vs plain additive; "
          f"noise floor from {len(pairs)} pairs of same-computation rows")
    print(f"{'device':16s} {'±10% ours':>9s} {'plain':>6s} {'tau ours':>8s} {'plain':>6s} {'rho ours':>8s} "
          f"{'plain':>6s} {'≤q95':>6s} {'noise ±10%':>10s} {'tau':>6s} {'step':>6s}")
    totals = []
    for device, y in columns.items():
        rows = []
        for seed in range(args.seeds):
            order = np.random.default_rng(1000 + seed).permutation(len(archs))
            fit_idx, val_idx = order[:args.rows], order[args.rows:]
            table = fit_table(space, [archs[i] for i in fit_idx], y[fit_idx], device=device_metadata(device),
                              source="quality check", basis=basis)
            predicted = LatencyEstimator(table, space).predict_codes(codes[val_idx])
            ours = validation_report(predicted, y[val_idx])
            plain = validation_report(PlainAdditive(space.dims, codes[fit_idx], y[fit_idx]).predict(codes[val_idx]),
                                      y[val_idx])
            covered = (float(np.mean(y[val_idx] <= table.upper_bound(predicted, 0.95)))
                       if table.residual_ratio_quantiles else float("nan"))
            rows.append([ours["within_10pct"], plain["within_10pct"], ours["kendall_tau"], plain["kendall_tau"],
                         ours["spearman"], plain["spearman"], covered])
        noise = validation_report(y[pairs[:, 1]], y[pairs[:, 0]]) if len(pairs) > 1 else None
        m = np.mean(rows, axis=0)
        totals.append(m)
        floor = f"{noise['within_10pct']:10.1%} {noise['kendall_tau']:6.3f}" if noise else f"{'-':>10s} {'-':>6s}"
        print(f"{device:16s} {m[0]:9.1%} {m[1]:6.1%} {m[2]:8.3f} {m[3]:6.3f} {m[4]:8.3f} {m[5]:6.3f} {m[6]:6.1%} "
              f"{floor} {resolution(y):6.1%}")
    m = np.mean(totals, axis=0)
    print(f"{'mean':16s} {m[0]:9.1%} {m[1]:6.1%} {m[2]:8.3f} {m[3]:6.3f} {m[4]:8.3f} {m[5]:6.3f} {m[6]:6.1%}")


if __name__ == "__main__":
    main()
