"""The catalog: search spaces, strategies, devices (latency tables, which tenants may add)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel
from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response, status

from api.auth import CallerDep, current_caller
from api.deps import SessionFactory, SettingsDep
from api.problems import COMMON_ERRORS, Problem, field_error, problem_responses
from latency_tables import LatencyTable, TableError, check_predictions
from api.schemas import DevicePublic, OnboardRequest, OperationPublic, StrategyParamPublic, StrategyPublic
from nas.devices.measure import agent_status
from nas.service import DbCatalog
from nas.spec import DEVICE_NAME
from nas.strategies import STRATEGIES
from search_spaces import SPACES
from search_spaces.definition import NAME_PATTERN
from storage import catalog as catalog_q
from storage import devices as devices_q
from storage import tenants as tenants_q
from storage.db import session_scope
from storage.models import Device, DeviceOperation

router = APIRouter(prefix="/v1", tags=["catalog"], dependencies=[Depends(current_caller)],
                   responses={**COMMON_ERRORS, **problem_responses(404)})
#: A shipped space or one the caller registered (GET /v1/search-spaces lists them).
SpaceQuery = Annotated[str | None, Query(pattern=NAME_PATTERN.pattern)]


@router.get("/strategies", response_model=list[StrategyPublic], operation_id="list_strategies")
def strategies() -> list[StrategyPublic]:
    """Every strategy with the params it takes: type, default and range."""
    return [StrategyPublic(name=name, description=cls.description, params=strategy_params_public(cls.Params))
            for name, cls in sorted(STRATEGIES.items())]


def strategy_params_public(model: type[BaseModel]) -> list[StrategyParamPublic]:
    """The declared params, read from the model's JSON schema (bounds of ``X | None`` included)."""
    out = []
    for name, prop in model.model_json_schema().get("properties", {}).items():
        options = prop.get("anyOf", [prop])
        main = next((o for o in options if o.get("type") != "null"), options[0])
        kinds = [o.get("type", "any") for o in options]
        out.append(StrategyParamPublic(
            name=name, type=" | ".join(k for k in kinds), default=prop.get("default"),
            minimum=main.get("minimum"), maximum=main.get("maximum"),
            exclusive_minimum=main.get("exclusiveMinimum"), exclusive_maximum=main.get("exclusiveMaximum"),
            choices=main.get("enum"), max_items=main.get("maxItems", main.get("maxProperties")),
            description=prop.get("description", "")))
    return out


def device_public(d: Device, tenant_id: int | None, agent: dict[str, Any] | None = None) -> DevicePublic:
    """A table as a tenant sees it: who owns it, never another tenant's name."""
    provenance = {k: v for k, v in (d.table.get("provenance") or {}).items() if k != "uploaded_by"}
    owner = "shipped" if d.tenant_id is None else "yours" if d.tenant_id == tenant_id else "shared"
    return DevicePublic(name=d.name, space=d.space, kind=d.kind, device=d.table.get("device", {}),
                        entries=len(d.table.get("entries", {})), provenance=provenance,
                        validation=d.table.get("validation", {}), owner=owner,
                        shared=d.tenant_id is None or d.shared, content_hash=d.content_hash, agent=agent)


def operation_public(op: DeviceOperation) -> OperationPublic:
    base = f"/v1/devices/{op.device}/operations/{op.id}"
    return OperationPublic(id=op.id, kind=op.kind, device=op.device, space=op.space, job_id=op.job_id,
                           params={k: v for k, v in op.params.items() if k != "tenant"}, status=op.status,
                           progress=op.progress, result=op.result, error=op.error, created_at=op.created_at,
                           started_at=op.started_at, finished_at=op.finished_at, links={"self": base})


@router.get("/devices", response_model=list[DevicePublic], operation_id="list_devices")
def devices(factory: SessionFactory, caller: CallerDep, space: SpaceQuery = None) -> list[DevicePublic]:
    """The shipped tables, those other tenants shared, and the caller's own."""
    with session_scope(factory) as s:
        return [device_public(d, caller.tenant_id) for d in catalog_q.list_devices(s, space, tenant_id=caller.tenant_id)]


@router.get("/devices/{name}", response_model=list[DevicePublic], operation_id="get_device")
def device(name: Annotated[str, Path(pattern=DEVICE_NAME)], factory: SessionFactory, caller: CallerDep,
           settings: SettingsDep,
           space: SpaceQuery = None) -> list[DevicePublic]:
    """One device's tables (metadata, provenance, validation), one per search space, and its agent:
    whether one is online and when one last answered. A device with an agent but no table yet
    is listed once, with 0 entries, for the agent's space."""
    agent = agent_status(factory, name, settings.agent_offline_after_s)
    with session_scope(factory) as s:
        rows = catalog_q.get_device(s, name, space, tenant_id=caller.tenant_id)
        if not rows:
            if agent is not None and (space is None or agent["space"] == space):
                return [DevicePublic(name=name, space=agent["space"], kind="", device={}, entries=0,
                                     provenance={}, validation={}, agent=agent)]
            raise Problem(404, "Device not found", f"no latency table for device {name!r}"
                          + (f" in space {space!r}" if space else "") + " and no agent has answered for it")
        return [device_public(d, caller.tenant_id, agent) for d in rows]


@router.post("/devices/{name}/onboard", status_code=status.HTTP_202_ACCEPTED, response_model=OperationPublic,
             responses=problem_responses(400, 409, 413))
def onboard(name: Annotated[str, Path(pattern=DEVICE_NAME)], body: OnboardRequest, factory: SessionFactory,
            settings: SettingsDep, caller: CallerDep, request: Request, response: Response) -> OperationPublic:
    """Fit a table for the device from its agent's measurements: ``samples`` reference architectures
    chosen where the known tables disagree, and ``validate`` held-out ones. Poll the Location."""
    if body.space not in SPACES:
        raise Problem(422, "Invalid request", f"space: unknown search space {body.space!r}",
                      [field_error("space", f"unknown search space {body.space!r}", sorted(SPACES))])
    if settings.embedded:
        raise Problem(409, "Needs the Celery mode", "measurement agents run as Celery workers: start the server "
                      "with HWNAS_BROKER_URL set (see docs/devices.md)")
    with session_scope(factory) as s:
        existing = catalog_q.get_device(s, name, body.space, tenant_id=caller.tenant_id)
        if any(d.tenant_id != caller.tenant_id for d in existing):
            raise Problem(409, "Device table exists", f"a table for {name!r} in space {body.space!r} exists and "
                          "is not yours; onboard the board under another device name")
        op = devices_q.create_operation(s, kind="onboard", device=name, space=body.space, tenant_id=caller.tenant_id,
                                        params={"samples": body.samples, "validate": body.validate_,
                                                "seed": body.seed, "tenant": caller.tenant})
    request.app.state.enqueue_operation(op.id)
    response.headers["Location"] = f"/v1/devices/{name}/operations/{op.id}"
    return operation_public(op)


@router.get("/devices/{name}/operations/{op_id}", response_model=OperationPublic)
def operation(name: Annotated[str, Path(pattern=DEVICE_NAME)],
              op_id: Annotated[str, Path(pattern=r"^[0-9a-f-]{1,36}$")], factory: SessionFactory,
              caller: CallerDep) -> OperationPublic:
    """An onboarding or verification: status, progress (what it waits on), result or error."""
    with session_scope(factory) as s:
        op = devices_q.get_operation(s, op_id)
        if op is None or op.device != name or (op.tenant_id is not None and op.tenant_id != caller.tenant_id):
            raise Problem(404, "Operation not found", f"no operation {op_id!r} for device {name!r}")
        return operation_public(op)


def _refuse(exc: TableError) -> Problem:
    where = exc.entry or "body"
    return Problem(422, "Invalid latency table", f"{where}: {exc}", [field_error(where, str(exc))])


@router.post("/devices", status_code=status.HTTP_201_CREATED, response_model=DevicePublic, operation_id="upload_device",
             responses=problem_responses(400, 409, 413))
def upload_device(table: Annotated[dict[str, Any], Body(description="A latency table file (hwnas.latency_table/2)")],
                  factory: SessionFactory, response: Response, caller: CallerDep,
                  shared: Annotated[bool, Query(description="let every tenant see and use it")] = False,
                  ) -> DevicePublic:
    """Add a device's table for one space, or replace one the same tenant uploaded.

    The table is the caller's: other tenants neither list nor use it unless ``shared``.
    The device name must match ``DEVICE_NAME``; the table must cover every op signature
    of its space, and every prediction over the space must be finite, non-negative and at
    most 1e9; a refusal names the entry. A shipped table's name is kept (409), and a
    tenant owns at most ``max_device_tables`` tables (409). Jobs pin the version they
    were submitted with, so replacing a table changes no submitted job.
    """
    try:
        parsed = LatencyTable.from_dict(table)
        if not re.fullmatch(DEVICE_NAME, parsed.device_name):
            raise TableError(f"device.name {parsed.device_name!r} must match {DEVICE_NAME}", entry="device.name")
        registered = None if parsed.space in SPACES else DbCatalog(factory, caller.tenant_id).space(parsed.space)
        if parsed.space not in SPACES and registered is None:
            raise TableError(f"unknown search space {parsed.space!r}; register it (POST /v1/search-spaces) "
                             "or use a shipped one", entry="space")
        parsed.check_space(registered)
        check_predictions(parsed, registered or SPACES[parsed.space])
    except TableError as exc:
        raise _refuse(exc) from None
    data = parsed.to_dict()
    data["provenance"] = {k: v for k, v in data.get("provenance", {}).items() if k != "uploaded_by"}
    with session_scope(factory) as s:
        if catalog_q.own_device(s, parsed.device_name, parsed.space, None) is not None:
            raise Problem(409, "Device table exists", f"{parsed.device_name!r} in space {parsed.space!r} is a "
                          "shipped table; upload yours under another device name")
        existing = catalog_q.own_device(s, parsed.device_name, parsed.space, caller.tenant_id)
        if existing is None:
            tenants_q.lock_tenant(s, caller.tenant_id)  # concurrent uploads count exactly
            owned = catalog_q.count_owned(s, caller.tenant_id)
            if owned >= caller.max_device_tables:
                raise Problem(409, "Device table quota reached", f"this tenant owns {owned} latency tables; "
                              f"the limit is {caller.max_device_tables} (replace one, or ask the operator)")
        stored = catalog_q.upsert_device(s, data, tenant_id=caller.tenant_id, shared=shared)
        response.headers["Location"] = f"/v1/devices/{stored.name}?space={stored.space}"
        return device_public(stored, caller.tenant_id)
