"""With no agent online, work waits with the reason in its progress, then fails after the timeout (real PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest

from hwnas_settings import get_settings
from nas.devices.measure import AgentOffline, DeviceMeasurer
from nas.service import Quotas, execute_job, submit
from nas.spec import JobSpec
from storage import jobs as jobs_q
from storage import tenants as tenants_q
from storage.db import make_engine, make_session_factory, session_scope
from storage.models import Measurement
from tests.devices.test_specs import ACCURACY


@pytest.fixture
def factory(migrated_pg_url: str) -> Any:
    engine = make_engine(migrated_pg_url)
    yield make_session_factory(engine)
    engine.dispose()


def test_measurer_waits_naming_the_device_then_gives_up(factory: Any) -> None:
    messages: list[str] = []
    measurer = DeviceMeasurer(factory, "ghost", "nb201", offline_after_s=1, wait_timeout_s=1.0, poll_s=0.2)
    with pytest.raises(AgentOffline, match=r"no agent of device 'ghost' answered for 1s \(never seen\); 0/2 measured"):
        measurer.measure(["|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|",
                          "|skip_connect~0|+|none~0|none~1|+|none~0|none~1|none~2|"], purpose="probe", owner="t",
                         on_progress=lambda message, done, total: messages.append(message))
    assert messages and "waiting for an agent of device 'ghost' (nb201): offline, never seen" in messages[0]
    assert "hwnas agent --device ghost --space nb201" in messages[0]
    with session_scope(factory) as s:  # the requests stay queued for an agent that starts later
        assert s.query(Measurement).filter_by(device="ghost", status="pending").count() == 2


def test_a_job_measuring_on_an_offline_device_fails_with_the_reason(factory: Any,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HWNAS_AGENT_WAIT_TIMEOUT_S", "1")
    monkeypatch.setenv("HWNAS_AGENT_OFFLINE_AFTER_S", "1")
    monkeypatch.setenv("HWNAS_ALLOW_COMMAND_EVALUATOR", "true")
    get_settings.cache_clear()
    try:
        spec = JobSpec.model_validate({
            "space": "nb201", "strategy": {"name": "random"}, "budget": {"evaluations": 2},
            "objectives": [{"metric": "accuracy", "goal": "maximize"},
                           {"metric": "latency_ms", "device": "ghost", "source": "measured", "goal": "minimize"}],
            "reference_point": {"accuracy": 0.0, "measured_latency_ms@ghost": 50.0},
            "evaluator": {"type": "command", "command": ACCURACY}})
        with session_scope(factory) as s:
            tenant = tenants_q.get_or_create_tenant(s, "t").id
        job, _ = submit(factory, spec, tenant_id=tenant, quotas=Quotas(10, 1000))
        assert execute_job(factory, job.id, owner="test", lease_seconds=30) == "failed"
        with session_scope(factory) as s:
            stored = jobs_q.get_job(s, job.id)
            assert stored is not None and "no agent of device 'ghost' answered for 1s" in (stored.error or "")
            assert "waiting for an agent of device 'ghost'" in (stored.phase or {}).get("message", "")
    finally:
        get_settings.cache_clear()
