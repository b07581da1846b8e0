"""The catalog: search spaces, strategies, devices (latency tables, which tenants may add)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response, status

from api.auth import CallerDep, current_caller
from api.deps import SessionFactory, SettingsDep
from api.problems import COMMON_ERRORS, Problem, field_error, problem_responses
from latency_tables import LatencyTable, TableError
from api.schemas import DevicePublic, OnboardRequest, OperationPublic, StrategyPublic
from nas.devices.measure import agent_status
from nas.service import DbCatalog
from nas.strategies import STRATEGIES
from search_spaces import SPACES
from search_spaces.definition import NAME_PATTERN
from storage import catalog as catalog_q
from storage import devices as devices_q
from storage.db import session_scope
from storage.models import Device, DeviceOperation

router = APIRouter(prefix="/v1", tags=["catalog"], dependencies=[Depends(current_caller)],
                   responses={**COMMON_ERRORS, **problem_responses(404)})
DEVICE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$"
#: A shipped space or one the caller registered (GET /v1/search-spaces lists them).
SpaceQuery = Annotated[str | None, Query(pattern=NAME_PATTERN.pattern)]


@router.get("/strategies", response_model=list[StrategyPublic], operation_id="list_strategies")
def strategies() -> list[StrategyPublic]:
    return [StrategyPublic(name=name, description=cls.description) for name, cls in sorted(STRATEGIES.items())]


def device_public(d: Device, agent: dict[str, Any] | None = None) -> DevicePublic:
    return DevicePublic(name=d.name, space=d.space, kind=d.kind, device=d.table.get("device", {}),
                        entries=len(d.table.get("entries", {})),
                        provenance=d.table.get("provenance", {}), validation=d.table.get("validation", {}),
                        agent=agent)


def operation_public(op: DeviceOperation) -> OperationPublic:
    base = f"/v1/devices/{op.device}/operations/{op.id}"
    return OperationPublic(id=op.id, kind=op.kind, device=op.device, space=op.space, job_id=op.job_id,
                           params={k: v for k, v in op.params.items() if k != "tenant"}, status=op.status,
                           progress=op.progress, result=op.result, error=op.error, created_at=op.created_at,
                           started_at=op.started_at, finished_at=op.finished_at, links={"self": base})


@router.get("/devices", response_model=list[DevicePublic], operation_id="list_devices")
def devices(factory: SessionFactory, space: SpaceQuery = None) -> list[DevicePublic]:
    with session_scope(factory) as s:
        return [device_public(d) for d in catalog_q.list_devices(s, space)]


@router.get("/devices/{name}", response_model=list[DevicePublic], operation_id="get_device")
def device(name: Annotated[str, Path(pattern=DEVICE_NAME)], factory: SessionFactory, settings: SettingsDep,
           space: SpaceQuery = None) -> list[DevicePublic]:
    """One device's tables (metadata, provenance, validation), one per search space, and its agent:
    whether one is online and when one last answered. A device with an agent but no table yet
    is listed once, with 0 entries, for the agent's space."""
    agent = agent_status(factory, name, settings.agent_offline_after_s)
    with session_scope(factory) as s:
        rows = catalog_q.get_device(s, name, space)
        if not rows:
            if agent is not None and (space is None or agent["space"] == space):
                return [DevicePublic(name=name, space=agent["space"], kind="", device={}, entries=0,
                                     provenance={}, validation={}, agent=agent)]
            raise Problem(404, "Device not found", f"no latency table for device {name!r}"
                          + (f" in space {space!r}" if space else "") + " and no agent has answered for it")
        return [device_public(d, agent) for d in rows]


@router.post("/devices/{name}/onboard", status_code=status.HTTP_202_ACCEPTED, response_model=OperationPublic,
             responses=problem_responses(409))
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
        existing = catalog_q.get_device(s, name, body.space)
        if existing and existing[0].table.get("provenance", {}).get("uploaded_by") != caller.tenant:
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


@router.post("/devices", status_code=status.HTTP_201_CREATED, response_model=DevicePublic, operation_id="upload_device",
             responses=problem_responses(400, 409, 413))
def upload_device(table: Annotated[dict[str, Any], Body(description="A latency table file (hwnas.latency_table/2)")],
                  factory: SessionFactory, response: Response, caller: CallerDep) -> DevicePublic:
    """Add a device's table for one space, or replace one the same tenant uploaded.

    The table must cover every op signature of its space with finite, non-negative
    values; a refusal names the entry. Shipped tables and other tenants' are kept (409).
    """
    try:
        parsed = LatencyTable.from_dict(table)
        registered = None if parsed.space in SPACES else DbCatalog(factory, caller.tenant_id).space(parsed.space)
        if parsed.space not in SPACES and registered is None:
            raise TableError(f"unknown search space {parsed.space!r}; register it (POST /v1/search-spaces) "
                             "or use a shipped one", entry="space")
        parsed.check_space(registered)
    except TableError as exc:
        where = exc.entry or "body"
        raise Problem(422, "Invalid latency table", f"{where}: {exc}", [field_error(where, str(exc))]) from None
    data = parsed.to_dict()
    data["provenance"] = {**data.get("provenance", {}), "uploaded_by": caller.tenant}
    with session_scope(factory) as s:
        existing = catalog_q.get_device(s, parsed.device_name, parsed.space)
        if existing and existing[0].table.get("provenance", {}).get("uploaded_by") != caller.tenant:
            raise Problem(409, "Device table exists", f"a table for {parsed.device_name!r} in space "
                          f"{parsed.space!r} exists and is not yours; upload it under another device name")
        stored = catalog_q.upsert_device(s, data)
        response.headers["Location"] = f"/v1/devices/{stored.name}?space={stored.space}"
        return device_public(stored)
