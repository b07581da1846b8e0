"""Read-only catalog: search spaces, strategies, devices."""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter, Depends

from api.auth import current_caller
from api.deps import SessionFactory
from api.problems import Problem
from api.schemas import DevicePublic, SearchSpacePublic, StrategyPublic
from nas.strategies import STRATEGIES
from search_spaces import SPACES
from storage import catalog as catalog_q
from storage.db import session_scope
from storage.models import Device

router = APIRouter(prefix="/v1", tags=["catalog"], dependencies=[Depends(current_caller)])


@router.get("/search-spaces", response_model=list[SearchSpacePublic])
def search_spaces() -> list[SearchSpacePublic]:
    return [SearchSpacePublic(name=s.name, description=s.description, size=s.size,
                              choices=[list(c) for c in s.choices],
                              example=s.sample(np.random.default_rng(0)))
            for s in SPACES.values()]


@router.get("/strategies", response_model=list[StrategyPublic])
def strategies() -> list[StrategyPublic]:
    return [StrategyPublic(name=name, description=cls.description) for name, cls in sorted(STRATEGIES.items())]


def device_public(d: Device) -> DevicePublic:
    return DevicePublic(name=d.name, space=d.space, kind=d.kind, device=d.table.get("device", {}),
                        entries=len(d.table.get("entries", {})),
                        provenance=d.table.get("provenance", {}), validation=d.table.get("validation", {}))


@router.get("/devices", response_model=list[DevicePublic])
def devices(factory: SessionFactory, space: str | None = None) -> list[DevicePublic]:
    with session_scope(factory) as s:
        return [device_public(d) for d in catalog_q.list_devices(s, space)]


@router.get("/devices/{name}", response_model=list[DevicePublic])
def device(name: str, factory: SessionFactory) -> list[DevicePublic]:
    """One device's tables, one per search space."""
    with session_scope(factory) as s:
        rows = catalog_q.get_device(s, name)
    if not rows:
        raise Problem(404, "Device not found", f"no latency table for device {name!r}")
    return [device_public(d) for d in rows]
