"""Auth, tenant isolation and limits, in-process against real PostgreSQL and Redis."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from sqlalchemy import select, text

from storage import tenants as tenants_q
from storage.db import session_scope
from storage.models import ApiKey
from tests.api.inprocess import SPEC, Api, running_api

@pytest.fixture
def api(migrated_pg_url: str, redis_url: str) -> Iterator[Api]:
    with running_api(migrated_pg_url, redis_url, max_body_bytes=20_000) as api:
        yield api


ENDPOINTS = [("GET", "/v1/jobs"), ("POST", "/v1/jobs"), ("GET", "/v1/jobs/x"), ("GET", "/v1/jobs/x/trials"),
             ("GET", "/v1/jobs/x/pareto"), ("POST", "/v1/jobs/x/cancel"), ("GET", "/v1/search-spaces"),
             ("GET", "/v1/strategies"), ("GET", "/v1/devices"), ("GET", "/v1/devices/pixel3")]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_every_endpoint_needs_a_valid_key(api: Api, method: str, path: str) -> None:
    for headers in ({}, {"Authorization": "Bearer hwnas_not-a-key"}, {"X-API-Key": "nope"}):
        r = api.client.request(method, path, headers=headers, json=SPEC if method == "POST" else None)
        assert r.status_code == 401, r.text
        assert r.headers["www-authenticate"] == "Bearer"
        assert r.headers["content-type"].startswith("application/problem+json")
    assert api.client.get("/v1/health").status_code == 200  # for load balancers; says nothing of tenants


def test_keys_are_stored_only_as_hashes_and_revocation_works(api: Api) -> None:
    headers = api.key("alice")
    key = headers["Authorization"].split()[1]
    with session_scope(api.factory) as s:
        row = s.scalar(select(ApiKey))
        dump = str(s.execute(text("SELECT * FROM api_keys")).all())
        assert row.key_hash == hashlib.sha256(key.encode()).hexdigest() and key not in dump
        tenants_q.revoke_key(s, row.id)
    assert api.client.get("/v1/jobs", headers=headers).status_code == 401


def test_tenants_never_see_each_other(api: Api) -> None:
    alice, bob = api.key("alice"), api.key("bob")
    job = api.client.post("/v1/jobs", json=SPEC, headers=alice).json()
    for method, path in [("GET", f"/v1/jobs/{job['id']}"), ("GET", f"/v1/jobs/{job['id']}/trials"),
                         ("GET", f"/v1/jobs/{job['id']}/pareto"), ("POST", f"/v1/jobs/{job['id']}/cancel")]:
        assert api.client.request(method, path, headers=bob).status_code == 404
        assert api.client.request(method, path, headers=alice).status_code in (200, 202)
    assert api.client.get("/v1/jobs", headers=bob).json()["total"] == 0
    assert [j["id"] for j in api.client.get("/v1/jobs", headers=alice).json()["items"]] == [job["id"]]
    # the same idempotency key in two tenants makes two jobs
    k = {"Idempotency-Key": "same"}
    a = api.client.post("/v1/jobs", json=SPEC, headers={**alice, **k}).json()["id"]
    b = api.client.post("/v1/jobs", json=SPEC, headers={**bob, **k}).json()["id"]
    assert a != b


def test_body_size_field_lengths_and_array_sizes(api: Api) -> None:
    alice = api.key("alice")
    huge = {**SPEC, "name": "x" * 50_000}
    r = api.client.post("/v1/jobs", json=huge, headers=alice)
    assert r.status_code == 413 and r.json()["title"] == "Request body too large"
    r = api.client.post("/v1/jobs", json={**SPEC, "name": "x" * 201}, headers=alice)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "name"
    many = [{"metric": "latency_ms", "device": "pixel3", "max": float(i)} for i in range(40)]
    r = api.client.post("/v1/jobs", json={**SPEC, "constraints": many}, headers=alice)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "constraints"
    r = api.client.post("/v1/jobs", json=SPEC, headers={**alice, "Idempotency-Key": "k" * 300})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "idempotency-key"
    assert api.client.get("/v1/jobs", headers=alice).json()["total"] == 0


def test_concurrent_job_and_evaluation_quotas(api: Api) -> None:
    carol = api.key("carol", max_concurrent_jobs=2, max_active_evaluations=25)
    assert api.client.post("/v1/jobs", json=SPEC, headers=carol).status_code == 202
    r = api.client.post("/v1/jobs", json={**SPEC, "budget": {"evaluations": 16}}, headers=carol)
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0 and "25" in r.json()["detail"]
    assert api.client.post("/v1/jobs", json=SPEC, headers=carol).status_code == 202
    r = api.client.post("/v1/jobs", json={**SPEC, "budget": {"evaluations": 1}}, headers=carol)
    assert r.status_code == 429 and "limit is 2" in r.json()["detail"]


def test_rate_limit_answers_429_with_retry_after(api: Api) -> None:
    dave = api.key("dave", rate_limit_per_minute=5)
    codes = [api.client.get("/v1/jobs", headers=dave).status_code for _ in range(7)]
    assert codes[:5] == [200] * 5 and codes[5:] == [429, 429]
    r = api.client.get("/v1/jobs", headers=dave)
    assert 1 <= int(r.headers["retry-after"]) <= 60
    assert api.client.get("/v1/jobs", headers=api.key("erin")).status_code == 200  # per tenant
