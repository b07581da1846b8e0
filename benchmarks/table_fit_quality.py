"""The fit's quality bar on the shared data: few rows of one device, validated on all the others.

    python benchmarks/table_fit_quality.py [--space nb201] [--rows 100] [--seeds 1]

For each device: fit ``fit_table`` from ``--rows`` random rows with the shipped tables of
the *other* devices as basis (leave-one-device-out), and a plain additive (position, op)
least-squares table on the same rows; print +-10% share, Kendall tau and Spearman of
both on every other row.
"""

from __future__ import annotations

import argparse

import numpy as np

from latency_tables.estimator import LatencyEstimator
from latency_tables.fit import PlainAdditive, fit_table, validation_report
from latency_tables.measurements import read_shared
from latency_tables.ship import device_metadata
from latency_tables.table import shipped_tables
from search_spaces import get_space


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--space", default="nb201")
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=1)
    args = parser.parse_args()
    space = get_space(args.space)
    archs, columns = read_shared(space)
    codes = np.stack([space.encode(a) for a in archs])
    basis = shipped_tables(space.name)
    print(f"{space.name}, {args.rows} rows, {args.seeds} seed(s); ours vs plain additive")
    print(f"{'device':16s} {'±10% ours':>9s} {'plain':>6s} {'tau ours':>8s} {'plain':>6s} {'rho ours':>8s} {'plain':>6s}")
    totals = []
    for device, y in columns.items():
        rows = []
        for seed in range(args.seeds):
            order = np.random.default_rng(1000 + seed).permutation(len(archs))
            fit_idx, val_idx = order[:args.rows], order[args.rows:]
            table = fit_table(space, [archs[i] for i in fit_idx], y[fit_idx], device=device_metadata(device),
                              source="quality check", basis=basis)
            ours = validation_report(LatencyEstimator(table, space).predict_codes(codes[val_idx]), y[val_idx])
            plain = validation_report(PlainAdditive(space.dims, codes[fit_idx], y[fit_idx]).predict(codes[val_idx]),
                                      y[val_idx])
            rows.append([ours["within_10pct"], plain["within_10pct"], ours["kendall_tau"], plain["kendall_tau"],
                         ours["spearman"], plain["spearman"]])
        m = np.mean(rows, axis=0)
        totals.append(m)
        print(f"{device:16s} {m[0]:9.1%} {m[1]:6.1%} {m[2]:8.3f} {m[3]:6.3f} {m[4]:8.3f} {m[5]:6.3f}")
    m = np.mean(totals, axis=0)
    print(f"{'mean':16s} {m[0]:9.1%} {m[1]:6.1%} {m[2]:8.3f} {m[3]:6.3f} {m[4]:8.3f} {m[5]:6.3f}")


if __name__ == "__main__":
    main()
