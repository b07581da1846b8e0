"""Honest errors and bounded params, in-process against real PostgreSQL and Redis (issue 15, findings 9, 11, 12)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from hwnas_settings import Settings
from tests.api.inprocess import SPEC, Api, running_api
from tests.conftest import ROOT, hwnas_cmd

BENCH_SPEC: dict[str, Any] = {**SPEC, "evaluator": {"type": "benchmark", "table": "nb201", "metric": "cifar10_acc"}}
DRIVER_WORDS = ("psycopg", "sqlalchemy", "invalid input", "character varying", "out of range", "$1", "0x00",
                "SELECT", "INSERT", "connection", "127.0.0.1")


@pytest.fixture(scope="module")
def shared_db(pg_server: str) -> Iterator[str]:
    """One migrated database for this module (each test uses tenants of its own): creating one per
    test costs seconds each on a busy machine."""
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from nas.service import register_shipped_tables
    from storage.db import make_engine, make_session_factory
    from storage.migrate import upgrade

    name = f"hwnas_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(pg_server).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    engine = make_engine(url)
    register_shipped_tables(make_session_factory(engine))
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="module")
def api(shared_db: str, redis_url: str) -> Iterator[Api]:
    with running_api(shared_db, redis_url) as api:
        yield api


def post_raw(api: Api, body: str, headers: dict[str, str]) -> Any:
    return api.client.post("/v1/jobs", content=body, headers={**headers, "content-type": "application/json"})


def test_idempotency_key_reused_with_another_body_is_a_422_naming_the_header(api: Api) -> None:
    alice = {**api.key("idem"), "Idempotency-Key": "retry-1"}
    first = api.client.post("/v1/jobs", json=SPEC, headers=alice)
    again = api.client.post("/v1/jobs", json=SPEC, headers=alice)
    assert first.status_code == again.status_code == 202 and first.json()["id"] == again.json()["id"]
    other = api.client.post("/v1/jobs", json={**SPEC, "budget": {"evaluations": 11}}, headers=alice)
    assert other.status_code == 422, other.text
    problem = other.json()
    assert problem["errors"][0]["field"] == "idempotency-key"
    assert "Idempotency-Key" in problem["detail"] and first.json()["id"] in problem["detail"]
    assert api.client.get("/v1/jobs", headers=alice).json()["total"] == 1


NON_FINITE = [
    ('"constraints": [{"metric": "latency_ms", "device": "pixel3", "max": NaN}]', "constraints[0].max"),
    ('"reference_point": {"accuracy": Infinity}', "reference_point.accuracy"),
    ('"time_limit_s": -Infinity', "time_limit_s"),
    ('"strategy": {"name": "default", "params": {"initial": NaN}}', "strategy.params.initial"),
    ('"strategy": {"name": "rl", "params": {"weights": [-0.1, NaN]}}', "strategy.params.weights.1"),
]


def test_non_finite_numbers_are_a_422_naming_the_field(api: Api) -> None:
    alice = api.key("finite")
    for patch, field in NON_FINITE:
        body = json.dumps(SPEC)[:-1] + ", " + patch + "}"
        r = post_raw(api, body, alice)
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["field"] == field, r.json()
        assert not any(word in r.text for word in DRIVER_WORDS), r.text
    assert api.client.get("/v1/jobs", headers=alice).json()["total"] == 0


OUT_OF_BOUNDS = [
    ("default", {"initial": 1e30}, "strategy.params.initial"),
    ("default", {"initial": 10**30}, "strategy.params.initial"),
    ("darts", {"epochs": 10**9}, "strategy.params.epochs"),
    ("darts", {"width": 100_000}, "strategy.params.width"),
    ("evolution", {"population_size": 1}, "strategy.params.population_size"),
    ("evolution", {"populaton_size": 10}, "strategy.params.populaton_size"),
    ("random", {"anything": 1}, "strategy.params.anything"),
]


def test_strategy_params_are_bounded_and_named(api: Api) -> None:
    alice = api.key("params")
    for strategy, params, field in OUT_OF_BOUNDS:
        spec = {**SPEC, "strategy": {"name": strategy, "params": params}}
        r = api.client.post("/v1/jobs", json=spec, headers=alice)
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["field"] == field, (strategy, params, r.json())
        assert "unexpected keyword" not in r.text and "__init__" not in r.text
    r = api.client.post("/v1/jobs", json={**SPEC, "strategy": {"name": "evolution", "params": {"x": 1}}},
                        headers=alice)
    assert r.json()["errors"][0]["choices"] == ["population_size", "sample_size"]


def test_strategies_list_their_params_with_ranges(api: Api) -> None:
    listed = {s["name"]: s for s in api.client.get("/v1/strategies", headers=api.key("alice")).json()}
    initial = {p["name"]: p for p in listed["default"]["params"]}["initial"]
    assert initial["type"] == "integer" and initial["default"] == 10
    assert (initial["minimum"], initial["maximum"]) == (2, 1000)
    epochs = {p["name"]: p for p in listed["darts"]["params"]}["epochs"]
    assert (epochs["minimum"], epochs["maximum"], epochs["default"]) == (1, 200, 8)
    relaxation = {p["name"]: p for p in listed["fbnet"]["params"]}["relaxation"]
    assert relaxation["choices"] == ["softmax", "gumbel"]
    assert listed["random"]["params"] == []
    valid = {**SPEC, "strategy": {"name": "evolution", "params": {"population_size": 8, "sample_size": 3}}}
    assert api.client.post("/v1/jobs", json=valid, headers=api.key("alice")).status_code == 202


def test_database_and_driver_details_are_logged_not_returned(api: Api) -> None:
    alice = api.key("driver")
    r = api.client.post("/v1/jobs", json={**SPEC, "name": "nul \u0000 in a name"}, headers=alice)
    assert r.status_code == 422 and not any(word in r.text for word in DRIVER_WORDS), r.text
    assert r.json()["errors"][0]["field"] == "name"
    job = api.client.post("/v1/jobs", json=SPEC, headers=alice).json()
    for path in (f"/jobs/{job['id']}/trials/99999999999999", f"/jobs/{job['id']}/trials/-1"):
        page = api.client.get(path, headers=alice)
        assert page.status_code == 404 and not any(word in page.text for word in DRIVER_WORDS), page.text[:300]
    for path in ("/v1/jobs?offset=99999999999999", "/v1/jobs/zz", f"/v1/jobs/{job['id']}/trials?limit=10000000000"):
        r = api.client.get(path, headers=alice)
        assert r.status_code in (404, 422) and not any(word in r.text for word in DRIVER_WORDS), (path, r.text)


def test_health_without_a_key_says_only_up_or_down(api: Api, redis_url: str) -> None:
    r = api.client.get("/v1/health")
    assert r.status_code == 200 and r.json() == {"status": "ok", "database": "up", "broker": "up",
                                                  "version": None, "mode": None}
    keyed = api.client.get("/v1/health", headers=api.key("alice")).json()
    assert keyed["mode"] == "celery" and keyed["version"]
    down = Settings(database_url="postgresql+psycopg://nobody:pw@127.0.0.1:1/none", broker_url=redis_url)
    with TestClient(create_app(down)) as client:
        r = client.get("/v1/health")
    assert r.status_code == 503 and r.json()["database"] == "down" and r.json()["broker"] == "up"
    assert not any(word in r.text for word in DRIVER_WORDS), r.text


def test_command_evaluator_is_off_unless_the_operator_enables_it(shared_db: str, redis_url: str) -> None:
    migrated_pg_url = shared_db
    with running_api(migrated_pg_url, redis_url, allow_command_evaluator=False) as api:
        r = api.client.post("/v1/jobs", json=SPEC, headers=api.key("alice"))
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "evaluator.type"
        assert "HWNAS_ALLOW_COMMAND_EVALUATOR" in r.json()["detail"]
        assert "hwnas tenants set" in r.json()["detail"]
        env = {"HWNAS_DATABASE_URL": migrated_pg_url, "PATH": "/usr/bin:/bin"}
        done = subprocess.run(hwnas_cmd("tenants", "set", "alice", "--command-evaluator"), env=env, cwd=ROOT,
                              capture_output=True, text=True, check=True)
        assert "command evaluator enabled" in done.stdout
        assert api.client.post("/v1/jobs", json=SPEC, headers=api.key("alice")).status_code == 202
        assert api.client.post("/v1/jobs", json=SPEC, headers=api.key("bob")).status_code == 422
        from typer.testing import CliRunner

        from hwnas.cli.main import app as cli

        listed = CliRunner().invoke(cli, ["tenants", "list", "--database-url", migrated_pg_url]).output
        rows = [line for line in listed.splitlines() if "alice" in line or "bob" in line]
        assert any("alice" in row and "yes" in row for row in rows), listed
        assert any("bob" in row and "no" in row for row in rows), listed


def test_a_device_name_that_could_not_be_a_device_is_a_422_naming_the_field(api: Api) -> None:
    """Schemathesis found it: a verify request for a device named with control characters was a
    500 (the name went into the Location header). Device names follow one rule everywhere."""
    alice = api.key("devices")
    job = api.client.post("/v1/jobs", json=SPEC, headers=alice).json()
    r = api.client.post(f"/v1/jobs/{job['id']}/verify", json={"device": "\u0014N\U000fdc62hU\u001f"}, headers=alice)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "device", r.text
    bad = {**SPEC, "objectives": [SPEC["objectives"][0], {**SPEC["objectives"][1], "device": "pixel 3"}]}
    r = api.client.post("/v1/jobs", json=bad, headers=alice)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "objectives[1].device", r.text
