"""The catalog: search spaces, strategies, devices (latency tables, which tenants may add)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Response, status

from api.auth import CallerDep, current_caller
from api.deps import SessionFactory
from api.problems import COMMON_ERRORS, Problem, field_error, problem_responses
from latency_tables import LatencyTable, TableError
from api.schemas import DevicePublic, StrategyPublic
from nas.service import DbCatalog
from nas.strategies import STRATEGIES
from search_spaces import SPACES
from search_spaces.definition import NAME_PATTERN
from storage import catalog as catalog_q
from storage.db import session_scope
from storage.models import Device

router = APIRouter(prefix="/v1", tags=["catalog"], dependencies=[Depends(current_caller)],
                   responses={**COMMON_ERRORS, **problem_responses(404)})
DEVICE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$"
#: A shipped space or one the caller registered (GET /v1/search-spaces lists them).
SpaceQuery = Annotated[str | None, Query(pattern=NAME_PATTERN.pattern)]


@router.get("/strategies", response_model=list[StrategyPublic], operation_id="list_strategies")
def strategies() -> list[StrategyPublic]:
    return [StrategyPublic(name=name, description=cls.description) for name, cls in sorted(STRATEGIES.items())]


def device_public(d: Device) -> DevicePublic:
    return DevicePublic(name=d.name, space=d.space, kind=d.kind, device=d.table.get("device", {}),
                        entries=len(d.table.get("entries", {})),
                        provenance=d.table.get("provenance", {}), validation=d.table.get("validation", {}))


@router.get("/devices", response_model=list[DevicePublic], operation_id="list_devices")
def devices(factory: SessionFactory, space: SpaceQuery = None) -> list[DevicePublic]:
    with session_scope(factory) as s:
        return [device_public(d) for d in catalog_q.list_devices(s, space)]


@router.get("/devices/{name}", response_model=list[DevicePublic], operation_id="get_device")
def device(name: Annotated[str, Path(pattern=DEVICE_NAME)], factory: SessionFactory,
           space: SpaceQuery = None) -> list[DevicePublic]:
    """One device's tables (metadata, provenance, validation), one per search space."""
    with session_scope(factory) as s:
        rows = catalog_q.get_device(s, name, space)
        if not rows:
            raise Problem(404, "Device not found", f"no latency table for device {name!r}"
                          + (f" in space {space!r}" if space else ""))
        return [device_public(d) for d in rows]


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
