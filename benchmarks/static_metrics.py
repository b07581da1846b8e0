"""Time computing every static metric for all 15,625 nb201 architectures (the bar: under 1 s).

Run: .venv/bin/python benchmarks/static_metrics.py
Cold: the per-cell peak table is built inside the timing (first use in a process).
"""

from __future__ import annotations

import time

import numpy as np

from search_spaces import get_space, nb201_metrics
from search_spaces.metrics import STATIC_METRICS, static_metrics


def main(repeats: int = 3) -> None:
    space = get_space("nb201")
    times = []
    for _ in range(repeats):
        nb201_metrics._cell_table.cache_clear()
        started = time.perf_counter()
        values = static_metrics(space, space.largest_codes())
        times.append(time.perf_counter() - started)
    print(f"{len(STATIC_METRICS)} metrics x {len(values['params']):,} nb201 architectures: "
          f"best {min(times):.3f} s, median {float(np.median(times)):.3f} s (cold, {repeats} runs)")
    for name, v in values.items():
        print(f"  {name:22s} {v.min():>14,.1f} .. {v.max():>14,.1f}")


if __name__ == "__main__":
    main()
