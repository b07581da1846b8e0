from __future__ import annotations

import logging
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Header, Query, Request, Response, status
from fastapi import Path as PathParam

from api.auth import CallerDep
from api.deps import Enqueue, SessionFactory, SettingsDep
from api.problems import COMMON_ERRORS, Problem, field_error, problem_responses
from api.routers.catalog import operation_public
from api.schemas import JobPublic, JobStatus, ObjectivePublic, OperationPublic, Page, ParetoPublic, Progress, TrialPublic
from nas import service
from nas.devices.verify import front_report
from nas.spec import SPEC_EXAMPLES, JobSpec, VerifySpec, band_key
from storage import devices as devices_q
from storage import jobs as jobs_q
from storage.db import session_scope
from storage.models import Job, Trial

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses={**COMMON_ERRORS, **problem_responses(404)})
JobId = Annotated[str, PathParam(pattern=r"^[0-9a-f-]{1,36}$", description="job id (UUID)")]
TRIAL_SORT_PATTERN = r"^-?(seq|duration_s|status|metric:[A-Za-z0-9_@.:\-]{1,100})$"
log = logging.getLogger("hwnas.api")


def job_public(job: Job) -> JobPublic:
    base = f"/v1/jobs/{job.id}"
    return JobPublic(
        id=job.id, name=job.name, status=job.status,
        progress=Progress(evaluated=job.evaluated, failed=job.failed, budget=job.budget,
                          fraction=round(job.evaluated / job.budget, 4) if job.budget else 0.0,
                          phase=job.phase),
        best=job.best, hypervolume=job.hypervolume, reference_point=job.reference_point, error=job.error,
        cancel_requested=job.cancel_requested, created_at=job.created_at, started_at=job.started_at,
        finished_at=job.finished_at, updated_at=job.updated_at, spec=job.spec,
        links={"self": base, "trials": f"{base}/trials", "pareto": f"{base}/pareto", "cancel": f"{base}/cancel"})


def trial_public(t: Trial) -> TrialPublic:
    return TrialPublic.model_validate(t, from_attributes=True)


def _not_found(job_id: str) -> Problem:
    return Problem(404, "Job not found", f"no job {job_id!r}")


def _get(factory: SessionFactory, caller: CallerDep, job_id: str) -> Job:
    with session_scope(factory) as s:
        job = jobs_q.get_job(s, job_id, caller.tenant_id)
    if job is None:
        raise _not_found(job_id)
    return job


_JOB_ID = {"job_id": "$response.body#/id"}
_LINKS = {"GetJob": {"operationId": "get_job", "parameters": _JOB_ID},
          "ListTrials": {"operationId": "list_trials", "parameters": _JOB_ID},
          "GetPareto": {"operationId": "get_pareto", "parameters": _JOB_ID},
          "CancelJob": {"operationId": "cancel_job", "parameters": _JOB_ID}}


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=JobPublic, operation_id="submit_job",
             responses={202: {"description": "Accepted; the job runs in the background", "links": _LINKS},
                        **problem_responses(400, 413)})
def submit_job(spec: Annotated[JobSpec, Body(openapi_examples=SPEC_EXAMPLES)], response: Response, factory: SessionFactory, enqueue: Enqueue, caller: CallerDep,
               settings: SettingsDep,
               idempotency_key: Annotated[str | None, Header(min_length=1, max_length=200)] = None) -> JobPublic:
    if spec.evaluator.type == "command" and not caller.command_evaluator:
        message = service.command_refusal(caller.tenant)
        raise Problem(422, "Invalid job spec", f"evaluator.type: {message}",
                      [field_error("evaluator.type", message, ["benchmark", "train", "proxy"])])
    job, created = service.submit(factory, spec, tenant_id=caller.tenant_id, quotas=caller.quotas,
                                  idempotency_key=idempotency_key)
    if created:
        try:
            enqueue(job.id)
        except Exception:  # the job is stored and queued; the reaper hands it to a worker later
            log.exception("could not enqueue job %s", job.id)
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return job_public(job)


@router.get("", response_model=Page[JobPublic], operation_id="list_jobs")
def list_jobs(factory: SessionFactory, caller: CallerDep, status: JobStatus | None = None,
              limit: Annotated[int, Query(ge=1, le=500)] = 50,
              offset: Annotated[int, Query(ge=0, le=10**9)] = 0) -> Page[JobPublic]:
    with session_scope(factory) as s:
        items, total = jobs_q.list_jobs(s, status=status, limit=limit, offset=offset, tenant_id=caller.tenant_id)
    return Page(items=[job_public(j) for j in items], total=total, limit=limit, offset=offset)


@router.get("/{job_id}", response_model=JobPublic, operation_id="get_job")
def get_job(job_id: JobId, factory: SessionFactory, caller: CallerDep) -> JobPublic:
    return job_public(_get(factory, caller, job_id))


@router.get("/{job_id}/trials", response_model=Page[TrialPublic], operation_id="list_trials")
def list_trials(job_id: JobId, factory: SessionFactory, caller: CallerDep,
                sort: Annotated[str, Query(pattern=TRIAL_SORT_PATTERN, description=(
                    "seq, duration_s, status or metric:KEY (e.g. metric:accuracy); prefix - for descending"))] = "seq",
                status: Literal["completed", "failed"] | None = None,
                limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                offset: Annotated[int, Query(ge=0, le=10**9)] = 0) -> Page[TrialPublic]:
    job = _get(factory, caller, job_id)
    with session_scope(factory) as s:
        items, total = jobs_q.list_trials(s, job.id, sort=sort, limit=limit, offset=offset, status=status)
    return Page(items=[trial_public(t) for t in items], total=total, limit=limit, offset=offset)


@router.get("/{job_id}/pareto", response_model=ParetoPublic, operation_id="get_pareto")
def pareto(job_id: JobId, factory: SessionFactory, caller: CallerDep) -> ParetoPublic:
    with session_scope(factory) as s:
        job = jobs_q.get_job(s, job_id, caller.tenant_id)
        if job is None:
            raise _not_found(job_id)
        trials = jobs_q.front_trials(s, job)
        operations = devices_q.job_operations(s, job.id)
    spec = JobSpec.model_validate(job.spec)
    verifications = []
    for op in operations:
        if op.kind == "verify":
            verifications.append({"device": op.device, "status": op.status, "progress": op.progress,
                                  "error": op.error, "operation": op.id,
                                  "refit": (op.result or {}).get("refit"),
                                  "trials": front_report(spec, trials, op.device)})
    bands = [{"key": c.key, "confidence": c.confidence, "lower": band_key(c.key, round(1 - c.confidence, 6)),
              "upper": band_key(c.key, c.confidence), "checked": c.check_key}
             for c in spec.constraints if c.confidence is not None]
    return ParetoPublic(
        job_id=job.id, status=job.status,
        objectives=[ObjectivePublic(key=o.key, metric=o.metric, device=o.device, goal=o.goal)
                    for o in spec.objectives],
        constraints=[c.model_dump(exclude_none=True) for c in spec.constraints]
        + ([{"device_limits": spec.device or "the objectives' device"}] if spec.device_limits else []),
        reference_point=job.reference_point or {}, hypervolume=job.hypervolume or 0.0,
        trials=[trial_public(t) for t in trials], bands=bands, verifications=verifications)


@router.post("/{job_id}/verify", status_code=status.HTTP_202_ACCEPTED, response_model=OperationPublic,
             operation_id="verify_job", responses=problem_responses(400, 409, 413))
def verify_job(job_id: JobId, body: VerifySpec, factory: SessionFactory, caller: CallerDep, settings: SettingsDep,
               request: Request, response: Response) -> OperationPublic:
    """Measure the front's best ``top_k`` on the device's agent; the Pareto endpoint then shows
    predicted vs measured, and the device's table is refitted as a new revision."""
    job = _get(factory, caller, job_id)
    if job.status != "succeeded":
        raise Problem(409, "Job not finished", f"job {job_id} is {job.status}; verify a succeeded job's front")
    if settings.embedded:
        raise Problem(409, "Needs the Celery mode", "measurement agents run as Celery workers: start the server "
                      "with HWNAS_BROKER_URL set (see docs/devices.md)")
    with session_scope(factory) as s:
        op = devices_q.create_operation(s, kind="verify", device=body.device, space=job.spec["space"],
                                        params={"top_k": body.top_k}, tenant_id=caller.tenant_id, job_id=job.id)
    request.app.state.enqueue_operation(op.id)
    response.headers["Location"] = f"/v1/devices/{body.device}/operations/{op.id}"
    return operation_public(op)


@router.post("/{job_id}/cancel", status_code=status.HTTP_202_ACCEPTED, response_model=JobPublic, operation_id="cancel_job",
             responses=problem_responses(409))
def cancel_job(job_id: JobId, factory: SessionFactory, caller: CallerDep) -> JobPublic:
    job = _get(factory, caller, job_id)
    if job.status in jobs_q.TERMINAL:
        raise Problem(409, "Job already ended", f"job {job_id} is {job.status}")
    with session_scope(factory) as s:
        jobs_q.request_cancel(s, job_id)
    return job_public(_get(factory, caller, job_id))
