"""Estimator throughput on one core.

    python benchmarks/estimator_throughput.py [--n 1000000]

Prints architectures per second for ``predict_codes`` (the vectorised path the
search engine and strategies use) for each space, and for ``predict`` from strings
(which is bound by parsing the strings, not by the table).
"""

from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")  # one core, before numpy starts its thread pool

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from latency_tables import LatencyEstimator, shipped_tables  # noqa: E402
from search_spaces import get_space  # noqa: E402


def best_rate(fn, n: int, repeats: int = 5) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return n / best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1_000_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    for space_name in ("nb201", "fbnet"):
        space = get_space(space_name)
        table = next(t for t in shipped_tables(space_name) if t.device_name == "pixel3")
        start = time.perf_counter()
        estimator = LatencyEstimator(table, space)
        setup = time.perf_counter() - start
        codes = np.stack([rng.integers(0, d, size=args.n) for d in space.dims], axis=1)
        rate = best_rate(lambda: estimator.predict_codes(codes), args.n)
        archs = [space.sample(rng) for _ in range(20_000)]
        string_rate = best_rate(lambda: estimator.predict(archs), len(archs), repeats=2)
        print(f"{space_name}: predict_codes {rate:,.0f} archs/s on one core "
              f"({args.n:,} archs; estimator set-up {setup * 1000:.0f} ms); "
              f"predict from strings {string_rate:,.0f} archs/s")


if __name__ == "__main__":
    main()
