"""A tenant's registered search space used by a job over the real service: uvicorn, a Celery worker,
PostgreSQL and Redis. The job keeps its results (read, front, export) after the name is re-registered."""

from __future__ import annotations

import io
import json
import zipfile

import httpx
from hwnas_client import Client

from storage import catalog as catalog_q
from storage.db import make_engine, make_session_factory, session_scope
from tests.conftest import Service
from tests.spaces_helpers import MBV2, MBV2_V2, benchmark_rows, latency_table, space_of


def test_a_registered_space_job_on_the_worker_survives_a_re_registration(celery_stack: Service) -> None:
    v1 = space_of(MBV2)
    rows = benchmark_rows(v1)
    engine = make_engine(celery_stack.env["HWNAS_DATABASE_URL"])
    with session_scope(make_session_factory(engine)) as s:
        catalog_q.replace_benchmark(s, name="mbv2-acc", space="mbv2-160", columns=["acc"], rows=rows, source="tests")
    engine.dispose()
    headers = {"Authorization": f"Bearer {celery_stack.api_key}"}
    with httpx.Client(base_url=celery_stack.url, headers=headers, timeout=30) as http:
        with Client(celery_stack.url, api_key=celery_stack.api_key) as client:
            assert client.register_space(MBV2)["content_hash"] == v1.content_hash
        assert http.post("/v1/devices", json=latency_table(v1)).status_code == 201
        spec = {"name": "registered space", "space": "mbv2-160", "budget": {"evaluations": 8}, "seed": 4,
                "strategy": {"name": "evolution", "params": {"population_size": 4, "sample_size": 2}},
                "objectives": [{"metric": "accuracy", "goal": "maximize"},
                               {"metric": "latency_ms", "device": "toyboard", "goal": "minimize"}],
                "evaluator": {"type": "benchmark", "table": "mbv2-acc", "metric": "acc"}}
        with Client(celery_stack.url, api_key=celery_stack.api_key) as client:
            job = client.submit(spec)
            done = client.wait(job.id, timeout=120, poll=0.3)
            assert done.status == "succeeded", celery_stack.log("worker")
            trials = client.trials(job.id)
            front = client.pareto(job.id)
            assert len(trials) == 8 and all(rows[t.arch]["acc"] == t.metrics["accuracy"] for t in trials)
            assert front.trials and done.spec["space_hash"] == v1.content_hash

            assert client.register_space(MBV2_V2)["version"] == 2
            assert client.search_space("mbv2-160")["content_hash"] == space_of(MBV2_V2).content_hash
            again = client.get(job.id)
            assert again.spec == done.spec and again.hypervolume == done.hypervolume
            assert [t.arch for t in client.trials(job.id)] == [t.arch for t in trials]
            assert [t.seq for t in client.pareto(job.id).trials] == [t.seq for t in front.trials]
            best = front.trials[0]
            r = http.get(f"/v1/jobs/{job.id}/trials/{best.id}/export", params={"format": "json"})
            assert r.status_code == 200, r.text
            with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
                exported = json.loads(zf.read("architecture.json"))
            assert exported["arch"] == best.arch and exported["codes"] == v1.encode(best.arch).tolist()
