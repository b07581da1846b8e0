"""Kendall tau of each zero-cost proxy against NAS-Bench-201 cifar10 accuracy.

    .venv/bin/python benchmarks/proxy_tau.py [--archs 200] [--dataset digits] [--seed 0]

Samples architectures (distinct functions) from the measured table, scores each
with every proxy on one seeded minibatch of the dataset (scikit-learn's digits
unless an .npz is given) and prints tau and the seconds per architecture. A
proxy that is not finite for a cell (e.g. naswot on a cell that outputs zeros)
ranks it last.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau

from nas.evaluators import PROXIES, ProxyEvaluator, load_dataset, read_benchmark_csv
from search_spaces import get_space

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", default=str(ROOT.parent / "shared" / "data" / "nb201_hw.csv"))
    parser.add_argument("--archs", type=int, default=200)
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    space = get_space("nb201")
    data = read_benchmark_csv(args.csv, space)
    rng = np.random.default_rng(args.seed)
    archs: list[str] = []
    seen: set[str] = set()
    for i in rng.permutation(len(data.rows)):
        arch = list(data.rows)[i]
        key = space.canonical_hash(arch)
        if key not in seen:
            seen.add(key)
            archs.append(arch)
        if len(archs) == args.archs:
            break
    accuracy = np.array([data.rows[a]["cifar10_acc"] for a in archs])
    dataset = load_dataset(args.dataset, seed=args.seed)
    print(f"{len(archs)} nb201 architectures, minibatch of {args.batch_size} from {args.dataset}, seed {args.seed}")
    print(f"{'proxy':<10} {'kendall tau':>11} {'s/arch':>8}")
    for proxy in PROXIES:
        evaluator = ProxyEvaluator(space, dataset, proxy=proxy, seed=args.seed, batch_size=args.batch_size)
        started = time.perf_counter()
        scores = []
        for arch in archs:
            result = evaluator.score(arch)
            scores.append(result.metrics["accuracy"] if result.metrics else -math.inf)
        elapsed = (time.perf_counter() - started) / len(archs)
        finite = np.array(scores, dtype=float)
        finite[~np.isfinite(finite)] = np.nanmin(finite[np.isfinite(finite)]) - 1.0
        tau = kendalltau(finite, accuracy)[0]
        print(f"{proxy:<10} {tau:>11.3f} {elapsed:>8.3f}", flush=True)


if __name__ == "__main__":
    main()
