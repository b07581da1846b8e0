"""``/ui/jobs/...``: the JSON API's job routes for the dashboard's scripts, under its session.

The JSON API (``/v1``) takes API keys only; a browser logged in to the dashboard holds a
session cookie instead, which counts on dashboard routes alone (api/dashboard/access.py,
including the same-origin check on cancel). These routes call the very handlers of
api/routers/jobs.py with the dashboard's caller, so answers are identical.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi import Path as PathParam

from api.dashboard.access import Viewer
from api.deps import SessionFactory, SettingsDep
from api.routers import catalog as catalog_api
from api.routers import exports as exports_api
from api.routers import jobs as jobs_api
from api.routers.jobs import TRIAL_SORT_PATTERN, JobId
from api.schemas import DevicePublic, JobPublic, Page, ParetoPublic, TrialPublic

router = APIRouter(prefix="/ui", include_in_schema=False)


@router.get("/jobs/{job_id}", response_model=JobPublic)
def job(job_id: JobId, factory: SessionFactory, caller: Viewer) -> JobPublic:
    return jobs_api.get_job(job_id, factory, caller)


@router.get("/jobs/{job_id}/trials", response_model=Page[TrialPublic])
def trials(job_id: JobId, factory: SessionFactory, caller: Viewer,
           sort: Annotated[str, Query(pattern=TRIAL_SORT_PATTERN)] = "seq",
           status: Literal["completed", "failed"] | None = None,
           limit: Annotated[int, Query(ge=1, le=1000)] = 100,
           offset: Annotated[int, Query(ge=0, le=10**9)] = 0) -> Page[TrialPublic]:
    return jobs_api.list_trials(job_id, factory, caller, sort=sort, status=status, limit=limit, offset=offset)


@router.get("/jobs/{job_id}/pareto", response_model=ParetoPublic)
def pareto(job_id: JobId, factory: SessionFactory, caller: Viewer) -> ParetoPublic:
    return jobs_api.pareto(job_id, factory, caller)


@router.post("/jobs/{job_id}/cancel", status_code=202, response_model=JobPublic)
def cancel(job_id: JobId, factory: SessionFactory, caller: Viewer) -> JobPublic:
    return jobs_api.cancel_job(job_id, factory, caller)


@router.get("/jobs/{job_id}/trials/{trial_id}/export", response_class=Response)
def export(request: Request, job_id: JobId, trial_id: Annotated[int, PathParam(ge=1, le=2**63 - 1)],
           factory: SessionFactory, caller: Viewer, settings: SettingsDep,
           fmt: Annotated[exports_api.ExportFormat, Query(alias="format")] = "torch") -> Response:
    """The trial page's Export links (the same zip, rate and export processes as the API's)."""
    return exports_api.export(request, job_id, trial_id, factory, caller, settings, fmt)


@router.get("/devices/{name}", response_model=list[DevicePublic])
def device(name: Annotated[str, PathParam(pattern=catalog_api.DEVICE_NAME)], factory: SessionFactory,
           caller: Viewer, settings: SettingsDep, space: catalog_api.SpaceQuery = None) -> list[DevicePublic]:
    return catalog_api.device(name, factory, caller, settings, space)
