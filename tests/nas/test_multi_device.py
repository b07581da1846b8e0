"""Several devices in one job: a hard latency maximum on each is never violated by an evaluation,
and the front is taken over accuracy and every device's latency."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nas.engine import MemoryRecorder
from nas.catalog import MemoryCatalog
from nas.engine import run_search
from nas.evaluators import read_benchmark_csv
from nas.pareto import non_dominated_mask, oriented
from nas.resolve import build_search
from nas.spec import JobSpec
from nas.strategies import STRATEGIES
from search_spaces import get_space

DEVICES = ("pixel3", "1080ti_1")
LIMITS = {"pixel3": 12.0, "1080ti_1": 11.0}


@pytest.fixture(scope="module")
def catalog(nb201_csv: Path) -> MemoryCatalog:
    return MemoryCatalog(benchmarks={"nb201": read_benchmark_csv(nb201_csv, get_space("nb201"), "nb201")})


# (differentiable strategies derive one architecture per latency weight: tests/nas/test_differentiable*.py)
@pytest.mark.parametrize("strategy", sorted(n for n, s in STRATEGIES.items() if not s.differentiable))
def test_hard_limits_on_two_devices_and_a_three_objective_front(strategy: str, catalog: MemoryCatalog) -> None:
    spec = JobSpec.model_validate({
        "space": "nb201", "strategy": {"name": strategy}, "budget": {"evaluations": 14}, "seed": 0,
        "batch_size": 2,
        "objectives": [{"metric": "accuracy", "goal": "maximize"},
                       *({"metric": "latency_ms", "device": d, "goal": "minimize"} for d in DEVICES)],
        "constraints": [{"metric": "latency_ms", "device": d, "max": LIMITS[d]} for d in DEVICES],
        "evaluator": {"type": "benchmark", "table": "nb201", "metric": "cifar10_acc"}})
    search = build_search(spec, catalog)
    recorder = MemoryRecorder()
    summary = run_search(search, recorder)
    assert summary.evaluated == 14
    for trial in recorder.trials:
        for d in DEVICES:
            assert trial.metrics[f"latency_ms@{d}"] <= LIMITS[d]
    points = np.array([oriented(t.metrics, search.objectives) for t in recorder.trials])
    on_front = {recorder.trials[i].seq for i in np.flatnonzero(non_dominated_mask(points))}
    assert set(summary.front) == on_front
