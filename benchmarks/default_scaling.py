"""Strategy time per evaluation of ``default`` as a job grows (issue: <= 20 ms at 2,000).

    .venv/bin/python benchmarks/default_scaling.py [--budget 2000] [--device pixel3] [--seed 0]

Runs nb201 / cifar10 accuracy from ../shared/data/nb201_hw.csv / one device's latency
in memory (no database), batch size 1, and times the strategy's ``ask`` + ``tell``
alone (the benchmark evaluator costs microseconds). Prints, at 100, 500, 1,000 and 2,000
evaluations, the mean strategy ms per evaluation so far and over the last 50.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from hwnas.cli.search import MemoryRecorder
from nas.catalog import MemoryCatalog
from nas.engine import run_search
from nas.evaluators import read_benchmark_csv
from nas.resolve import build_search
from nas.spec import JobSpec
from search_spaces import get_space

CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "nb201_hw.csv"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", type=int, default=2000)
    parser.add_argument("--device", default="pixel3")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    catalog = MemoryCatalog()
    catalog.benchmarks["nb201"] = read_benchmark_csv(CSV, get_space("nb201"), "nb201")
    spec = JobSpec.model_validate({
        "space": "nb201", "strategy": {"name": "default"}, "budget": {"evaluations": args.budget},
        "seed": args.seed, "objectives": [{"metric": "accuracy", "goal": "maximize"},
                                          {"metric": "latency_ms", "device": args.device, "goal": "minimize"}],
        "evaluator": {"type": "benchmark", "table": "nb201", "metric": "cifar10_acc"}})
    search = build_search(spec, catalog)
    strategy = search.strategy
    per_eval: list[float] = []
    ask, tell = strategy.ask, strategy.tell

    def timed_ask(n: int) -> list[str]:
        t0 = time.perf_counter()
        out = ask(n)
        per_eval.extend([(time.perf_counter() - t0) / max(1, len(out))] * len(out))
        return out

    def timed_tell(results):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        tell(results)
        share = (time.perf_counter() - t0) / max(1, len(results))
        for i in range(len(per_eval) - len(results), len(per_eval)):
            per_eval[i] += share
        if len(per_eval) in (100, 500, 1000, 2000):
            report(len(per_eval))

    def report(at: int) -> None:
        mean = 1000 * sum(per_eval[:at]) / at
        last = 1000 * sum(per_eval[max(0, at - 50):at]) / min(50, at)
        print(f"  at {at:5d} evaluations: {mean:7.1f} ms/eval on average so far, {last:7.1f} ms/eval over the "
              f"last 50 (load average {os.getloadavg()[0]:.2f})", flush=True)

    strategy.ask, strategy.tell = timed_ask, timed_tell  # type: ignore[method-assign]
    started = time.perf_counter()
    summary = run_search(search, MemoryRecorder())
    wall = time.perf_counter() - started
    print(f"default, nb201, {args.device}, seed {args.seed}: {summary.evaluated} evaluations in {wall:.1f}s, "
          f"hypervolume {summary.hypervolume:.1f}  (load average {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
