"""Device tables over HTTP on real PostgreSQL: list, show, upload, and refusals that name the entry."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from hwnas_settings import Settings
from latency_tables import shipped_tables


@pytest.fixture
def client(migrated_pg_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=migrated_pg_url, embedded=True, allow_command_evaluator=True))) as c:
        yield c


@pytest.fixture
def upload() -> dict:
    table = next(t for t in shipped_tables("fbnet") if t.device_name == "pixel3").to_dict()
    table["device"] = {**table["device"], "name": "my_phone"}
    return table


def test_shipped_devices_are_listed_and_shown(client: TestClient) -> None:
    names = {(d["name"], d["space"]) for d in client.get("/v1/devices").json()}
    assert len(names) >= 28 and ("raspi4", "nb201") in names and ("raspi4", "fbnet") in names
    shown = client.get("/v1/devices/raspi4", params={"space": "nb201"}).json()
    assert len(shown) == 1
    assert shown[0]["validation"]["n"] > 1000 and "kendall_tau" in shown[0]["validation"]
    assert shown[0]["device"]["runtime"] == "tflite" and shown[0]["provenance"]["method"]
    missing = client.get("/v1/devices/nope")
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"


def test_upload_then_search_with_it(client: TestClient, upload: dict) -> None:
    created = client.post("/v1/devices", json=upload)
    assert created.status_code == 201, created.text
    assert created.json()["name"] == "my_phone" and created.json()["entries"] == len(upload["entries"])
    assert client.get("/v1/devices/my_phone").json()[0]["space"] == "fbnet"
    # the stored table is usable by a job at once
    job = client.post("/v1/jobs", json={
        "name": "t", "space": "fbnet", "strategy": {"name": "random"}, "budget": {"evaluations": 2},
        "objectives": [{"metric": "latency_ms", "device": "my_phone", "goal": "minimize"}],
        "evaluator": {"type": "command", "command": "echo '{\"accuracy\": 1}'"}})
    assert job.status_code in (201, 202), job.text


@pytest.mark.parametrize(("mutate", "field"), [
    (lambda t: t.update(space="nb201"), "entries.network"),  # first nb201 signature it lacks
    (lambda t: t.update(space="darts"), "space"),
    (lambda t: t["entries"].pop("k3_e6:24x32x32->24/s1"), "entries.k3_e6:24x32x32->24/s1"),
    (lambda t: t["entries"]["head:352x4x4->1504"].update(mean=-0.5), "entries.head:352x4x4->1504"),
    (lambda t: t["entries"]["k5_e6:16x32x32->16/s1"].update(std=1e400), "entries.k5_e6:16x32x32->16/s1.std"),
    (lambda t: t.update(format="hwnas.latency_table/1"), "format"),
    (lambda t: t["device"].update(limits={"sram_kb": 0}), "device.limits.sram_kb"),
    (lambda t: t["entries"]["head:352x4x4->1504"].update(energy_mj="a lot"), "entries.head:352x4x4->1504.energy_mj"),
])
def test_bad_uploads_are_422_naming_the_entry(client: TestClient, upload: dict, mutate, field: str) -> None:
    bad = copy.deepcopy(upload)
    mutate(bad)
    # allow_nan: the infinite std must reach the server as JSON's non-standard Infinity
    response = client.post("/v1/devices", content=json.dumps(bad, allow_nan=True),
                           headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["errors"][0]["field"] == field, body
    assert client.get("/v1/devices/my_phone").status_code == 404

