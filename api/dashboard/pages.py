"""The dashboard: server-rendered pages under ``/``, with their data and download routes.

Every route but the assets and the login page takes ``Viewer`` (api/dashboard/access.py:
the API's authentication) and reads through the storage queries the JSON API uses,
scoped to the caller's tenant. The pages' scripts call the JSON API (``/v1/...``) for
trials, fronts and cancel; the login cookie authenticates those calls too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from api.auth import KEY_COOKIE
from api.dashboard import exports
from api.dashboard.access import Viewer
from api.dashboard.architecture import diagram_svg, predicted_latencies
from api.dashboard.jobrows import MAX_ROWS, SORTS, STATUSES, age, arrange, job_row
from api.dashboard.series import job_series
from api.deps import SessionFactory
from api.problems import Problem
from hwnas_settings.version import __version__
from search_spaces import InvalidArchitecture
from nas.service import DbCatalog
from storage import catalog as catalog_q
from storage import jobs as jobs_q
from storage import tenants as tenants_q
from storage.db import session_scope
from storage.models import Job

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
#: Changes whenever a served asset does, so browsers may cache /assets/* for an hour safely.
ASSET_VERSION = hashlib.sha1(b"".join((HERE / "static" / n).read_bytes() for n in ("dashboard.js", "dashboard.css"))
                             + __version__.encode()).hexdigest()[:10]
templates.env.globals.update(version=__version__, asset_version=ASSET_VERSION, age=age)
router = APIRouter(include_in_schema=False)


def _plotly_js() -> Path:
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


#: The only files /assets serves: name -> (path, media type).
ASSETS: dict[str, tuple[Callable[[], Path], str]] = {
    "dashboard.js": (lambda: HERE / "static" / "dashboard.js", "text/javascript"),
    "dashboard.css": (lambda: HERE / "static" / "dashboard.css", "text/css"),
    "plotly.min.js": (_plotly_js, "text/javascript"),
}


def _page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("embedded", request.app.state.settings.embedded)
    return templates.TemplateResponse(request, template, context, status_code=status_code)


def _not_found(request: Request, what: str) -> HTMLResponse:
    return _page(request, "not_found.html", 404, title="Not found", what=what)


@router.get("/assets/{name}")
def asset(name: str) -> Response:
    if name not in ASSETS:
        return Response("not found", status_code=404, media_type="text/plain")
    path, media_type = ASSETS[name]
    return FileResponse(path(), media_type=media_type, headers={"Cache-Control": "public, max-age=3600"})


def _jobs_context(factory: SessionFactory, tenant_id: int, status: str | None, q: str, sort: str,
                  order: str) -> dict[str, Any]:
    sort = sort if sort in SORTS else "created"
    status = status if status in STATUSES else None
    with session_scope(factory) as s:
        jobs, total = jobs_q.list_jobs(s, status=status, limit=MAX_ROWS, tenant_id=tenant_id)
        rows = [job_row(j) for j in jobs]
    rows = arrange(rows, sort=sort, descending=order != "asc", query=q)
    return {"rows": rows, "total": total, "shown_limit": MAX_ROWS, "status": status or "", "q": q,
            "sort": sort, "order": "asc" if order == "asc" else "desc", "sorts": SORTS, "statuses": STATUSES,
            "active": any(r.active for r in rows)}


Status = Annotated[str | None, Query(max_length=20)]
Text = Annotated[str, Query(max_length=200)]


@router.get("/", response_class=HTMLResponse)
def jobs_page(request: Request, factory: SessionFactory, caller: Viewer, status: Status = None, q: Text = "",
              sort: Text = "created", order: Text = "desc") -> HTMLResponse:
    return _page(request, "jobs.html", title="Jobs",
                 **_jobs_context(factory, caller.tenant_id, status, q, sort, order))


@router.get("/fragments/jobs", response_class=HTMLResponse)
def jobs_fragment(request: Request, factory: SessionFactory, caller: Viewer, status: Status = None, q: Text = "",
                  sort: Text = "created", order: Text = "desc") -> HTMLResponse:
    """The table body alone: what the jobs page swaps in while jobs run."""
    return _page(request, "jobs_rows.html", **_jobs_context(factory, caller.tenant_id, status, q, sort, order))


def _load_job(factory: SessionFactory, job_id: str, tenant_id: int) -> Job | None:
    with session_scope(factory) as s:
        return jobs_q.get_job(s, job_id, tenant_id)


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, job_id: str, factory: SessionFactory, caller: Viewer) -> HTMLResponse:
    job = _load_job(factory, job_id, caller.tenant_id)
    if job is None:
        return _not_found(request, f"job {job_id}")
    return _page(request, "job.html", title=job.name or job.id, job=job, row=job_row(job),
                 terminal=job.status in jobs_q.TERMINAL, verified=_verified(factory, job))


def _verified(factory: SessionFactory, job: Job) -> list[dict[str, Any]]:
    """The front's verified members: predicted vs measured latency per device (and the band, if any)."""
    from nas.devices.verify import front_report
    from nas.spec import JobSpec, band_key
    from storage import devices as devices_q

    with session_scope(factory) as s:
        devices = sorted({op.device for op in devices_q.job_operations(s, job.id) if op.kind == "verify"})
        if not devices:
            return []
        trials = jobs_q.front_trials(s, job)
    spec = JobSpec.model_validate(job.spec)
    by_seq = {t.seq: t for t in trials}
    rows = []
    for device in devices:
        bands = [c for c in spec.constraints if c.confidence is not None and c.device == device]
        for row in front_report(spec, trials, device):
            metrics = by_seq[row["seq"]].metrics
            band = None
            if bands:
                c = bands[0]
                band = (metrics.get(band_key(c.key, round(1 - c.confidence, 6))),  # type: ignore[operator]
                        metrics.get(band_key(c.key, c.confidence)))  # type: ignore[arg-type]
            rows.append({**row, "device": device, "band": band})
    return rows


@router.get("/jobs/{job_id}/series.json")
def job_series_json(job_id: str, factory: SessionFactory, caller: Viewer) -> Response:
    """Every trial as columns, the stored front and the hypervolume history (see series.py)."""
    with session_scope(factory) as s:
        job = jobs_q.get_job(s, job_id, caller.tenant_id)
        if job is None:
            raise Problem(404, "Job not found", f"no job {job_id!r}")
        trials = jobs_q.job_trials(s, job.id)
        body = job_series(job.spec, job.reference_point, job.front or [], trials)
        body.update(job_id=job.id, job_status=job.status, evaluated=job.evaluated, budget=job.budget,
                    hypervolume_stored=job.hypervolume)
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


def _download(job_id: str, factory: SessionFactory, caller: Viewer, which: str, fmt: str) -> Response:
    with session_scope(factory) as s:
        job = jobs_q.get_job(s, job_id, caller.tenant_id)
        if job is None:
            raise Problem(404, "Job not found", f"no job {job_id!r}")
        trials = jobs_q.job_trials(s, job.id) if which == "trials" else jobs_q.front_trials(s, job)
        text = exports.trials_csv(trials) if fmt == "csv" else exports.trials_json(trials)
    filename = f"hwnas-{job.id[:8]}-{which}.{fmt}"
    return Response(text, media_type="text/csv" if fmt == "csv" else "application/json",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@router.get("/jobs/{job_id}/{which}.{fmt}")
def download(job_id: str, which: Literal["trials", "front"], fmt: Literal["csv", "json"],
             factory: SessionFactory, caller: Viewer) -> Response:
    """All trials or the front, as CSV or JSON (``/jobs/ID/trials.csv``, ``front.json``, ...)."""
    return _download(job_id, factory, caller, which, fmt)


def _architecture(request: Request, factory: SessionFactory, space_name: str, arch: str, *,
                  tenant_id: int | None, space_hash: str | None = None, **context: Any) -> HTMLResponse:
    """``space_hash``: a job's pinned definition (a registered space may have changed since)."""
    space = DbCatalog(factory, tenant_id).space(space_name, space_hash)
    if space is None:
        return _not_found(request, f"search space {space_name}")
    try:
        svg = diagram_svg(space, arch)
    except InvalidArchitecture as exc:
        return _page(request, "not_found.html", 422, title="Invalid architecture", what=str(exc))
    with session_scope(factory) as s:
        tables = [d.table for d in catalog_q.list_devices(s, space.name)]
    return _page(request, "architecture.html", title="Architecture", space=space, arch=arch, svg=svg,
                 hash=space.canonical_hash(arch), predictions=predicted_latencies(space, arch, tables),
                 **context)


@router.get("/jobs/{job_id}/trials/{seq}", response_class=HTMLResponse)
def trial_page(request: Request, job_id: str, seq: int, factory: SessionFactory, caller: Viewer) -> HTMLResponse:
    with session_scope(factory) as s:
        job = jobs_q.get_job(s, job_id, caller.tenant_id)
        trial = jobs_q.get_trial(s, job_id, seq) if job else None
    if job is None or trial is None:
        return _not_found(request, f"trial {seq} of job {job_id}")
    return _architecture(request, factory, job.spec["space"], trial.arch, tenant_id=job.tenant_id,
                         space_hash=job.spec.get("space_hash"), job=job, trial=trial, on_front=seq in (job.front or []))


@router.get("/architectures/{space}", response_class=HTMLResponse)
def architecture_page(request: Request, space: str, factory: SessionFactory, caller: Viewer,
                      arch: Annotated[str, Query(min_length=1, max_length=4000)]) -> HTMLResponse:
    return _architecture(request, factory, space, arch, tenant_id=caller.tenant_id, job=None,
                         trial=None, on_front=False)


@router.get("/devices", response_class=HTMLResponse)
def devices_page(request: Request, factory: SessionFactory, caller: Viewer) -> HTMLResponse:
    with session_scope(factory) as s:
        devices = [{"name": d.name, "space": d.space, "kind": d.kind, "device": d.table.get("device", {}),
                    "entries": len(d.table.get("entries", {})), "provenance": d.table.get("provenance", {}),
                    "validation": d.table.get("validation", {})} for d in catalog_q.list_devices(s)]
    return _page(request, "devices.html", title="Devices", devices=devices)


@router.get("/compare", response_class=HTMLResponse)
def compare_page(request: Request, factory: SessionFactory, caller: Viewer,
                 jobs: Annotated[list[str], Query(max_length=2000)] = []) -> HTMLResponse:  # noqa: B006
    """``?jobs=a,b`` or ``?jobs=a&jobs=b``; the fronts come from ``/v1/jobs/{id}/pareto``."""
    chosen = [j for raw in jobs for j in raw.split(",") if j.strip()]
    with session_scope(factory) as s:
        recent, _ = jobs_q.list_jobs(s, limit=100, tenant_id=caller.tenant_id)
        rows = [job_row(j) for j in recent]
        found = {j: jobs_q.get_job(s, j, caller.tenant_id) for j in chosen}
    missing = [j for j, job in found.items() if job is None]
    selected = [job_row(job) for job in found.values() if job is not None]
    return _page(request, "compare.html", title="Compare", rows=rows, selected=selected, missing=missing,
                 chosen=set(chosen), now=dt.datetime.now(dt.UTC))


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: Annotated[str, Query(max_length=2000)] = "/") -> HTMLResponse:  # noqa: A002
    return _page(request, "login.html", title="Log in", next=next if next.startswith("/") and not next.startswith("//") else "/")


@router.post("/login", status_code=204, response_class=Response)
def login(request: Request, factory: SessionFactory,
          api_key: Annotated[str, Body(embed=True, min_length=1, max_length=200)]) -> Response:
    """Check an API key and keep it in an HttpOnly, SameSite=Strict cookie for the dashboard."""
    with session_scope(factory) as s:
        tenant = tenants_q.tenant_for_key(s, api_key)
    if tenant is None:
        raise Problem(401, "Invalid API key", "the key is unknown or revoked")
    response = Response(status_code=204)
    response.set_cookie(KEY_COOKIE, api_key, httponly=True, samesite="strict", path="/",
                        secure=request.url.scheme == "https", max_age=30 * 86400)
    return response


@router.post("/logout")
def logout() -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(KEY_COOKIE, path="/")
    return response
