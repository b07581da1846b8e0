"""The engine loop on the real NAS-Bench-201 table: budget, front, resume."""

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nas.catalog import MemoryCatalog
from nas.engine import Recorder, Summary, TrialRecord, run_search
from nas.evaluators import read_benchmark_csv
from nas.pareto import non_dominated_mask
from nas.resolve import build_search
from nas.spec import JobSpec
from search_spaces import get_space


@pytest.fixture(scope="module")
def catalog(nb201_csv: Path) -> MemoryCatalog:
    cat = MemoryCatalog()
    cat.benchmarks["nb201"] = read_benchmark_csv(nb201_csv, get_space("nb201"), "nb201")
    return cat


def spec(strategy: str = "evolution", budget: int = 60, **extra: Any) -> JobSpec:
    return JobSpec.model_validate({
        "space": "nb201", "strategy": {"name": strategy, "params": {"population_size": 10, "sample_size": 3}
                                       if strategy == "evolution" else {}},
        "budget": {"evaluations": budget}, "seed": 7,
        "objectives": [{"metric": "accuracy", "goal": "maximize"},
                       {"metric": "latency_ms", "device": "pixel3", "goal": "minimize"}],
        "evaluator": {"type": "benchmark", "table": "nb201", "metric": "cifar10_acc"}, **extra})


class ListRecorder(Recorder):
    """Keeps what the engine writes; ``stop_after`` simulates a crash after N batches."""

    def __init__(self, checkpoint: dict[str, Any] | None = None, trials: list[TrialRecord] | None = None,
                 stop_after: int | None = None):
        self.checkpoint, self.trials, self.stop_after, self.batches = checkpoint, list(trials or []), stop_after, 0

    def resume(self) -> tuple[dict[str, Any] | None, list[TrialRecord]]:
        return self.checkpoint, list(self.trials)

    def record(self, trials: list[TrialRecord], checkpoint: dict[str, Any], summary: Summary) -> None:
        self.trials += trials
        self.checkpoint = checkpoint
        self.batches += 1

    def stop_reason(self) -> str | None:
        return "cancelled" if self.stop_after is not None and self.batches >= self.stop_after else None


@pytest.mark.parametrize("strategy", ["random", "evolution"])
def test_spends_exactly_the_budget_and_front_is_non_dominated(catalog: MemoryCatalog, strategy: str) -> None:
    search = build_search(spec(strategy), catalog)
    recorder = ListRecorder()
    summary = run_search(search, recorder)
    assert summary.evaluated == len(recorder.trials) == 60
    assert len({t.arch_hash for t in recorder.trials}) == 60
    points = np.array([[t.metrics["accuracy"], -t.metrics["latency_ms@pixel3"]] for t in recorder.trials])
    expected = {recorder.trials[i].seq for i in np.flatnonzero(non_dominated_mask(points))}
    assert set(summary.front) == expected


def test_resume_from_checkpoint_equals_uninterrupted_run(catalog: MemoryCatalog) -> None:
    whole = ListRecorder()
    run_search(build_search(spec(batch_size=4), catalog), whole)
    first = ListRecorder(stop_after=5)
    run_search(build_search(spec(batch_size=4), catalog), first)
    assert len(first.trials) == 20
    second = ListRecorder(first.checkpoint, first.trials)
    summary = run_search(build_search(spec(batch_size=4), catalog), second)
    assert [t.arch for t in second.trials] == [t.arch for t in whole.trials]
    assert summary.evaluated == 60


def test_latency_constraint_is_never_violated(catalog: MemoryCatalog) -> None:
    search = build_search(spec(constraints=[{"metric": "latency_ms", "device": "pixel3", "max": 5.0}]), catalog)
    recorder = ListRecorder()
    run_search(search, recorder)
    assert len(recorder.trials) == 60
    assert max(t.metrics["latency_ms@pixel3"] for t in recorder.trials) <= 5.0
