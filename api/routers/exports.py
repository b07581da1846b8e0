"""``GET /v1/jobs/{job_id}/trials/{trial_id}/export``: a trial's architecture as a zip to take home.

The URL is stable: the dashboard's architecture page links to it with ``?format=``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi import Path as PathParam

from api.auth import CallerDep
from api.deps import SessionFactory, SettingsDep
from api.problems import COMMON_ERRORS, Problem, field_error, problem_responses
from api.routers.jobs import JobId
from nas.export import ExportError
from nas.export.service import Busy, NotFound, export_trial

router = APIRouter(prefix="/v1/jobs", tags=["exports"], responses={**COMMON_ERRORS, **problem_responses(404)})
ExportFormat = Literal["torch", "onnx", "json"]
#: application/zip, or application/octet-stream for clients that ask for plain bytes (Accept header):
#: the same zip either way; listing both lets generic client generators read it as binary.
ZIP = {media: {"schema": {"type": "string", "format": "binary"}} for media in ("application/zip", "application/octet-stream")}


@router.get("/{job_id}/trials/{trial_id}/export", operation_id="export_trial", response_class=Response,
            responses={200: {"description": "A zip: the model file(s) and manifest.json", "content": ZIP},
                       **problem_responses(503)})
def export(request: Request, job_id: JobId,
           trial_id: Annotated[int, PathParam(ge=1, le=2**63 - 1, description="trial id")],
           factory: SessionFactory, caller: CallerDep, settings: SettingsDep,
           fmt: Annotated[ExportFormat, Query(alias="format", description=(
               "torch: standalone model.py (+ weights.pt when trained); onnx: model.onnx checked with "
               "onnxruntime; json: space, architecture, canonical hash"))] = "torch") -> Response:
    """The trial's architecture as standalone code, ONNX or JSON, with a manifest of predicted latencies.

    ONNX builds run in the server's export processes (``export_workers``), cached by space,
    architecture, format and seed; each tenant may ask for ``export_rate_per_minute`` exports
    (429 beyond), and a full export queue is a 503 with Retry-After.
    """
    retry_after = request.app.state.rate_limiter.hit(f"{settings.queue}:export:{caller.tenant_id}",
                                                     settings.export_rate_per_minute)
    if retry_after is not None:
        raise Problem(429, "Too many exports", f"more than {settings.export_rate_per_minute} exports a minute",
                      headers={"Retry-After": str(retry_after)})
    try:
        archive = export_trial(factory, tenant_id=caller.tenant_id, job_id=job_id, trial_id=trial_id, fmt=fmt,
                               runner=request.app.state.export_runner)
    except Busy as exc:
        raise Problem(503, "Export busy", str(exc), headers={"Retry-After": str(exc.retry_after_s)}) from None
    except NotFound as exc:
        raise Problem(404, "Not found", str(exc)) from None
    except ExportError as exc:
        raise Problem(422, "Cannot export", str(exc), [field_error("arch", str(exc))]) from None
    accept = request.headers.get("accept", "")
    media = "application/octet-stream" if "application/octet-stream" in accept and "application/zip" not in accept \
        else "application/zip"
    return Response(archive.content, media_type=media,
                    headers={"Content-Disposition": f'attachment; filename="{archive.filename}"'})
