from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import text

from api.deps import SessionFactory, SettingsDep
from api.problems import Problem, problem_responses
from api.schemas import Health
from hwnas_settings.version import __version__
from storage.db import StorageError, session_scope

router = APIRouter(prefix="/v1", tags=["health"])


@router.get("/health", response_model=Health, responses=problem_responses(405, 500, 503), operation_id="get_health")
def health(request: Request, factory: SessionFactory, settings: SettingsDep) -> Health:
    try:
        with session_scope(factory) as s:
            s.execute(text("SELECT 1"))
    except StorageError as exc:
        raise Problem(503, "Database unavailable", str(exc)) from None
    broker = "embedded"
    if not settings.embedded:
        try:
            request.app.state.ping_broker()
            broker = "ok"
        except Exception as exc:
            raise Problem(503, "Broker unavailable", str(exc)) from None
    return Health(status="ok", version=__version__, mode="embedded" if settings.embedded else "celery",
                  database="ok", broker=broker)
