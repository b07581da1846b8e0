"""Front membership rules: degenerate cells skipped by default, equal-metric points counted once,
and the best attainable front the dashboard scales hypervolume by."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from nas.best_front import _non_dominated, best_front, own_box
from nas.catalog import MemoryCatalog
from nas.engine import run_search
from nas.evaluators.benchmark import read_benchmark_csv
from nas.pareto import Objective, ParetoArchive, hypervolume, non_dominated_mask
from nas.resolve import build_estimators, build_search, reference_point
from search_spaces import get_space
from tests.nas.test_engine import ListRecorder, spec

NB201 = get_space("nb201")


@pytest.fixture(scope="module")
def catalog(nb201_csv: Path) -> MemoryCatalog:
    cat = MemoryCatalog()
    cat.benchmarks["nb201"] = read_benchmark_csv(nb201_csv, NB201, "nb201")
    return cat


def test_nb201_is_degenerate_exactly_when_no_real_op_path_joins_input_and_output() -> None:
    assert NB201.is_degenerate("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    # the output is fed only by node 1, which nothing feeds
    assert NB201.is_degenerate("|none~0|+|none~0|nor_conv_3x3~1|+|none~0|skip_connect~1|none~2|")
    assert not NB201.is_degenerate("|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
    assert not NB201.is_degenerate("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|avg_pool_3x3~1|none~2|")
    # brute force over every cell: degenerate <=> no path 0 -> 3 of non-none edges
    edges = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
    for codes in itertools.product(range(5), repeat=6):
        reach = {0}
        for (src, dst), c in zip(edges, codes, strict=True):
            if c != 0 and src in reach:
                reach.add(dst)
        assert NB201.is_degenerate(NB201.decode(list(codes))) == (3 not in reach)


@pytest.mark.parametrize("strategy", ["random", "evolution"])
def test_strategies_skip_degenerate_cells_unless_the_spec_keeps_them(catalog: MemoryCatalog, strategy: str) -> None:
    recorder = ListRecorder()
    run_search(build_search(spec(strategy, budget=200), catalog), recorder)
    assert len(recorder.trials) == 200
    assert not [t.arch for t in recorder.trials if NB201.is_degenerate(t.arch)]
    # the flag lets the strategy see them again (the space's feasibility mask no longer drops them)
    kept = build_search(spec(strategy, budget=200, keep_degenerate=True), catalog)
    degenerate = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    assert kept.problem.feasible([degenerate])[0]
    assert not build_search(spec(strategy, budget=200), catalog).problem.feasible([degenerate])[0]


def test_equal_points_join_the_front_once_and_the_first_stands() -> None:
    archive = ParetoArchive([Objective("accuracy", True), Objective("latency_ms", False)],
                            {"accuracy": 0.0, "latency_ms": 10.0})
    assert archive.add(3, {"accuracy": 80.0, "latency_ms": 2.0})
    assert not archive.add(5, {"accuracy": 80.0, "latency_ms": 2.0})
    assert not archive.add(9, {"accuracy": 80.0, "latency_ms": 2.0})
    assert archive.add(11, {"accuracy": 90.0, "latency_ms": 4.0})
    assert archive.trial_ids == [3, 11] and archive.duplicates == {3: [5, 9]}
    assert archive.hypervolume() == pytest.approx(80 * 8 + 10 * 6)
    # a newcomer that dominates the member takes its duplicates off the books too
    assert archive.add(12, {"accuracy": 85.0, "latency_ms": 1.0})
    assert archive.trial_ids == [11, 12] and archive.duplicates == {}


def test_engine_front_lists_no_two_trials_with_equal_objectives(catalog: MemoryCatalog) -> None:
    recorder = ListRecorder()
    summary = run_search(build_search(spec("random", budget=300, keep_degenerate=True), catalog), recorder)
    by_seq = {t.seq: t for t in recorder.trials}
    values = [(by_seq[s].metrics["accuracy"], by_seq[s].metrics["latency_ms@pixel3"]) for s in summary.front]
    assert len(values) == len(set(values))


def test_fast_non_dominated_filter_equals_nas_pareto() -> None:
    rng = np.random.default_rng(4)
    for dims in (2, 3):
        pts = rng.integers(0, 8, size=(300, dims)).astype(float)
        expected = {tuple(p) for p in pts[non_dominated_mask(pts)]}
        assert {tuple(p) for p in _non_dominated(pts)} == expected


def test_best_front_is_the_benchmarks_true_front_under_the_jobs_rules(catalog: MemoryCatalog) -> None:
    job = spec("random", constraints=[{"metric": "latency_ms", "device": "pixel3", "max": 8.0}])
    ref = reference_point(job, build_estimators(job, catalog), catalog=catalog)
    best = best_front(job, ref, catalog)
    assert best is not None and best.basis == "benchmark nb201"
    data = catalog.benchmarks["nb201"]
    archs = [a for a in data.rows if not NB201.is_degenerate(a)]
    lat = build_estimators(job, catalog)["pixel3"].predict(archs)
    acc = np.array([data.rows[a]["cifar10_acc"] for a in archs])
    ok = lat <= 8.0
    pts = np.stack([acc[ok], -lat[ok]], axis=1)
    assert best.candidates == int(ok.sum())
    assert best.hypervolume == pytest.approx(hypervolume(pts, np.array([ref["accuracy"], -ref["latency_ms@pixel3"]])))
    # any search under the same rules covers at most all of it
    recorder = ListRecorder()
    summary = run_search(build_search(job, catalog), recorder)
    assert 0 < summary.hypervolume <= best.hypervolume
    assert own_box(job, ref, [t.metrics for t in recorder.trials]) >= summary.hypervolume


def test_best_front_of_free_objectives_enumerates_the_space_and_evaluated_ones_need_a_benchmark(
        catalog: MemoryCatalog) -> None:
    free = spec("random", objectives=[{"metric": "params", "goal": "minimize"},
                                      {"metric": "latency_ms", "device": "pixel3", "goal": "minimize"}],
                evaluator={"type": "command", "command": "true"})
    ref = reference_point(free, build_estimators(free, catalog), catalog=catalog)
    best = best_front(free, ref, catalog)
    assert best is not None and best.basis == "every architecture of nb201"
    command = spec("random", evaluator={"type": "command", "command": "true"})
    assert best_front(command, reference_point(command, build_estimators(command, catalog), catalog=catalog),
                      catalog) is None
