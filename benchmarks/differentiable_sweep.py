"""The differentiable-search bar: a latency-weight sweep and an unconstrained run, per space.

For each space (nb201 with strategy darts, fbnet with strategy fbnet): one job with the
strategy's default sweep of latency weights, and one with the single weight 0
(unconstrained), both scored by the `train` evaluator on scikit-learn's digits and timed
through the engine as a worker runs them. Prints per derived architecture its latency
weight, table latency on the device, digits validation accuracy and, for nb201, the
CIFAR-10 accuracy of the same cell from the NAS-Bench-201 table.

    .venv/bin/python benchmarks/differentiable_sweep.py [--space nb201|fbnet|both] [--device pixel3]
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path
from typing import Any

from nas.catalog import MemoryCatalog
from nas.engine import Recorder, Summary, TrialRecord, run_search
from nas.resolve import build_search
from nas.spec import JobSpec
from nas.strategies import STRATEGIES
from search_spaces import get_space

STRATEGY_OF = {"nb201": "darts", "fbnet": "fbnet"}


class Trials(Recorder):
    def __init__(self) -> None:
        self.trials: list[TrialRecord] = []
        self.checkpoints = 0

    def resume(self) -> tuple[dict[str, Any] | None, list[TrialRecord]]:
        return None, []

    def record(self, trials: list[TrialRecord], checkpoint: dict[str, Any], summary: Summary) -> None:
        self.trials.extend(trials)
        self.checkpoints += 1

    def stop_reason(self) -> str | None:
        return None


def job(space: str, device: str, weights: list[float], params: dict[str, Any]) -> dict[str, Any]:
    return {"name": f"{STRATEGY_OF[space]} sweep", "space": space,
            "strategy": {"name": STRATEGY_OF[space], "params": {"latency_weights": weights, **params}},
            "budget": {"evaluations": len(weights)}, "seed": 0,
            "objectives": [{"metric": "accuracy", "goal": "maximize"},
                           {"metric": "latency_ms", "device": device, "goal": "minimize"}],
            "evaluator": {"type": "train", "dataset": "digits", "epochs": 3}}


def run(spec: dict[str, Any]) -> tuple[float, Trials, Any]:
    search = build_search(JobSpec.model_validate(spec), MemoryCatalog())
    recorder = Trials()
    started = time.perf_counter()
    run_search(search, recorder)
    return time.perf_counter() - started, recorder, search.strategy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--space", choices=["nb201", "fbnet", "both"], default="both")
    parser.add_argument("--device", default="pixel3")
    parser.add_argument("--benchmark", type=Path, default=Path(__file__).resolve().parents[1].parent
                        / "shared" / "data" / "nb201_hw.csv", help="nb201 table with cifar10_acc")
    parser.add_argument("--epochs", type=int, default=None, help="supernet epochs (default: the strategy's)")
    args = parser.parse_args()
    cifar: dict[str, float] = {}
    if args.benchmark.is_file():
        with args.benchmark.open() as fh:
            cifar = {row["arch"]: float(row["cifar10_acc"]) for row in csv.DictReader(fh)}
    for space in (["nb201", "fbnet"] if args.space == "both" else [args.space]):
        strategy = STRATEGIES[STRATEGY_OF[space]]
        params = {} if args.epochs is None else {"epochs": args.epochs}
        key = f"latency_ms@{args.device}"
        print(f"== {space}, strategy {strategy.name}, device {args.device}, digits, train evaluator (3 epochs)")
        for label, weights in (("sweep", list(strategy.default_weights)), ("unconstrained", [0.0])):
            wall, recorder, strat = run(job(space, args.device, weights, params))
            print(f"{label}: {len(weights)} latency weights in {wall:.1f}s "
                  f"({recorder.checkpoints} checkpoints written)")
            for point, trial in zip(strat.history, recorder.trials, strict=False):
                arch = get_space(space).normalize(trial.arch)
                c10 = f"  cifar10 {cifar[arch]:.2f}" if arch in cifar else ""
                print(f"  weight {point['latency_weight']:<6g} {key} {trial.metrics[key]:7.3f}  "
                      f"digits {trial.metrics.get('accuracy', float('nan')):6.2f}{c10}  "
                      f"epochs {point['epochs']}  {arch}")


if __name__ == "__main__":
    main()
