"""The OpenAPI document: what generated clients are built from, so it must tell the whole truth.

FastAPI's generated document is post-processed once:
- every error response (4xx/5xx) is ``application/problem+json`` with one ``Problem`` component
  (FastAPI's own ``HTTPValidationError`` is never sent: validation errors are problems too);
- ``securitySchemes``: ``Authorization: Bearer KEY`` and ``X-API-Key: KEY``, required by every
  operation but the health check (the dashboard's cookie is for browsers and left out);
- the job spec's ``constraints`` lists every form the server accepts: constraint objects, the
  string ``"device"`` (the target device's declared budgets, same as ``"device_limits": true``)
  alone or as a list item.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api.problems import MEDIA_TYPE, PROBLEM_REF, ProblemDetails

REF = "#/components/schemas/{model}"
SECURITY_SCHEMES = {
    "bearerAuth": {"type": "http", "scheme": "bearer",
                   "description": "An API key (`hwnas keys create --tenant NAME`) as `Authorization: Bearer KEY`."},
    "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key",
                     "description": "The same API key in an `X-API-Key` header."},
}
SECURED = [{"bearerAuth": []}, {"apiKeyHeader": []}]
#: Operations anyone may call (load balancers probe health without a key).
PUBLIC = {"get_health"}


def _constraints_schema() -> dict[str, Any]:
    device = {"type": "string", "enum": ["device"],
              "description": "The target device's declared budgets (SRAM, flash, latency), as `device_limits: true`."}
    return {
        "title": "Constraints",
        "description": "Constraint objects; or `\"device\"` (alone or as an item): apply the target device's "
                       "budgets, exactly as `\"device_limits\": true` does.",
        "anyOf": [{"type": "array", "maxItems": 32,
                   "items": {"anyOf": [{"$ref": REF.format(model="ConstraintSpec")}, device]}},
                  device],
    }


def build(app: FastAPI) -> dict[str, Any]:
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    problem = ProblemDetails.model_json_schema(ref_template=REF)
    schemas.update(problem.pop("$defs", {}))
    schemas["Problem"] = problem
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    schema["components"]["securitySchemes"] = SECURITY_SCHEMES
    for ops in schema["paths"].values():
        for op in ops.values():
            for code, response in op.get("responses", {}).items():
                if code[:1] in ("4", "5"):
                    response["content"] = {MEDIA_TYPE: {"schema": PROBLEM_REF}}
            op["security"] = [] if op.get("operationId") in PUBLIC else SECURED
    spec = schemas.get("JobSpec")
    if spec is not None:
        spec["properties"]["constraints"] = _constraints_schema()
    return schema


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
