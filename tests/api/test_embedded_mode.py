"""`hwnas serve --embedded`: SQLite and an in-process worker, no PostgreSQL or Redis."""

import subprocess
from pathlib import Path

from hwnas_client import ApiError, Client

from tests.conftest import ROOT, Service, hwnas_cmd


def test_embedded_server_runs_a_search_end_to_end(embedded_server: Service, nb201_csv: Path) -> None:
    subprocess.run(hwnas_cmd("benchmarks", "import", str(nb201_csv), "--name", "nb201", "--space", "nb201"),
                   env=embedded_server.env, cwd=ROOT, check=True, capture_output=True)
    spec = {
        "space": "nb201", "budget": {"evaluations": 50}, "strategy": {"name": "evolution"},
        "objectives": [{"metric": "accuracy", "goal": "maximize"},
                       {"metric": "latency_ms", "device": "pixel3", "goal": "minimize"},
                       {"metric": "latency_ms", "device": "1080ti_1", "goal": "minimize"}],
        "evaluator": {"type": "benchmark", "table": "nb201", "metric": "cifar100_acc"},
    }
    with Client(embedded_server.url) as client:
        assert client.health()["mode"] == "embedded"
        job = client.wait(client.submit(spec).id, timeout=60, poll=0.2)
        assert job.status == "succeeded" and job.evaluated == 50
        front = client.pareto(job.id)
        assert [o["key"] for o in front.objectives] == ["accuracy", "latency_ms@pixel3", "latency_ms@1080ti_1"]
        assert front.trials and front.hypervolume > 0
        assert [j.id for j in client.list_jobs(status="succeeded")] == [job.id]
        try:
            client.submit({**spec, "space": "darts"})
        except ApiError as exc:
            assert exc.status == 422 and exc.errors[0]["field"] == "space" and "nb201" in str(exc)
        else:
            raise AssertionError("a bad spec was accepted")
    assert "without authentication" in embedded_server.log("api") or "no authentication" in embedded_server.log("api")
