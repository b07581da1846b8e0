"""The JSON API in-process on real PostgreSQL: validation, problem details, paging, cancel."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from hwnas_settings import Settings
from nas.evaluators import read_benchmark_csv
from search_spaces import get_space
from storage import catalog as catalog_q
from storage.db import make_engine, make_session_factory, session_scope
from storage.models import Job, Trial


@pytest.fixture
def small_csv(nb201_csv: Path, tmp_path: Path) -> Path:
    lines = nb201_csv.read_text().splitlines()[:301]
    path = tmp_path / "nb201_small.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def client(migrated_pg_url: str, small_csv: Path) -> Iterator[TestClient]:
    factory = make_session_factory(make_engine(migrated_pg_url))
    data = read_benchmark_csv(small_csv, get_space("nb201"), "nb201")
    with session_scope(factory) as s:
        catalog_q.replace_benchmark(s, name="nb201", space="nb201", columns=data.columns, rows=data.rows,
                                    source="test")
    app = create_app(Settings(database_url=migrated_pg_url, embedded=True, allow_command_evaluator=True))
    with TestClient(app) as c:
        c.factory = factory  # type: ignore[attr-defined]
        yield c


def good_spec(**changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "api test", "space": "nb201", "strategy": {"name": "random"}, "budget": {"evaluations": 20},
        "seed": 1,
        "objectives": [{"metric": "accuracy", "goal": "maximize"},
                       {"metric": "latency_ms", "device": "pixel3", "goal": "minimize"}],
        "evaluator": {"type": "benchmark", "table": "nb201", "metric": "cifar10_acc"},
    }
    spec.update(changes)
    return spec


def job_count(client: TestClient) -> int:
    with session_scope(client.factory) as s:  # type: ignore[attr-defined]
        return s.scalar(select(func.count()).select_from(Job)) or 0


BAD_SPECS = [
    ({"space": "nope"}, "space", "nb201"),
    ({"strategy": {"name": "magic"}}, "strategy.name", "evolution"),
    ({"strategy": {"name": "evolution", "params": {"population": 3}}}, "strategy.params.population", "population_size"),
    ({"budget": {"evaluations": 0}}, "budget.evaluations", "greater than or equal to 1"),
    ({"budget": {"evaluations": 10**9}}, "budget.evaluations", "less than or equal"),
    ({"objectives": [{"metric": "speed", "goal": "maximize"}]}, "objectives[0].metric", "latency_ms"),
    ({"objectives": [{"metric": "latency_ms", "goal": "minimize"}]}, "objectives[0]", "needs a device"),
    ({"objectives": [{"metric": "accuracy", "goal": "maximize"},
                     {"metric": "latency_ms", "device": "toaster", "goal": "minimize"}]},
     "objectives[1].device", "pixel3"),
    ({"objectives": [{"metric": "accuracy", "goal": "up"}]}, "objectives[0].goal", "maximize"),
    ({"objectives": []}, "objectives", "at least 1"),
    ({"constraints": [{"metric": "latency_ms", "device": "pixel3"}]}, "constraints[0]", "'max' or 'min'"),
    ({"evaluator": {"type": "oracle"}}, "evaluator", "benchmark"),
    ({"evaluator": {"type": "benchmark", "table": "imagenet", "metric": "cifar10_acc"}}, "evaluator.table", "nb201"),
    ({"evaluator": {"type": "benchmark", "table": "nb201", "metric": "top5"}}, "evaluator.metric", "cifar10_acc"),
    ({"evaluator": {"type": "command", "command": ""}}, "evaluator.command", "at least 1"),
    ({"colour": "blue"}, "colour", "Extra inputs"),
    ({"reference_point": {"flops": 1.0}}, "body", "reference_point"),
    ({"constraints": [{"metric": "peak_memory_kb", "device": "pixel3", "max": 64}]}, "constraints[0]", "no device"),
    ({"constraints": [{"metric": "peak_memory_kb", "max": 8}]}, "constraints[0].max", "smallest is 32"),
    ({"constraints": "device", "device": "toaster"}, "device", "cortex_m7"),
    ({"objectives": [{"metric": "energy_mj", "device": "pixel3", "goal": "minimize"}]}, "objectives[0].device",
     "no energy table"),
]


@pytest.mark.parametrize(("change", "field", "hint"), BAD_SPECS)
def test_bad_spec_is_422_naming_the_field_and_nothing_is_stored(client: TestClient, change: dict[str, Any],
                                                               field: str, hint: str) -> None:
    response = client.post("/v1/jobs", json=good_spec(**change))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 422 and problem["title"]
    fields = {e["field"]: e for e in problem["errors"]}
    assert field in fields, problem
    assert hint in fields[field]["message"] or hint in str(fields[field].get("choices")), problem
    assert job_count(client) == 0


def test_missing_body_and_broken_json(client: TestClient) -> None:
    r = client.post("/v1/jobs", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["errors"]
    r = client.post("/v1/jobs", json={})
    fields = {e["field"] for e in r.json()["errors"]}
    assert {"space", "budget", "objectives", "evaluator"} <= fields
    assert job_count(client) == 0


def test_unknown_device_lists_the_registered_ones(client: TestClient) -> None:
    spec = good_spec(objectives=[{"metric": "accuracy", "goal": "maximize"},
                                 {"metric": "latency_ms", "device": "toaster", "goal": "minimize"}])
    (error,) = client.post("/v1/jobs", json=spec).json()["errors"]
    assert {"pixel3", "raspi4", "fpga", "1080ti_1"} <= set(error["choices"])


def test_submit_runs_and_exposes_progress_trials_and_front(client: TestClient) -> None:
    response = client.post("/v1/jobs", json=good_spec(budget={"evaluations": 30}, max_failed_trials=30))
    assert response.status_code == 202
    job = response.json()
    assert response.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["status"] in ("queued", "running") and job["progress"]["budget"] == 30
    import time

    deadline = time.monotonic() + 120
    while client.get(f"/v1/jobs/{job['id']}").json()["status"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    done = client.get(f"/v1/jobs/{job['id']}").json()
    # the small table has 300 of 15,625 cells: most candidates are missing -> failed trials
    assert done["status"] == "succeeded" and done["progress"]["evaluated"] == 30
    assert done["progress"]["failed"] == client.get(
        f"/v1/jobs/{job['id']}/trials", params={"status": "failed"}).json()["total"]
    page = client.get(f"/v1/jobs/{job['id']}/trials", params={"limit": 7, "offset": 7}).json()
    assert page["total"] == 30 and [t["seq"] for t in page["items"]] == list(range(7, 14))
    by_latency = client.get(f"/v1/jobs/{job['id']}/trials",
                            params={"sort": "-metric:latency_ms@pixel3", "limit": 30}).json()["items"]
    latencies = [t["metrics"]["latency_ms@pixel3"] for t in by_latency]
    assert latencies == sorted(latencies, reverse=True)
    bad_sort = client.get(f"/v1/jobs/{job['id']}/trials", params={"sort": "colour"})
    assert bad_sort.status_code == 422 and bad_sort.json()["errors"][0]["field"] == "sort"
    front = client.get(f"/v1/jobs/{job['id']}/pareto").json()
    assert front["reference_point"]["accuracy"] == 0.0
    assert all(t["status"] == "completed" for t in front["trials"])
    with session_scope(client.factory) as s:  # type: ignore[attr-defined]
        assert s.scalar(select(func.count()).select_from(Trial)) == 30
    assert client.post(f"/v1/jobs/{job['id']}/cancel").status_code == 409


def test_lists_catalog_health_and_404(client: TestClient) -> None:
    assert client.get("/v1/jobs", params={"status": "running"}).json()["total"] == 0
    r = client.get("/v1/jobs", params={"status": "sleeping"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "status"
    missing = client.get("/v1/jobs/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404 and missing.json()["title"] == "Job not found"
    assert {"nb201", "fbnet"} <= {s["name"] for s in client.get("/v1/search-spaces").json()}
    assert {"random", "evolution"} <= {s["name"] for s in client.get("/v1/strategies").json()}
    devices = client.get("/v1/devices", params={"space": "nb201"}).json()
    fitted = [d for d in devices if d["name"] != "dev_vm_cpu_1t"]  # the 14 HELP devices, plus this CPU
    assert len(fitted) == 14 and all(d["validation"]["n"] > 10_000 for d in fitted)
    assert client.get("/v1/health").json()["database"] == "up"
    assert "/v1/jobs/{job_id}/pareto" in client.get("/openapi.json").json()["paths"]
