"""``/ui/jobs/...``: the JSON API's job routes for the dashboard's scripts, under its session.

The JSON API (``/v1``) takes API keys only; a browser logged in to the dashboard holds a
session cookie instead, which counts on dashboard routes alone (api/dashboard/access.py,
including the same-origin check on cancel). These routes call the very handlers of
api/routers/jobs.py with the dashboard's caller, so answers are identical.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from api.dashboard.access import Viewer
from api.deps import SessionFactory
from api.routers import jobs as jobs_api
from api.routers.jobs import TRIAL_SORT_PATTERN, JobId
from api.schemas import JobPublic, Page, ParetoPublic, TrialPublic

router = APIRouter(prefix="/ui/jobs", include_in_schema=False)


@router.get("/{job_id}", response_model=JobPublic)
def job(job_id: JobId, factory: SessionFactory, caller: Viewer) -> JobPublic:
    return jobs_api.get_job(job_id, factory, caller)


@router.get("/{job_id}/trials", response_model=Page[TrialPublic])
def trials(job_id: JobId, factory: SessionFactory, caller: Viewer,
           sort: Annotated[str, Query(pattern=TRIAL_SORT_PATTERN)] = "seq",
           status: Literal["completed", "failed"] | None = None,
           limit: Annotated[int, Query(ge=1, le=1000)] = 100,
           offset: Annotated[int, Query(ge=0, le=10**9)] = 0) -> Page[TrialPublic]:
    return jobs_api.list_trials(job_id, factory, caller, sort=sort, status=status, limit=limit, offset=offset)


@router.get("/{job_id}/pareto", response_model=ParetoPublic)
def pareto(job_id: JobId, factory: SessionFactory, caller: Viewer) -> ParetoPublic:
    return jobs_api.pareto(job_id, factory, caller)


@router.post("/{job_id}/cancel", status_code=202, response_model=JobPublic)
def cancel(job_id: JobId, factory: SessionFactory, caller: Viewer) -> JobPublic:
    return jobs_api.cancel_job(job_id, factory, caller)
