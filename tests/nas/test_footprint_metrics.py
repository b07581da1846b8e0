"""Static metrics, energy and device budgets as objectives and constraints of a job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from latency_tables.fit import fit_table, with_energy
from latency_tables.table import LatencyTable, TableError
from nas.catalog import MemoryCatalog, SpecError
from nas.engine import run_search
from nas.evaluators import read_benchmark_csv
from nas.resolve import build_search, check_spec
from nas.spec import JobSpec
from search_spaces import get_space
from search_spaces.metrics import static_metrics_of
from tests.nas.test_engine import ListRecorder


@pytest.fixture(scope="module")
def catalog(nb201_csv: Path) -> MemoryCatalog:
    cat = MemoryCatalog()
    cat.benchmarks["nb201"] = read_benchmark_csv(nb201_csv, get_space("nb201"), "nb201")
    return cat


def spec(budget: int = 150, **extra: Any) -> JobSpec:
    raw: dict[str, Any] = {
        "space": "nb201", "strategy": {"name": "evolution", "params": {"population_size": 10, "sample_size": 3}},
        "budget": {"evaluations": budget}, "seed": 3,
        "objectives": [{"metric": "accuracy", "goal": "maximize"},
                       {"metric": "latency_ms", "device": "pixel3", "goal": "minimize"}],
        "evaluator": {"type": "benchmark", "table": "nb201", "metric": "cifar10_acc"}}
    raw.update(extra)
    return JobSpec.model_validate(raw)


def run(job: JobSpec, catalog: MemoryCatalog) -> tuple[ListRecorder, Any]:
    recorder = ListRecorder()
    search = build_search(job, catalog)
    return recorder, (search, run_search(search, recorder))


def test_memory_constraint_is_never_broken_and_changes_the_front(catalog: MemoryCatalog) -> None:
    space = get_space("nb201")
    same: dict[str, Any] = {"budget": 300, "seed": 1, "strategy": {"name": "evolution"}}  # docs/metrics.md
    limited, (search, summary) = run(spec(constraints=[{"metric": "peak_memory_kb", "max": 64}], **same), catalog)
    free, (_, free_summary) = run(spec(**same), catalog)
    archs = [t.arch for t in limited.trials]
    assert len(archs) == 300
    # recomputed independently of the trial metrics: nothing evaluated breaks the limit
    assert static_metrics_of(space, archs, ["peak_memory_kb"])["peak_memory_kb"].max() <= 64
    assert all(t.metrics["peak_memory_kb"] <= 64 for t in limited.trials)
    # without the limit the search does evaluate (and keep on its front) larger networks
    assert max(t.metrics["peak_memory_kb"] for t in free.trials) == 80
    by_seq = {t.seq: t for t in free.trials}
    assert any(by_seq[s].metrics["peak_memory_kb"] > 64 for s in free_summary.front)
    assert {t.arch for t in limited.trials if t.seq in summary.front} != \
        {by_seq[s].arch for s in free_summary.front}


def test_static_objective_gets_a_reference_point_and_shows_in_trials(catalog: MemoryCatalog) -> None:
    job = spec(budget=20, objectives=[{"metric": "accuracy", "goal": "maximize"},
                                      {"metric": "params", "goal": "minimize"}])
    recorder, (search, summary) = run(job, catalog)
    assert search.reference["params"] == pytest.approx(1.01 * 1_531_546)
    assert summary.hypervolume > 0
    for t in recorder.trials:
        assert {"params", "macs", "peak_memory_kb", "model_size_kb"} <= set(t.metrics)
        assert "latency_ms@pixel3" not in t.metrics


def test_device_budgets_apply_with_one_line(catalog: MemoryCatalog) -> None:
    job = spec(budget=150, objectives=[{"metric": "accuracy", "goal": "maximize"}],
               device="cortex_m7", constraints="device")
    recorder, (search, _) = run(job, catalog)
    assert {(c.metric, c.max) for c in search.constraints} == {("peak_memory_kb", 320.0), ("model_size_kb", 1024.0)}
    assert max(t.metrics["model_size_kb"] for t in recorder.trials) <= 1024


def test_table_limits_become_constraints_with_latency_target(catalog: MemoryCatalog) -> None:
    board = catalog.latency_table("nb201", "pixel3")
    assert board is not None
    limited = LatencyTable.from_dict({**board.to_dict(), "device": {
        **board.device, "name": "pixel3_budget", "limits": {"sram_kb": 48, "latency_ms": 5.0, "dtype": "int8"}}})
    cat = MemoryCatalog(tables=[*catalog.tables, limited], benchmarks=catalog.benchmarks)
    job = spec(budget=40, objectives=[{"metric": "accuracy", "goal": "maximize"},
                                      {"metric": "latency_ms", "device": "pixel3_budget", "goal": "minimize"}],
               constraints=["device", {"metric": "accuracy", "min": 50}])
    recorder, (search, _) = run(job, cat)
    assert {c.key for c in search.constraints} == {"accuracy", "peak_memory_kb", "latency_ms@pixel3_budget"}
    assert all(t.metrics["peak_memory_kb"] <= 48 and t.metrics["latency_ms@pixel3_budget"] <= 5.0
               for t in recorder.trials)


def test_energy_objective_from_a_fitted_energy_table(catalog: MemoryCatalog) -> None:
    space = get_space("nb201")
    board = catalog.latency_table("nb201", "pixel3")
    assert board is not None
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(200)]
    # synthetic energy: 2 mJ per GMAC plus 0.3 mJ per ms of pixel3 latency (additive in ops)
    from latency_tables import LatencyEstimator
    macs = static_metrics_of(space, archs, ["macs"])["macs"]
    energy_mj = 2e-9 * macs + 0.3 * LatencyEstimator(board, space).predict(archs)
    fitted = fit_table(space, archs, energy_mj, device={"name": "pixel3"}, source="synthetic", metric="energy_mj")
    table = with_energy(board, fitted)
    assert table.has_metric("energy_mj") and not board.has_metric("energy_mj")
    cat = MemoryCatalog(tables=[t for t in catalog.tables if t.device_name != "pixel3"] + [table],
                        benchmarks=catalog.benchmarks)
    job = spec(budget=20, objectives=[{"metric": "accuracy", "goal": "maximize"},
                                      {"metric": "energy_mj", "device": "pixel3", "goal": "minimize"}])
    recorder, (search, _) = run(job, cat)
    predicted = np.array([t.metrics["energy_mj@pixel3"] for t in recorder.trials])
    truth = 2e-9 * static_metrics_of(space, [t.arch for t in recorder.trials], ["macs"])["macs"] \
        + 0.3 * np.array([t.metrics["latency_ms@pixel3"] for t in recorder.trials])
    assert np.abs(predicted - truth).max() / truth.mean() < 0.05
    assert search.reference["energy_mj@pixel3"] > predicted.max()
    # a device whose table has no energy is named in the error
    with pytest.raises(SpecError) as err:
        check_spec(spec(objectives=[{"metric": "accuracy", "goal": "maximize"},
                                    {"metric": "energy_mj", "device": "raspi4", "goal": "minimize"}]), cat)
    assert err.value.field == "objectives[1].device"


@pytest.mark.parametrize(("extra", "message"), [
    ({"constraints": [{"metric": "params", "device": "pixel3", "max": 1}]}, "takes no device"),
    ({"constraints": [{"metric": "energy_mj", "max": 1}]}, "needs a device"),
    ({"constraints": [{"metric": "peak_sram", "max": 1}]}, "unknown metric"),
    ({"constraints": "board"}, "constraints"),
    ({"constraints": ["device", "board"]}, "constraints"),
])
def test_spec_validation(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        spec(**extra)


@pytest.mark.parametrize(("extra", "field", "message"), [
    ({"constraints": [{"metric": "peak_memory_kb", "max": 16}]}, "constraints[0].max", "smallest is 32"),
    ({"constraints": "device", "device": "no_such_board"}, "device", "declares no limits"),
    ({"constraints": "device", "objectives": [{"metric": "accuracy", "goal": "maximize"}]}, "device",
     "needs the target device"),
    ({"constraints": "device", "device": "cortex_m7", "reference_point": {"accuracy": 0}}, None, None),
])
def test_spec_errors_name_the_field(catalog: MemoryCatalog, extra: dict[str, Any], field: str | None,
                                    message: str | None) -> None:
    if field is None:
        check_spec(spec(**extra), catalog)
        return
    with pytest.raises(SpecError) as err:
        check_spec(spec(**extra), catalog)
    assert err.value.field == field and message in err.value.message


def test_bad_limits_in_a_table_are_named() -> None:
    with pytest.raises(TableError) as err:
        LatencyTable.from_dict({"format": "hwnas.latency_table/2", "space": "nb201", "entries": {"a": {"mean": 1}},
                                "device": {"name": "x", "limits": {"sram_kb": -1}}})
    assert err.value.entry == "device.limits.sram_kb"
    with pytest.raises(TableError) as err:
        LatencyTable.from_dict({"format": "hwnas.latency_table/2", "space": "nb201", "entries": {"a": {"mean": 1}},
                                "device": {"name": "x", "limits": {"sram": 1}}})
    assert err.value.entry == "device.limits.sram"
