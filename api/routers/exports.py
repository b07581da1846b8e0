"""``GET /v1/jobs/{job_id}/trials/{trial_id}/export``: a trial's architecture as a zip to take home.

The URL is stable: the dashboard's architecture page links to it with ``?format=``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from fastapi import Path as PathParam

from api.auth import CallerDep
from api.deps import SessionFactory
from api.problems import COMMON_ERRORS, Problem, field_error, problem_responses
from api.routers.jobs import JobId
from nas.export import ExportError
from nas.export.service import NotFound, export_trial

router = APIRouter(prefix="/v1/jobs", tags=["exports"], responses={**COMMON_ERRORS, **problem_responses(404)})
ExportFormat = Literal["torch", "onnx", "json"]
ZIP = {"application/zip": {"schema": {"type": "string", "format": "binary"}}}


@router.get("/{job_id}/trials/{trial_id}/export", operation_id="export_trial", response_class=Response,
            responses={200: {"description": "A zip: the model file(s) and manifest.json", "content": ZIP}})
def export(job_id: JobId, trial_id: Annotated[int, PathParam(ge=1, le=2**63 - 1, description="trial id")],
           factory: SessionFactory, caller: CallerDep,
           fmt: Annotated[ExportFormat, Query(alias="format", description=(
               "torch: standalone model.py (+ weights.pt when trained); onnx: model.onnx checked with "
               "onnxruntime; json: space, architecture, canonical hash"))] = "torch") -> Response:
    """The trial's architecture as standalone code, ONNX or JSON, with a manifest of predicted latencies."""
    try:
        archive = export_trial(factory, tenant_id=caller.tenant_id, job_id=job_id, trial_id=trial_id, fmt=fmt)
    except NotFound as exc:
        raise Problem(404, "Not found", str(exc)) from None
    except ExportError as exc:
        raise Problem(422, "Cannot export", str(exc), [field_error("arch", str(exc))]) from None
    return Response(archive.content, media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{archive.filename}"'})
