"""The API in-process (TestClient) on real PostgreSQL and Redis, with keys and trials made directly."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update

from api.app import create_app
from hwnas_settings import Settings
from storage import tenants as tenants_q
from storage.db import make_engine, make_session_factory, session_scope
from storage.models import Tenant, Trial, utcnow

SPEC: dict[str, Any] = {
    "space": "nb201", "budget": {"evaluations": 10},
    "objectives": [{"metric": "accuracy", "goal": "maximize"},
                   {"metric": "latency_ms", "device": "pixel3", "goal": "minimize"}],
    "evaluator": {"type": "command", "command": "echo '{\"accuracy\": 1}'"},
}


class Api:
    def __init__(self, client: TestClient, factory: Any):
        self.client, self.factory = client, factory

    def key(self, tenant: str, **quotas: int) -> dict[str, str]:
        """Authorization headers of a new key for ``tenant`` (created if new, with these quotas)."""
        with session_scope(self.factory) as s:
            created = tenants_q.create_key(s, tenant)
            if quotas:
                s.execute(update(Tenant).where(Tenant.name == tenant).values(**quotas))
        return {"Authorization": f"Bearer {created.key}"}

    def add_trial(self, job_id: str, seq: int, arch: str) -> int:
        with session_scope(self.factory) as s:
            trial = Trial(job_id=job_id, seq=seq, arch=arch, arch_hash="x", status="completed",
                          metrics={"accuracy": 90.0}, started_at=utcnow(), finished_at=utcnow(), duration_s=0.1)
            s.add(trial)
            s.flush()
            return trial.id


@contextmanager
def running_api(database_url: str, redis_url: str, **settings: Any) -> Iterator[Api]:
    """The app with jobs sent to a queue nobody consumes (they stay queued)."""
    settings.setdefault("allow_command_evaluator", True)  # SPEC's evaluator; never run (nobody consumes)
    config = Settings(database_url=database_url, broker_url=redis_url, queue=f"unconsumed-{uuid.uuid4().hex}",
                      **settings)
    with TestClient(create_app(config)) as client:
        yield Api(client, make_session_factory(make_engine(database_url)))
