"""Declared evaluator metrics, measured sources and confidence limits in the job spec (no processes)."""

from __future__ import annotations

import copy

from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError


from latency_tables import estimator_for, shipped_tables
from latency_tables.band import quantiles_of, ratio_at, residual_ratio_quantiles
from nas.catalog import MemoryCatalog, SpecError
from nas.devices.onboard import choose_references, unique_sample
from nas.engine import MemoryRecorder, run_search
from nas.resolve import build_search, check_spec
from nas.spec import JobSpec
from search_spaces import get_space
from tests.devices.conftest import accuracy_command

ACCURACY = accuracy_command()
QUANTILES = {"0.025": 0.7, "0.05": 0.8, "0.16": 0.9, "0.5": 1.0, "0.84": 1.1, "0.95": 1.3, "0.975": 1.4}


def spec(**extra: Any) -> dict[str, Any]:
    return {"space": "nb201", "strategy": {"name": "random"}, "budget": {"evaluations": 20}, "seed": 1,
            "objectives": [{"metric": "accuracy", "goal": "maximize"},
                           {"metric": "latency_ms", "device": "banded", "goal": "minimize"}],
            "evaluator": {"type": "command", "command": ACCURACY}, **extra}


@pytest.fixture(scope="module")
def catalog() -> MemoryCatalog:
    cat = MemoryCatalog()
    table = copy.deepcopy(next(t for t in cat.tables if t.space == "nb201" and t.device_name == "pixel3"))
    table.device = {**table.device, "name": "banded"}
    table.validation = {**table.validation, "residual_ratio_quantiles": QUANTILES}
    cat.add_table(table)
    bare = copy.deepcopy(table)  # a table that states no error band
    bare.device = {**bare.device, "name": "bare"}
    bare.validation = {k: v for k, v in bare.validation.items() if k != "residual_ratio_quantiles"}
    cat.add_table(bare)
    return cat


def test_an_undeclared_metric_is_refused_listing_the_declared_ones() -> None:
    with pytest.raises(ValidationError) as err:
        JobSpec.model_validate(spec(constraints=[{"metric": "my_metric", "max": 1.0}]))
    message = str(err.value)
    assert "constraints.0.metric" in message and "unknown metric 'my_metric'" in message
    assert "declared by the evaluator: none" in message
    with pytest.raises(ValidationError, match=r"declared by the evaluator: my_metric, other"):
        JobSpec.model_validate(spec(objectives=[{"metric": "accuracy", "goal": "maximize"},
                                                {"metric": "typo", "goal": "minimize"}],
                                    evaluator={"type": "command", "command": ACCURACY,
                                               "metrics": ["my_metric", "other"]}))


def test_a_declared_metric_is_an_objective_and_a_constraint(catalog: MemoryCatalog) -> None:
    job = JobSpec.model_validate(spec(
        objectives=[{"metric": "accuracy", "goal": "maximize"}, {"metric": "my_metric", "goal": "minimize"}],
        constraints=[{"metric": "my_metric", "max": 3.0}],
        reference_point={"accuracy": 0.0, "my_metric": 10.0}, budget={"evaluations": 6},
        evaluator={"type": "command", "command": ACCURACY, "metrics": ["my_metric"]}))
    search = build_search(job, catalog)
    recorder = MemoryRecorder()
    summary = run_search(search, recorder)
    assert summary.evaluated == 6 and all("my_metric" in t.metrics for t in recorder.trials)
    on_front = [t for t in recorder.trials if t.seq in summary.front]
    assert on_front and all(t.metrics["my_metric"] <= 3.0 for t in on_front)
    assert {t.seq for t in recorder.trials if t.metrics["my_metric"] > 3.0}.isdisjoint(summary.front)


def test_confidence_limits_use_the_error_band(catalog: MemoryCatalog) -> None:
    space = get_space("nb201")
    table = catalog.latency_table("nb201", "banded")
    assert table is not None and quantiles_of(table) == {float(k): v for k, v in QUANTILES.items()}
    limit = float(np.median(estimator_for(table, space).predict(unique_sample(space, 200, np.random.default_rng(0)))))
    plain = build_search(JobSpec.model_validate(spec(constraints=[
        {"metric": "latency_ms", "device": "banded", "max": limit}])), catalog)
    banded = build_search(JobSpec.model_validate(spec(constraints=[
        {"metric": "latency_ms", "device": "banded", "max": limit, "confidence": 0.95}])), catalog)
    archs = unique_sample(space, 300, np.random.default_rng(1))
    predicted = estimator_for(table, space).predict(archs)
    live = np.array([not space.is_degenerate(a) for a in archs])  # degenerate cells are never feasible
    np.testing.assert_array_equal(plain.problem.feasible(archs), live & (predicted <= limit))
    np.testing.assert_array_equal(banded.problem.feasible(archs), live & (predicted * 1.3 <= limit))
    values = banded.problem.free_metrics(archs)
    np.testing.assert_allclose(values["latency_ms@banded:q0.95"], predicted * 1.3)
    np.testing.assert_allclose(values["latency_ms@banded:q0.05"], predicted * 0.8)
    recorder = MemoryRecorder()
    summary = run_search(banded, recorder)
    front = [t for t in recorder.trials if t.seq in summary.front]
    assert front and all(t.metrics["latency_ms@banded:q0.95"] <= limit for t in front)
    # a confidence limit on a table without a band is a named error
    bare = JobSpec.model_validate({**spec(constraints=[{"metric": "latency_ms", "device": "bare", "max": 5.0,
                                                        "confidence": 0.9}])})
    with pytest.raises(SpecError) as err:
        check_spec(bare, catalog)
    assert err.value.field == "constraints[0].confidence"
    assert "banded" in (err.value.choices or []) and "bare" not in (err.value.choices or [])


def test_confidence_and_measured_need_what_they_use(catalog: MemoryCatalog) -> None:
    with pytest.raises(ValidationError, match="confidence applies to table latency"):
        JobSpec.model_validate(spec(constraints=[{"metric": "params", "max": 1e6, "confidence": 0.9}]))
    with pytest.raises(ValidationError, match="cannot be measured by an agent"):
        JobSpec.model_validate(spec(constraints=[{"metric": "accuracy", "source": "measured", "device": "d",
                                                  "min": 1}]))
    measured = JobSpec.model_validate(spec(objectives=[
        {"metric": "accuracy", "goal": "maximize"},
        {"metric": "latency_ms", "device": "board", "source": "measured", "goal": "minimize"}]))
    assert measured.objectives[1].key == "measured_latency_ms@board" and measured.devices() == []
    with pytest.raises(SpecError) as err:  # the command line has no agents
        check_spec(measured, catalog)
    assert err.value.field == "objectives[1].source"
    with pytest.raises(SpecError) as err:
        check_spec(JobSpec.model_validate(spec(verify={"device": "banded", "top_k": 3})), catalog)
    assert err.value.field == "verify.device"


def test_band_helpers_and_reference_choice() -> None:
    q = residual_ratio_quantiles(np.ones(101), np.linspace(0.5, 1.5, 101))
    assert q["0.5"] == pytest.approx(1.0) and q["0.95"] == pytest.approx(1.45)
    assert ratio_at({0.5: 1.0, 0.95: 1.5}, 0.725) == pytest.approx(1.25)
    space = get_space("nb201")
    tables = shipped_tables("nb201")
    refs = choose_references(space, tables, 10, seed=0, pool=300)
    assert len({space.canonical_hash(a) for a in refs}) == 10
    assert refs == choose_references(space, tables, 10, seed=0, pool=300)  # same seed, same references
    # spread: the references span more of the known devices' latency range than random picks do
    est = [estimator_for(t, space) for t in tables]
    spread = lambda archs: np.mean([np.ptp(np.log(np.maximum(e.predict(archs), 1e-6))) for e in est])  # noqa: E731
    randoms = [spread(unique_sample(space, 10, np.random.default_rng(s))) for s in range(5)]
    assert spread(refs) > np.mean(randoms)


def test_the_api_answers_an_undeclared_metric_with_a_422_naming_the_field(tmp_path: Any) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from hwnas_settings import Settings

    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'h.db'}", embedded=True,
                              allow_command_evaluator=True))
    body = spec(objectives=[{"metric": "accuracy", "goal": "maximize"},
                            {"metric": "latency_ms", "device": "pixel3", "goal": "minimize"}],
                constraints=[{"metric": "on_device_ms", "max": 12}],
                evaluator={"type": "command", "command": ACCURACY, "metrics": ["my_metric"]})
    with TestClient(app) as client:
        response = client.post("/v1/jobs", json=body)
        assert response.status_code == 422, response.text
        [error] = response.json()["errors"]
        assert error["field"] == "constraints[0].metric"
        assert "unknown metric 'on_device_ms'" in error["message"] and "declared by the evaluator: my_metric" \
            in error["message"]
        body["constraints"] = [{"metric": "my_metric", "max": 12}]
        assert client.post("/v1/jobs", json=body).status_code == 202
        # onboarding and verification need agents, which need the broker: the embedded server says so
        response = client.post("/v1/devices/rpi/onboard", json={"space": "nb201"})
        assert response.status_code == 409 and "Celery mode" in response.json()["title"]
        response = client.post("/v1/devices/rpi/onboard", json={"space": "cifar"})
        assert response.status_code == 422 and response.json()["errors"][0]["field"] == "space"
