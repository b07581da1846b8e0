"""Agents, API, Celery worker, PostgreSQL and Redis as real processes: onboarding, verification,
an agent that dies mid-onboarding, measurements that fail or time out, measured objectives."""

from __future__ import annotations

import os
import signal
import subprocess
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from storage.db import make_engine, make_session_factory, session_scope
from storage.catalog import content_hash
from storage.models import DeviceTableVersion, Job, Measurement
from tests.conftest import ROOT, hwnas_cmd
from tests.devices.conftest import (AGENT_ENV, accuracy_command, agent_online, get, post, start_agent,
                                    wait_for)

WELL_BEHAVED = {"FAKE_WELL_BEHAVED": "1"}


def _stack(make_stack: Any, pg_url: str, redis_url: str) -> Any:
    stack = make_stack(pg_url, redis_url, **AGENT_ENV)
    stack.start_worker()
    return stack


def _operation(stack: Any, device: str, op_id: str) -> dict[str, Any]:
    return get(stack, f"/v1/devices/{device}/operations/{op_id}")


def _done(stack: Any, device: str, op_id: str) -> dict[str, Any] | None:
    op = _operation(stack, device, op_id)
    return op if op["status"] in ("succeeded", "failed") else None


def _job_spec(**extra: Any) -> dict[str, Any]:
    return {"space": "nb201", "strategy": {"name": "random"}, "budget": {"evaluations": 8}, "seed": 0,
            "objectives": [{"metric": "accuracy", "goal": "maximize"},
                           {"metric": "latency_ms", "device": "fakedev", "goal": "minimize"}],
            "evaluator": {"type": "command", "command": accuracy_command()}, **extra}


FLAKY_SPEC = {"space": "nb201", "strategy": {"name": "random"}, "budget": {"evaluations": 10}, "seed": 3,
              "objectives": [{"metric": "accuracy", "goal": "maximize"},
                             {"metric": "latency_ms", "device": "flaky", "source": "measured", "goal": "minimize"}],
              "constraints": [{"metric": "my_metric", "max": 100.0}],
              "reference_point": {"accuracy": 0.0, "measured_latency_ms@flaky": 100.0},
              "max_failed_trials": 10,
              "evaluator": {"type": "command", "command": accuracy_command(), "metrics": ["my_metric"]}}


def _check_flaky_job(stack: Any, pg_url: str, job_id: str) -> None:
    """Failed and timed-out measurements fail their trial with the agent's reason, never a silent 0."""
    job = wait_for("job finished", lambda: (j := get(stack, f"/v1/jobs/{job_id}"))["status"]
                   in ("succeeded", "failed") and j, stack, timeout=240)
    assert job["status"] == "succeeded", job
    trials = get(stack, f"/v1/jobs/{job_id}/trials")["items"]
    assert len(trials) == 10
    for t in trials:
        first_op = t["arch"].split("|")[1].split("~")[0]
        if first_op == "none":
            assert t["status"] == "failed" and "exit status 3" in t["error"] and "device busy" in t["error"]
        elif first_op == "avg_pool_3x3":
            assert t["status"] == "failed" and "timed out after 1.5s" in t["error"]
        else:
            assert t["status"] == "completed" and t["metrics"]["measured_latency_ms@flaky"] > 0.8
            assert "my_metric" in t["metrics"]
    assert any(t["status"] == "failed" for t in trials) and any(t["status"] == "completed" for t in trials)
    factory = make_session_factory(make_engine(pg_url))
    with session_scope(factory) as s:
        failed = s.scalars(select(Measurement).where(Measurement.status == "failed",
                                                     Measurement.device == "flaky")).all()
        assert failed and all(m.latency_ms is None and m.error for m in failed)


def test_onboard_verify_refit_and_measured_objectives_with_failures(make_stack: Any, pg_url: str,
                                                                    redis_url: str) -> None:
    """One stack, two agents: a well-behaved device onboarded and verified, a flaky one measured per candidate."""
    stack = _stack(make_stack, pg_url, redis_url)
    start_agent(stack, "agent", env=WELL_BEHAVED)
    start_agent(stack, "flaky-agent", "--timeout-s", "1.5", device="flaky")
    wait_for("agent online", lambda: agent_online(stack), stack)
    agent = get(stack, "/v1/devices/fakedev")[0]["agent"]
    assert agent["runtime"] == "command" and agent["environment"]["host"] and agent["environment"]["cpu_model"]

    out = subprocess.run(hwnas_cmd("devices", "onboard", "--device", "fakedev", "--space", "nb201", "--samples", "6",
                                   "--validate", "5", "--url", stack.url, "--api-key", stack.api_key, "--timeout", "120"),
                         env=stack.env, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stdout + out.stderr + stack.logs()
    assert "registered table 'fakedev' (nb201) revision 1" in out.stdout
    assert "kendall_tau" in out.stdout and "error bar per prediction: measured / predicted: 68 % within" in out.stdout
    table = get(stack, "/v1/devices/fakedev", space="nb201")[0]
    validation = table["validation"]
    assert table["entries"] > 0 and validation["n"] == 5 and validation["held_out"]
    assert set(validation["residual_ratio_quantiles"]) == {"0.025", "0.05", "0.16", "0.5", "0.84", "0.95", "0.975"}
    assert table["provenance"]["revision"] == 1 and table["device"]["runtime"].startswith("command:")
    # the stand-in's latency is additive over the cell's ops: a fit from 6 rows ranks 5 new ones well
    assert validation["kendall_tau"] > 0.5

    job = post(stack, "/v1/jobs", _job_spec(verify={"device": "fakedev", "top_k": 3}))
    job = wait_for("job finished", lambda: (j := get(stack, f"/v1/jobs/{job['id']}"))["status"]
                   in ("succeeded", "failed") and j, stack, timeout=240)
    assert job["status"] == "succeeded", job
    front = get(stack, f"/v1/jobs/{job['id']}/pareto")
    [verification] = front["verifications"]
    assert verification["status"] == "succeeded" and verification["trials"]
    measured = [t for t in front["trials"] if "measured_latency_ms@fakedev" in t["metrics"]]
    assert 1 <= len(measured) <= 3 and len(measured) == len(verification["trials"])
    for row in verification["trials"]:
        trial = next(t for t in front["trials"] if t["seq"] == row["seq"])
        assert row["predicted_ms"] == trial["metrics"]["latency_ms@fakedev"]
        assert row["measured_ms"] == trial["metrics"]["measured_latency_ms@fakedev"] > 0
        assert isinstance(row["leaves_front"], bool) and row["breaks_limit"] is False
    refit = verification["refit"]
    assert refit["revision_before"] == 1 and refit["revision_after"] == 2
    assert get(stack, "/v1/devices/fakedev", space="nb201")[0]["provenance"]["revision"] == 2
    factory = make_session_factory(make_engine(pg_url))
    with session_scope(factory) as s:  # the job keeps the revision it was submitted with
        pins = s.get(Job, job["id"]).table_pins
        first = s.scalar(select(DeviceTableVersion.table).where(DeviceTableVersion.name == "fakedev",
                                                                DeviceTableVersion.revision == 1))
        assert [v for k, v in pins.items() if "fakedev" in k] == [content_hash(first)]

    # verify again on demand: another refit, another revision
    op = post(stack, f"/v1/jobs/{job['id']}/verify", {"device": "fakedev", "top_k": 2})
    op = wait_for("verification", lambda: _done(stack, "fakedev", op["id"]), stack, timeout=240)
    assert op["status"] == "succeeded", op
    assert op["result"]["refit"]["revision_after"] == 3
    page = httpx.get(f"{stack.url}/jobs/{job['id']}", headers={"Authorization": f"Bearer {stack.api_key}"})
    assert page.status_code == 200 and "Front measured on the device" in page.text
    flaky_job = post(stack, "/v1/jobs", FLAKY_SPEC)
    _check_flaky_job(stack, pg_url, flaky_job["id"])


def test_agent_killed_mid_onboarding_the_onboarding_waits_then_resumes(make_stack: Any, pg_url: str,
                                                                       redis_url: str) -> None:
    stack = _stack(make_stack, pg_url, redis_url)
    # batches of 2: results arrive a pair at a time, so most are still to measure when it dies
    first = start_agent(stack, "agent1", "--batch", "2", env={**WELL_BEHAVED, "FAKE_SLEEP_S": "0.5"})
    wait_for("agent online", lambda: agent_online(stack), stack)
    op = post(stack, "/v1/devices/fakedev/onboard", {"space": "nb201", "samples": 5, "validate": 3})
    wait_for("some measured", lambda: (_operation(stack, "fakedev", op["id"])["progress"] or {}).get("measured", 0)
             >= 1, stack)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    waiting = wait_for("onboarding says it waits", lambda: "offline" in
                       ((_operation(stack, "fakedev", op["id"])["progress"] or {}).get("message") or ""), stack)
    assert waiting
    current = _operation(stack, "fakedev", op["id"])
    assert current["status"] == "running" and "hwnas agent --device fakedev" in current["progress"]["message"]
    assert get(stack, "/v1/devices/fakedev")[0]["agent"]["online"] is False
    start_agent(stack, "agent2", env=WELL_BEHAVED)
    done = wait_for("onboarding finished", lambda: _done(stack, "fakedev", op["id"]), stack)
    assert done["status"] == "succeeded", done
    assert done["result"]["references"] == 5 and done["result"]["validation"]["n"] == 3
    factory = make_session_factory(make_engine(pg_url))
    with session_scope(factory) as s:
        rows = s.scalars(select(Measurement).where(Measurement.owner == op["id"])).all()
        assert len(rows) == 8 and all(r.status == "done" and r.latency_ms for r in rows)
        assert len({r.claimed_by for r in rows}) == 2  # both agents measured some
