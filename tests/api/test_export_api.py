"""GET /v1/jobs/{id}/trials/{trial_id}/export on real PostgreSQL: zips, manifests, tenants, refusals."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest

from latency_tables import LatencyEstimator, LatencyTable
from search_spaces import get_space
from storage import catalog as catalog_q
from storage.db import session_scope
from tests.api.inprocess import SPEC as BASE_SPEC
from tests.api.inprocess import Api, running_api

ARCH = "|nor_conv_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|none~0|nor_conv_1x1~1|nor_conv_3x3~2|"
SPEC: dict[str, Any] = {**BASE_SPEC, "seed": 5}


@pytest.fixture
def api(migrated_pg_url: str, redis_url: str) -> Iterator[Api]:
    with running_api(migrated_pg_url, redis_url) as api:
        yield api


def unzip(content: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(content)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def test_export_torch_and_json_with_every_registered_device(api: Api) -> None:
    alice = api.key("alice")
    job = api.client.post("/v1/jobs", json=SPEC, headers=alice).json()
    trial_id = api.add_trial(job["id"], 0, ARCH)
    url = f"/v1/jobs/{job['id']}/trials/{trial_id}/export"

    r = api.client.get(url, params={"format": "torch"}, headers=alice)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    assert r.headers["content-disposition"].endswith('-torch.zip"')
    files = unzip(r.content)
    assert set(files) == {"model.py", "manifest.json"}  # no evaluator kept weights: none are shipped
    assert b"import torch" in files["model.py"] and repr(ARCH).encode() in files["model.py"]
    manifest = json.loads(files["manifest.json"])
    assert manifest["seed"] == 5 and manifest["arch"] == ARCH and manifest["weights"]["trained"] is False
    assert manifest["job"]["id"] == job["id"] and manifest["job"]["trial_id"] == trial_id
    with session_scope(api.factory) as s:
        devices = catalog_q.list_devices(s, "nb201")
        tables = [LatencyTable.from_dict(d.table) for d in devices]
    by_name = {d["name"]: d for d in manifest["latency"]["devices"]}
    assert set(by_name) == {t.device_name for t in tables}
    assert [n for n, d in by_name.items() if d["used_by_job"]] == ["pixel3"]
    for table in tables:
        expected = float(LatencyEstimator(table, get_space("nb201")).predict([ARCH])[0])
        assert by_name[table.device_name]["predicted_latency_ms"] == expected

    r = api.client.get(url, params={"format": "json"}, headers=alice)
    assert r.status_code == 200
    data = json.loads(unzip(r.content)["architecture.json"])
    assert data["arch"] == ARCH and data["canonical_hash"] == get_space("nb201").canonical_hash(ARCH)


def test_other_tenants_missing_trials_and_bad_requests(api: Api) -> None:
    alice, bob = api.key("alice"), api.key("bob")
    job = api.client.post("/v1/jobs", json=SPEC, headers=alice).json()
    other = api.client.post("/v1/jobs", json=SPEC, headers=alice).json()
    trial_id = api.add_trial(job["id"], 0, ARCH)
    broken = api.add_trial(job["id"], 1, "|conv_9x9~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    base = f"/v1/jobs/{job['id']}/trials"

    r = api.client.get(f"{base}/{trial_id}/export", params={"format": "json"}, headers=bob)
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    assert api.client.get(f"/v1/jobs/{other['id']}/trials/{trial_id}/export", headers=alice).status_code == 404
    assert api.client.get(f"{base}/{trial_id + 100}/export", headers=alice).status_code == 404
    assert api.client.get(f"{base}/{trial_id}/export", headers={}).status_code == 401

    r = api.client.get(f"{base}/{trial_id}/export", params={"format": "tflite"}, headers=alice)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "format"
    r = api.client.get(f"{base}/{broken}/export", params={"format": "torch"}, headers=alice)
    assert r.status_code == 422 and "unknown op 'conv_9x9'" in r.json()["detail"]


def test_the_export_url_is_in_the_openapi_document(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    operation = spec["paths"]["/v1/jobs/{job_id}/trials/{trial_id}/export"]["get"]
    assert operation["operationId"] == "export_trial"
    assert "application/zip" in operation["responses"]["200"]["content"]
    assert {p["name"] for p in operation["parameters"]} >= {"job_id", "trial_id", "format"}


ARCHS = ["|nor_conv_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|none~0|nor_conv_1x1~1|nor_conv_3x3~2|",
         "|nor_conv_1x1~0|+|nor_conv_3x3~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|",
         "|skip_connect~0|+|nor_conv_1x1~0|nor_conv_1x1~1|+|nor_conv_3x3~0|skip_connect~1|none~2|"]


def test_six_concurrent_onnx_exports_all_succeed_then_come_from_the_cache(
        make_stack: Any, migrated_pg_url: str, redis_url: str) -> None:
    """uvicorn on PostgreSQL and Redis: six ONNX exports at once (three architectures, each asked
    twice) all answer 200 (torch runs in the server's export processes, not its request threads;
    the two asks of one architecture share one build), repeats come from the cache, and the
    per-tenant export rate holds."""
    import concurrent.futures

    import httpx
    import onnxruntime as ort
    from sqlalchemy import func, select

    from storage.db import make_engine, make_session_factory
    from storage.models import ExportArtifact
    from tests.api.inprocess import Api

    limit = 10
    stack = make_stack(migrated_pg_url, redis_url, HWNAS_EXPORT_WORKERS="2",
                       HWNAS_EXPORT_RATE_PER_MINUTE=str(limit))
    factory = make_session_factory(make_engine(migrated_pg_url))
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    with httpx.Client(base_url=stack.url, headers=headers, timeout=300) as c:
        job = c.post("/v1/jobs", json=SPEC).raise_for_status().json()  # stays queued: no worker
        helper = Api(None, factory)  # type: ignore[arg-type]
        ids = [helper.add_trial(job["id"], i, arch) for i, arch in enumerate(ARCHS)]
        url = f"/v1/jobs/{job['id']}/trials/{{}}/export?format={{}}"
        asks = [ids[i % 3] for i in range(6)]
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            responses = list(pool.map(lambda t: c.get(url.format(t, "onnx")), asks))
        assert [r.status_code for r in responses] == [200] * 6, [r.text[:300] for r in responses]
        models = []
        for trial, r in zip(asks, responses, strict=True):
            files = unzip(r.content)
            manifest = json.loads(files["manifest.json"])
            assert manifest["arch"] == ARCHS[ids.index(trial)] and manifest["onnx"]["max_abs_diff"] < 1e-3
            ort.InferenceSession(files["model.onnx"], providers=["CPUExecutionProvider"])
            models.append(files["model.onnx"])
        digests = [hashlib.sha256(m).hexdigest()[:12] for m in models]  # (bytes would be diffed for minutes)
        assert digests[0] == digests[3] and digests[0] != digests[1], digests  # one build per architecture
        count = lambda: session_scope(factory).__enter__().scalar(  # noqa: E731
            select(func.count()).select_from(ExportArtifact).where(ExportArtifact.filename == "nb201-onnx"))
        assert count() == 3
        again = c.get(url.format(ids[0], "onnx"))
        assert again.status_code == 200 and hashlib.sha256(unzip(again.content)["model.onnx"]).hexdigest()[:12] == digests[0]
        assert count() == 3  # served from the cache
        # the rate: quick JSON exports until refused (a minute boundary may reset the count once)
        codes = [c.get(url.format(ids[0], "json")).status_code for _ in range(2 * limit + 1)]
        assert 429 in codes and codes.index(429) <= 2 * limit
