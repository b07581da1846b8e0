"""Tenant-owned latency tables on real PostgreSQL and Redis: private by default, shared on request,
a quota, the name pattern, predictions that stay finite and non-negative, and jobs pinning versions."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from latency_tables import LatencyEstimator, LatencyTable, shipped_tables
from search_spaces import get_space
from tests.api.inprocess import Api, running_api
from tests.conftest import Service, create_api_key

ARCH = "|nor_conv_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|none~0|nor_conv_1x1~1|nor_conv_3x3~2|"


def nb201_table(name: str, scale: float = 1.0) -> dict[str, Any]:
    table = next(t for t in shipped_tables("nb201") if t.device_name == "pixel3").to_dict()
    table["device"] = {**table["device"], "name": name}
    for entry in table["entries"].values():
        entry["mean"] *= scale
    table["provenance"] = {**table.get("provenance", {}), "uploaded_by": "someone-else"}
    return table


def spec_on(device: str, budget: int = 2) -> dict[str, Any]:
    return {"space": "nb201", "strategy": {"name": "random"}, "budget": {"evaluations": budget}, "seed": 1,
            "objectives": [{"metric": "accuracy", "goal": "maximize"},
                           {"metric": "latency_ms", "device": device, "goal": "minimize"}],
            "evaluator": {"type": "command", "command": "echo '{\"accuracy\": 1}'"}}


@pytest.fixture
def api(migrated_pg_url: str, redis_url: str) -> Iterator[Api]:
    with running_api(migrated_pg_url, redis_url, max_device_tables=2) as api:
        yield api


def test_a_second_tenant_cannot_list_use_or_overwrite_a_private_table(api: Api) -> None:
    alice, bob = api.key("alice"), api.key("bob")
    c = api.client
    created = c.post("/v1/devices", json=nb201_table("lab_board"), headers=alice)
    assert created.status_code == 201, created.text
    assert created.json()["owner"] == "yours" and created.json()["shared"] is False
    assert "uploaded_by" not in created.json()["provenance"]  # a spoofed name is dropped too

    names = lambda who: {d["name"] for d in c.get("/v1/devices", headers=who).json()}  # noqa: E731
    assert "lab_board" in names(alice) and "lab_board" not in names(bob)
    assert "pixel3" in names(bob)  # shipped tables are public
    assert c.get("/v1/devices/lab_board", headers=bob).status_code == 404
    refused = c.post("/v1/jobs", json=spec_on("lab_board"), headers=bob)
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "objectives[1].device"
    assert "lab_board" not in refused.json()["errors"][0]["choices"]  # the valid choices do not leak it
    assert c.post("/v1/jobs", json=spec_on("lab_board"), headers=alice).status_code == 202

    # bob's upload under the same name is his own table: alice's stays as it was
    assert c.post("/v1/devices", json=nb201_table("lab_board", 3.0), headers=bob).status_code == 201
    mine = c.get("/v1/devices/lab_board", headers=alice).json()[0]
    assert mine["owner"] == "yours" and mine["content_hash"] == created.json()["content_hash"]
    assert c.get("/v1/devices/lab_board", headers=bob).json()[0]["content_hash"] != mine["content_hash"]
    # a shipped name cannot be taken
    taken = c.post("/v1/devices", json=nb201_table("pixel3"), headers=bob)
    assert taken.status_code == 409

    # shared explicitly: every tenant lists and uses it, without learning who uploaded it
    carol = api.key("carol")
    assert c.post("/v1/devices", params={"shared": "true"}, json=nb201_table("open_board"),
                  headers=alice).status_code == 201
    seen = c.get("/v1/devices/open_board", headers=carol).json()[0]
    assert seen["owner"] == "shared" and "alice" not in json.dumps(seen)
    assert c.post("/v1/jobs", json=spec_on("open_board"), headers=carol).status_code == 202
    assert c.post("/v1/devices", json=nb201_table("open_board", 2.0), headers=carol).status_code == 201
    assert c.get("/v1/devices/open_board", headers=alice).json()[0]["owner"] == "yours"

    # the quota (2 here): a third table is refused, replacing one of the two is not
    quota = c.post("/v1/devices", json=nb201_table("third"), headers=alice)
    assert quota.status_code == 409 and "limit is 2" in quota.json()["detail"]
    assert c.post("/v1/devices", json=nb201_table("lab_board", 1.5), headers=alice).status_code == 201


def _energy(t: dict[str, Any]) -> None:
    for e in t["entries"].values():
        e["energy_mj"] = 1.0
    next(iter(t["entries"].values()))["energy_mj"] = 1e308


@pytest.mark.parametrize(("mutate", "field"), [
    (lambda t: t["device"].update(name="../../etc/passwd"), "device.name"),
    (lambda t: t["device"].update(name="a b"), "device.name"),
    (lambda t: t.update(corrections={"intercept_ms": -50.0}), "corrections.intercept_ms"),
    (lambda t: t["entries"]["network"].update(mean=1e308), "entries.network.mean"),
    (lambda t: [e.update(mean=1e307) for e in t["entries"].values()], None),  # sums overflow: some entry
    (lambda t: t["entries"]["network"].update(mean=float("nan")), "entries.network.mean"),
    (lambda t: t.update(version="2"), "version"),
    (lambda t: t.update(version=2.5), "version"),
    (_energy, None),
])
def test_bad_tables_are_422_naming_the_entry(api: Api, mutate: Any, field: str | None) -> None:
    bad = nb201_table("bad_board")
    mutate(bad)
    r = api.client.post("/v1/devices", content=json.dumps(bad, allow_nan=True), headers={
        **api.key("alice"), "content-type": "application/json"})
    assert r.status_code == 422, r.text
    named = r.json()["errors"][0]["field"]
    if field is not None:
        assert named == field, r.json()
    else:
        assert named.startswith("entries.") and named.endswith((".mean", ".energy_mj")), r.json()
    assert api.client.get("/v1/devices/bad_board", headers=api.key("alice")).status_code in (404, 422)


def _wait(client: httpx.Client, job_id: str, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").raise_for_status().json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not finish")


def test_jobs_read_the_table_version_pinned_at_submit(celery_stack: Service) -> None:
    """uvicorn + a Celery worker: replacing a table right after submit changes neither the
    running job's latencies nor the finished job's export manifest."""
    key = create_api_key(celery_stack.env, "pinner")
    space = get_space("nb201")
    original = nb201_table("pinned_board")
    with httpx.Client(base_url=celery_stack.url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as c:
        assert c.post("/v1/devices", json=original).status_code == 201
        job_id = c.post("/v1/jobs", json=spec_on("pinned_board", budget=4)).raise_for_status().json()["id"]
        assert c.post("/v1/devices", json=nb201_table("pinned_board", 10.0)).status_code == 201
        job = _wait(c, job_id)
        assert job["status"] == "succeeded", (job, celery_stack.log("worker"))
        estimator = LatencyEstimator(LatencyTable.from_dict(original), space)
        trials = c.get(f"/v1/jobs/{job_id}/trials").json()["items"]
        assert len(trials) == 4
        for t in trials:
            assert t["metrics"]["latency_ms@pinned_board"] == pytest.approx(float(estimator.predict([t["arch"]])[0]))
        assert c.post("/v1/devices", json=nb201_table("pinned_board", 100.0)).status_code == 201
        export = c.get(f"/v1/jobs/{job_id}/trials/{trials[0]['id']}/export", params={"format": "json"})
        assert export.status_code == 200, export.text
        import io
        import zipfile

        manifest = json.loads(zipfile.ZipFile(io.BytesIO(export.content)).read("manifest.json"))
        used = next(d for d in manifest["latency"]["devices"] if d["name"] == "pinned_board")
        assert used["predicted_latency_ms"] == pytest.approx(float(estimator.predict([trials[0]["arch"]])[0]))


def test_tables_uploaded_before_tenancy_become_their_uploaders(api: Api) -> None:
    """A row as the old schema left it (no owner, no version, ``uploaded_by`` in its provenance)."""
    from nas.service import register_shipped_tables
    from storage.db import session_scope
    from storage.models import Device

    alice, bob = api.key("alice"), api.key("bob")
    table = nb201_table("legacy_board")
    table["provenance"]["uploaded_by"] = "alice"
    with session_scope(api.factory) as s:
        s.add(Device(name="legacy_board", space="nb201", kind="", table=table, content_hash="", shared=False))
    register_shipped_tables(api.factory)
    mine = api.client.get("/v1/devices/legacy_board", headers=alice).json()[0]
    assert mine["owner"] == "yours" and len(mine["content_hash"]) == 64
    assert api.client.get("/v1/devices/legacy_board", headers=bob).status_code == 404
