"""Does a device's refit after a verified job keep its ranking quality? On the shared nb201 data.

    .venv/bin/python benchmarks/refit_quality.py [--seeds 2]

For each of the 14 devices of ``nb201_hw.csv`` (its own shipped table left out of the basis, the
FLOPs pseudo-device added, as onboarding does): fit from the 20 references onboarding would pick,
then add what a verified job measures (the 5 most accurate members of the front of 1,000 random
networks, predicted by the first table) and fit again from the 25 rows. Prints both tables'
Kendall tau and +-10 % share on 2,000 other rows, the models chosen, and the means.
"""

from __future__ import annotations

import argparse
import csv

import numpy as np

from latency_tables.estimator import LatencyEstimator
from latency_tables.fit import fit_table, validation_report
from latency_tables.measurements import SHARED_DATA, read_shared
from latency_tables.ship import device_metadata
from latency_tables.table import shipped_tables
from nas.devices.onboard import choose_references, with_flops
from search_spaces import get_space


def front_by_accuracy(accuracy: np.ndarray, latency: np.ndarray, rows: np.ndarray) -> list[int]:
    """Rows on the (max accuracy, min latency) front, most accurate first."""
    front, fastest = [], np.inf
    for j in np.lexsort((latency, -accuracy)):
        if latency[j] < fastest:
            front.append(int(rows[j]))
            fastest = latency[j]
    return front


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args()
    space = get_space("nb201")
    archs, columns = read_shared(space)
    with open(SHARED_DATA / "nb201_hw.csv", newline="") as f:
        accuracy = np.array([float(r["cifar10_acc"]) for r in csv.DictReader(f)])
    index = {space.canonical_hash(a): i for i, a in enumerate(archs)}
    codes = np.stack([space.encode(a) for a in archs])
    tables = shipped_tables("nb201")
    results = []
    print(f"{'device':16s} seed  tau before -> after   ±10% before -> after   models")
    for device, y in columns.items():
        basis = with_flops(space, [t for t in tables if t.device_name != device])
        for seed in range(args.seeds):
            refs = [index[space.canonical_hash(a)] for a in choose_references(space, basis, 20, seed)]
            first = fit_table(space, [archs[i] for i in refs], y[refs], device=device_metadata(device),
                              source="refit check", basis=basis, seed=seed)
            pool = np.random.default_rng(100 + seed).choice(len(archs), 1000, replace=False)
            verified = front_by_accuracy(accuracy[pool], LatencyEstimator(first, space).predict_codes(codes[pool]),
                                         pool)[:5]
            rows = list(dict.fromkeys(refs + verified))
            refit = fit_table(space, [archs[i] for i in rows], y[rows], device=device_metadata(device),
                              source="refit check", basis=basis)
            held = np.random.default_rng(7).choice(np.setdiff1d(np.arange(len(archs)), rows), 2000, replace=False)
            before, after = (validation_report(LatencyEstimator(t, space).predict_codes(codes[held]), y[held])
                             for t in (first, refit))
            results.append((before["kendall_tau"], after["kendall_tau"], before["within_10pct"], after["within_10pct"]))
            print(f"{device:16s} {seed:4d}  {before['kendall_tau']:.3f} -> {after['kendall_tau']:.3f}"
                  f"          {before['within_10pct']:5.1%} -> {after['within_10pct']:5.1%}"
                  f"        {first.provenance['model']} / {refit.provenance['model']}", flush=True)
    m = np.mean(results, axis=0)
    worse = sum(r[1] < r[0] - 0.01 for r in results)
    print(f"mean tau {m[0]:.3f} -> {m[1]:.3f}; ±10% {m[2]:.1%} -> {m[3]:.1%}; "
          f"refits losing more than 0.01 tau: {worse} of {len(results)}")


if __name__ == "__main__":
    main()
