"""RFC 9457 problem details for every error the API returns."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.routing import Match
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from nas.catalog import SpecError
from sqlalchemy.exc import SQLAlchemyError

from nas.service import IdempotencyMismatch, QuotaExceeded
from nas.registry import EVALUATORS
from storage.db import Conflict, InvalidData, StorageError, Unavailable

log = logging.getLogger("hwnas.api")
MEDIA_TYPE = "application/problem+json"


class Problem(Exception):
    def __init__(self, status: int, title: str, detail: str = "",
                 errors: list[dict[str, Any]] | None = None, headers: dict[str, str] | None = None):
        super().__init__(detail or title)
        self.status, self.title, self.detail = status, title, detail
        self.errors = errors or []
        self.headers = headers


class FieldError(BaseModel):
    """One field at fault: its JSON path (``objectives[1].device``), what is wrong, and the valid choices."""

    field: str
    message: str
    choices: list[str] | None = None


class ProblemDetails(BaseModel):
    """RFC 9457 problem details; ``errors`` names each field at fault. Every error response has this body."""

    model_config = ConfigDict(title="Problem")

    type: str = "about:blank"
    title: str
    status: int
    detail: str = ""
    instance: str = ""
    errors: list[FieldError] = Field(default_factory=list)


_DESCRIPTIONS = {400: "Unreadable request", 401: "Missing or invalid API key", 404: "Not found",
                 405: "Method not allowed", 409: "Conflict with the resource's state", 413: "Request body too large",
                 422: "Invalid request (problem details name the field)", 429: "Quota or rate limit (see Retry-After)",
                 500: "Internal error", 503: "Database or broker unavailable"}


PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries documenting error responses as application/problem+json (one ``Problem``
    component, which api.openapi registers)."""
    return {code: {"description": _DESCRIPTIONS[code], "content": {MEDIA_TYPE: {"schema": PROBLEM_REF}}}
            for code in codes}


COMMON_ERRORS = problem_responses(401, 405, 422, 429, 500, 503)


def field_error(field: str, message: str, choices: Sequence[str] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"field": field, "message": message}
    if choices is not None:
        error["choices"] = list(choices)
    return error


def json_path(loc: Sequence[str | int]) -> str:
    """('body', 'objectives', 0, 'device') -> 'objectives[0].device' (union tags dropped)."""
    parts: list[str] = []
    for i, item in enumerate(loc):
        if i == 0 and item in ("body", "query", "path", "header"):
            continue
        if isinstance(item, int):
            parts[-1:] = [f"{parts[-1] if parts else ''}[{item}]"]
        elif i > 0 and loc[i - 1] == "evaluator" and item in EVALUATORS:
            continue
        else:
            parts.append(str(item))
    return ".".join(parts) or "body"


def _response(request: Request, problem: Problem) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": problem.title, "status": problem.status,
                            "detail": problem.detail, "instance": request.url.path}
    if problem.errors:
        body["errors"] = problem.errors
    return JSONResponse(body, status_code=problem.status, media_type=MEDIA_TYPE, headers=problem.headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return _response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [field_error(json_path(e["loc"]), e["msg"].removeprefix("Value error, "))
                  for e in exc.errors()]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return _response(request, Problem(422, "Invalid request", detail, errors))

    @app.exception_handler(SpecError)
    async def _spec(request: Request, exc: SpecError) -> JSONResponse:
        return _response(request, Problem(422, "Invalid job spec", f"{exc.field}: {exc.message}",
                                          [field_error(exc.field, exc.message, exc.choices)]))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:  # every method of the path, not only the last route's
            allowed = {m for route in request.app.router.routes
                       if route.matches(request.scope)[0] != Match.NONE for m in getattr(route, "methods", ())}
            headers["Allow"] = ", ".join(sorted(allowed))
        return _response(request, Problem(exc.status_code, str(exc.detail), str(exc.detail), headers=headers))

    @app.exception_handler(QuotaExceeded)
    async def _quota(request: Request, exc: QuotaExceeded) -> JSONResponse:
        return _response(request, Problem(429, "Quota exceeded", str(exc),
                                          headers={"Retry-After": str(exc.retry_after_s)}))

    @app.exception_handler(IdempotencyMismatch)
    async def _idempotency(request: Request, exc: IdempotencyMismatch) -> JSONResponse:
        return _response(request, Problem(422, "Idempotency-Key reused", str(exc),
                                          [field_error("idempotency-key", str(exc))]))

    # Database and driver errors: the details (SQL, types, values) go to the log, never to the client.
    @app.exception_handler(InvalidData)
    async def _invalid_data(request: Request, exc: InvalidData) -> JSONResponse:
        log.warning("database refused a value on %s %s: %s", request.method, request.url.path, exc)
        return _response(request, Problem(422, "Invalid request", "the request holds a value the service cannot "
                                          "store (too large, too long or not representable)"))

    @app.exception_handler(Conflict)
    async def _conflict(request: Request, exc: Conflict) -> JSONResponse:
        log.warning("database conflict on %s %s: %s", request.method, request.url.path, exc)
        return _response(request, Problem(409, "Conflict", "the request conflicts with stored data"))

    @app.exception_handler(StorageError)
    async def _storage(request: Request, exc: StorageError) -> JSONResponse:
        log.error("database error on %s %s", request.method, request.url.path, exc_info=exc)
        return _response(request, Problem(500, "Internal server error", "the error was logged on the server"))

    @app.exception_handler(SQLAlchemyError)
    async def _driver(request: Request, exc: SQLAlchemyError) -> JSONResponse:
        log.error("database driver error on %s %s", request.method, request.url.path, exc_info=exc)
        return _response(request, Problem(500, "Internal server error", "the error was logged on the server"))

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return _response(request, Problem(500, "Internal server error", "the error was logged on the server"))

    @app.exception_handler(Unavailable)
    async def _unavailable(request: Request, exc: Unavailable) -> JSONResponse:
        return _response(request, Problem(503, "Database unavailable", "try again shortly",
                                          headers={"Retry-After": "5"}))
