"""``GET /v1/health``: up or down per component, for load balancers; details go to the log only."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.auth import current_caller
from api.deps import SessionFactory, SettingsDep
from api.problems import Problem, problem_responses
from api.schemas import Health
from hwnas_settings.version import __version__
from storage.db import StorageError, session_scope

router = APIRouter(prefix="/v1", tags=["health"])
log = logging.getLogger("hwnas.api")


@router.get("/health", response_model=Health, operation_id="get_health",
            responses={503: {"model": Health, "description": "a component is down"}, **problem_responses(405, 500)})
def health(request: Request, factory: SessionFactory, settings: SettingsDep) -> Health | JSONResponse:
    database = "up"
    try:
        with session_scope(factory) as s:
            s.execute(text("SELECT 1"))
    except (StorageError, OSError) as exc:
        log.warning("health: database down: %s", exc)
        database = "down"
    broker = "embedded"
    if not settings.embedded:
        try:
            request.app.state.ping_broker()
            broker = "up"
        except Exception as exc:  # any failure to reach it: kombu raises many kinds
            log.warning("health: broker down: %s", exc)
            broker = "down"
    body = Health(status="ok" if database == "up" and broker != "down" else "down", database=database,
                  broker=broker)  # type: ignore[arg-type]
    if _known_caller(request, factory, settings):
        body.version, body.mode = __version__, "embedded" if settings.embedded else "celery"
    if body.status != "ok":
        return JSONResponse(body.model_dump(), status_code=503, headers={"Retry-After": "5"})
    return body


def _known_caller(request: Request, factory: SessionFactory, settings: SettingsDep) -> bool:
    if settings.embedded:
        return True
    if not (request.headers.get("authorization") or request.headers.get("x-api-key")):
        return False
    try:
        current_caller(request, factory, settings)
        return True
    except (Problem, StorageError):
        return False
