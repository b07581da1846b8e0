"""POST/GET /v1/search-spaces on real PostgreSQL: registration, 422s naming the JSON path, tenants,
jobs pinned to a definition's content hash (run and exported on it after a re-registration)."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest

from nas.service import execute_job
from storage import catalog as catalog_q
from storage import jobs as jobs_q
from storage.db import session_scope
from tests.api.inprocess import Api, running_api
from tests.spaces_helpers import BROKEN, MBV2, MBV2_SIZE, MBV2_V2, benchmark_rows, latency_table, space_of


@pytest.fixture
def api(migrated_pg_url: str, redis_url: str) -> Iterator[Api]:
    with running_api(migrated_pg_url, redis_url) as api:
        yield api


def job_spec(budget: int = 6, **extra: Any) -> dict[str, Any]:
    return {"space": "mbv2-160", "budget": {"evaluations": budget}, "seed": 1,
            "strategy": {"name": "evolution", "params": {"population_size": 4, "sample_size": 2}},
            "objectives": [{"metric": "accuracy", "goal": "maximize"},
                           {"metric": "latency_ms", "device": "toyboard", "goal": "minimize"}],
            "evaluator": {"type": "benchmark", "table": "mbv2-acc", "metric": "acc"}, **extra}


def register_benchmark(api: Api, definition: dict[str, Any]) -> None:
    rows = benchmark_rows(space_of(definition))
    with session_scope(api.factory) as s:
        catalog_q.replace_benchmark(s, name="mbv2-acc", space="mbv2-160", columns=["acc"], rows=rows,
                                    source="tests")


def test_register_show_and_list(api: Api) -> None:
    alice = api.key("alice")
    r = api.client.post("/v1/search-spaces", json=MBV2, headers=alice)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body == {"name": "mbv2-160", "content_hash": space_of(MBV2).content_hash, "version": 1,
                    "size": MBV2_SIZE, "signatures": len(space_of(MBV2).all_op_signatures())}
    assert r.headers["location"] == "/v1/search-spaces/mbv2-160"
    again = api.client.post("/v1/search-spaces", json=MBV2, headers=alice)
    assert again.status_code == 200 and again.json() == body  # unchanged: no new version

    shown = api.client.get("/v1/search-spaces/mbv2-160", headers=alice).json()
    assert shown["definition"] == MBV2 and shown["source"] == "registered"
    assert shown["signatures"] == space_of(MBV2).all_op_signatures()
    assert [v["version"] for v in shown["versions"]] == [1]
    listed = api.client.get("/v1/search-spaces", headers=alice).json()
    assert {(s["name"], s["source"]) for s in listed} >= {("nb201", "shipped"), ("mbv2-160", "registered")}
    assert api.client.get("/v1/search-spaces/nb201", headers=alice).json()["source"] == "shipped"

    taken = api.client.post("/v1/search-spaces", json={**MBV2, "name": "nb201"}, headers=alice)
    assert taken.status_code == 409 and taken.json()["errors"][0]["field"] == "$.name"


@pytest.mark.parametrize(("what", "definition", "path"), BROKEN, ids=[b[0] for b in BROKEN])
def test_a_bad_definition_is_a_422_naming_the_json_path(api: Api, what: str, definition: dict[str, Any],
                                                        path: str) -> None:
    r = api.client.post("/v1/search-spaces", json=definition, headers=api.key("alice"))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert path in [e["field"] for e in problem["errors"]], problem
    assert path in problem["detail"]
    assert api.client.get("/v1/search-spaces/mbv2-160", headers=api.key("alice")).status_code == 404


def test_another_tenant_sees_nothing(api: Api) -> None:
    alice, bob = api.key("alice"), api.key("bob")
    assert api.client.post("/v1/search-spaces", json=MBV2, headers=alice).status_code == 201
    assert api.client.post("/v1/devices", json=latency_table(space_of(MBV2)), headers=alice).status_code == 201
    r = api.client.get("/v1/search-spaces/mbv2-160", headers=bob)
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    assert "mbv2-160" not in [s["name"] for s in api.client.get("/v1/search-spaces", headers=bob).json()]
    refused = api.client.post("/v1/jobs", json=job_spec(), headers=bob)
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "space", refused.text
    # bob registering the name gets his own definition, alice's stays current for her
    assert api.client.post("/v1/search-spaces", json=MBV2_V2, headers=bob).status_code == 201
    assert api.client.get("/v1/search-spaces/mbv2-160", headers=alice).json()["content_hash"] \
        == space_of(MBV2).content_hash


def test_devices_of_a_registered_space(api: Api) -> None:
    alice = api.key("alice")
    space = space_of(MBV2)
    table = latency_table(space)
    unknown = api.client.post("/v1/devices", json=table, headers=alice)
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "space"
    api.client.post("/v1/search-spaces", json=MBV2, headers=alice)
    missing = {**table, "entries": dict(list(table["entries"].items())[1:])}
    r = api.client.post("/v1/devices", json=missing, headers=alice)
    assert r.status_code == 422 and r.json()["errors"][0]["field"].startswith("entries."), r.text
    assert api.client.post("/v1/devices", json=table, headers=alice).status_code == 201
    listed = api.client.get("/v1/devices", params={"space": "mbv2-160"}, headers=alice).json()
    assert [(d["name"], d["entries"]) for d in listed] == [("toyboard", len(space.all_op_signatures()))]


def test_a_pinned_job_runs_and_exports_on_its_definition_after_a_re_registration(api: Api) -> None:
    alice = api.key("alice")
    v1, v2 = space_of(MBV2), space_of(MBV2_V2)
    api.client.post("/v1/search-spaces", json=MBV2, headers=alice)
    api.client.post("/v1/devices", json=latency_table(v1), headers=alice)
    register_benchmark(api, MBV2)
    job = api.client.post("/v1/jobs", json=job_spec(), headers=alice)
    assert job.status_code == 202, job.text
    job_id = job.json()["id"]
    assert job.json()["spec"]["space_hash"] == v1.content_hash

    # other content under the name (k5_e6_se gone), before any worker ran the job
    r = api.client.post("/v1/search-spaces", json=MBV2_V2, headers=alice)
    assert r.status_code == 201 and r.json()["version"] == 2 and r.json()["content_hash"] == v2.content_hash
    assert api.client.get("/v1/search-spaces/mbv2-160", headers=alice).json()["content_hash"] == v2.content_hash

    # the worker's code path, in this process: it resolves the space by the pinned hash
    assert execute_job(api.factory, job_id, owner="test", lease_seconds=30) == "succeeded"
    with session_scope(api.factory) as s:
        trials = jobs_q.job_trials(s, job_id)
    assert len(trials) == 6 and all(t.status == "completed" for t in trials)
    rows = benchmark_rows(v1)
    assert all(t.metrics["accuracy"] == rows[t.arch]["acc"] for t in trials)
    assert all(t.arch_hash == v1.canonical_hash(t.arch) for t in trials)

    # an architecture only v1 has is still read and exported, on v1
    only_v1 = "k5_e6_se-k5_e6_se-k5_e6_se-k5_e6_se-k5_e6_se"
    trial_id = api.add_trial(job_id, 6, only_v1)
    page = api.client.get(f"/v1/jobs/{job_id}/trials", params={"limit": 10}, headers=alice).json()
    assert page["total"] == 7 and page["items"][-1]["arch"] == only_v1
    r = api.client.get(f"/v1/jobs/{job_id}/trials/{trial_id}/export", params={"format": "json"}, headers=alice)
    assert r.status_code == 200, r.text
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        exported = json.loads(zf.read("architecture.json"))
    assert exported["arch"] == only_v1 and exported["codes"] == v1.encode(only_v1).tolist()
    page = api.client.get(f"/jobs/{job_id}/trials/6", headers=alice)  # the dashboard's architecture view
    assert page.status_code == 200 and only_v1 in page.text

    # a new job pins the new definition; one pinning a hash the name never had is refused
    api.client.post("/v1/devices", json=latency_table(v2), headers=alice)
    register_benchmark(api, MBV2_V2)
    new = api.client.post("/v1/jobs", json=job_spec(), headers=alice).json()
    assert new["spec"]["space_hash"] == v2.content_hash
    bad = api.client.post("/v1/jobs", json=job_spec(space_hash="0" * 64), headers=alice)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "space_hash", bad.text
