"""The dashboard: server-rendered pages under ``/``, with their data and download routes.

Every route but the assets and the login page takes ``Viewer`` (api/dashboard/access.py:
a login session, or the API's authentication) and reads through the storage queries the
JSON API uses, scoped to the caller's tenant. The pages' scripts call ``/ui/jobs/...``,
the JSON API's job routes under the dashboard's session (the JSON API itself ignores the
cookie). Every page is served with a Content-Security-Policy (scripts from this origin
and the page's nonce only, ``frame-ancestors 'none'``).
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import secrets
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from api.auth import client_address, cross_site
from api.dashboard import assets, exports, formatting, trialcache
from api.dashboard.choosing import compare_data, job_extras, job_space_of, normalised_hv, trial_columns
from api.dashboard.access import SESSION_COOKIE, Viewer, safe_next
from api.dashboard.architecture import diagram_svg, predicted_latencies
from api.dashboard.jobrows import MAX_ROWS, SORTS, STATUSES, age, arrange, job_row
from api.dashboard.projection import band_of
from api.dashboard.series import duplicates_of, job_series, metric_label
from api.deps import SessionFactory, SettingsDep
from api.problems import Problem, field_error
from hwnas_settings.version import __version__
from nas.service import DbCatalog
from search_spaces import InvalidArchitecture
from storage import catalog as catalog_q
from storage import hypervolume as hv_q
from storage import sessions as sessions_q
from storage import jobs as jobs_q
from storage import tenants as tenants_q
from storage.db import session_scope
from nas.spec import JobSpec
from storage.models import Job

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.globals.update(version=__version__, asset_url=assets.url, age=age)
templates.env.filters.update(formatting.FILTERS)
router = APIRouter(include_in_schema=False)


#: Scripts and styles come only from this origin or carry the page's nonce; nothing is
#: evaluated from strings and no style attribute is honoured (scripts set styles through CSSOM).
CSP = ("default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self'; "
       "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "same-origin"}
#: The most jobs /compare shows at once (each is a query and a plot).
MAX_COMPARE = 8


def _page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("embedded", request.app.state.settings.embedded)
    nonce = secrets.token_urlsafe(16)
    context.update(csp_nonce=nonce, csrf_token=getattr(request.state, "csrf_token", ""))
    response = templates.TemplateResponse(request, template, context, status_code=status_code)
    response.headers["Content-Security-Policy"] = CSP.format(nonce=nonce)
    response.headers.update(SECURITY_HEADERS)
    return response


def _not_found(request: Request, what: str) -> HTMLResponse:
    return _page(request, "not_found.html", 404, title="Not found", what=what)


@router.get("/assets/{name}")
def asset(request: Request, name: str) -> Response:
    found = assets.resolve(name)
    if found is None:
        return Response("not found", status_code=404, media_type="text/plain")
    file, cache = found
    encoding = assets.pick_encoding(request.headers.get("accept-encoding", ""))
    headers = {"Cache-Control": cache, "Vary": "Accept-Encoding"}
    if encoding:
        headers["Content-Encoding"] = encoding
    return Response(assets.body(file, encoding), media_type=assets.FILES[file][1], headers=headers)


def _takes_gzip(request: Request) -> bool:
    return "gzip" in request.headers.get("accept-encoding", "")


def _json(request: Request, body: Any) -> Response:
    """JSON for the pages' scripts, gzip-compressed when the browser takes it."""
    raw = json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
    headers = {"Cache-Control": "no-store", "Vary": "Accept-Encoding"}
    if len(raw) > 1024 and _takes_gzip(request):
        raw = gzip.compress(raw, compresslevel=5)
        headers["Content-Encoding"] = "gzip"
    return Response(raw, media_type="application/json", headers=headers)


def _jobs_context(factory: SessionFactory, tenant_id: int, status: str | None, q: str, sort: str,
                  order: str) -> dict[str, Any]:
    sort = sort if sort in SORTS else "created"
    status = status if status in STATUSES else None
    with session_scope(factory) as s:
        jobs, total = jobs_q.list_jobs(s, status=status, limit=MAX_ROWS, tenant_id=tenant_id)
    rows = [job_row(j, normalised_hv(factory, j, wait=False)) for j in jobs]
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
    spec = JobSpec.model_validate(job.spec)
    return _page(request, "job.html", title=job.name or job.id, job=job, row=job_row(job),
                 terminal=job.status in jobs_q.TERMINAL, hv=normalised_hv(factory, job, wait=False),
                 y_label=metric_label(spec, spec.objectives[0].key), verified=_verified(factory, job))


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
def job_series_json(request: Request, job_id: str, factory: SessionFactory, caller: Viewer) -> Response:
    """Every trial as columns, the stored front and the hypervolume history (see series.py); the
    trials are read and encoded once per job and process, then only those added since (trialcache.py)."""
    with session_scope(factory) as s:
        job = jobs_q.get_job(s, job_id, caller.tenant_id)
        if job is None:
            raise Problem(404, "Job not found", f"no job {job_id!r}")
        history = hv_q.history(s, job.id)  # stored by the worker: nothing is recomputed here
    space = job_space_of(factory, job)
    trials = trialcache.job_trials(factory, job.id, space)
    spec = JobSpec.model_validate(job.spec)
    front = job.front or []
    rest = job_series(spec, job.reference_point, front, trials.keys, trials.duplicates(spec, front), history,
                      len(trials.rows))
    rest.update(job_id=job.id, job_status=job.status, evaluated=job.evaluated, budget=job.budget,
                hypervolume_stored=job.hypervolume, **job_extras(factory, job, trials, space))
    compressed = _takes_gzip(request)
    headers = {"Cache-Control": "no-store", "Vary": "Accept-Encoding"} | (
        {"Content-Encoding": "gzip"} if compressed else {})
    return Response(trials.body(rest, compressed), media_type="application/json", headers=headers)


Keys = Annotated[str, Query(max_length=1000, pattern=r"^[A-Za-z0-9_@.,\-]*$")]


@router.get("/jobs/{job_id}/columns.json")
def job_columns_json(request: Request, job_id: str, factory: SessionFactory, caller: Viewer,
                     keys: Keys = "") -> Response:
    """``?keys=latency_ms@raspi4,params``: those values for every trial, through the tables and the space
    (at most 8 keys; ``unknown`` lists those no table or hook computes)."""
    job = _load_job(factory, job_id, caller.tenant_id)
    if job is None:
        raise Problem(404, "Job not found", f"no job {job_id!r}")
    return _json(request, trial_columns(factory, job, [k for k in keys.split(",") if k]))


@router.get("/compare.json")
def compare_json(request: Request, factory: SessionFactory, caller: Viewer,
                 jobs: Annotated[str, Query(max_length=2000)] = "") -> Response:
    """The fronts of ``?jobs=a,b`` (at most ``MAX_COMPARE``, 422 beyond), each projected onto every
    device any of them names."""
    ids = list(dict.fromkeys(j.strip() for j in jobs.split(",") if j.strip()))
    if len(ids) > MAX_COMPARE:
        raise Problem(422, "Too many jobs to compare", f"jobs: at most {MAX_COMPARE} jobs at once",
                      [field_error("jobs", f"at most {MAX_COMPARE} jobs")])
    with session_scope(factory) as s:
        found = [jobs_q.get_job(s, j, caller.tenant_id) for j in ids]
    return _json(request, compare_data(factory, [j for j in found if j is not None]))


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
        devices = catalog_q.list_devices(s, space.name, tenant_id=tenant_id)
        tables = [d.table for d in devices]
        bands = {d.name: band_of(d.table) for d in devices}
    return _page(request, "architecture.html", title="Architecture", space=space, arch=arch, svg=svg,
                 hash=space.canonical_hash(arch), predictions=predicted_latencies(space, arch, tables),
                 bands=bands, degenerate=space.is_degenerate(arch), **context)


MAX_SEQ = 2**31 - 1


@router.get("/jobs/{job_id}/trials/{seq}", response_class=HTMLResponse)
def trial_page(request: Request, job_id: str, seq: int, factory: SessionFactory, caller: Viewer) -> HTMLResponse:
    if not 0 <= seq <= MAX_SEQ:  # a trial's seq is a 32-bit column: larger ones do not exist
        return _not_found(request, f"trial {seq} of job {job_id}")
    with session_scope(factory) as s:
        job = jobs_q.get_job(s, job_id, caller.tenant_id)
        trial = jobs_q.get_trial(s, job_id, seq) if job else None
        front = jobs_q.front_trials(s, job) if job else []
    if job is None or trial is None:
        return _not_found(request, f"trial {seq} of job {job_id}")
    spec = JobSpec.model_validate(job.spec)
    pool = sorted([*[t for t in front if t.seq != seq], trial], key=lambda t: t.seq)
    duplicate_of = next((m for m, dups in duplicates_of(spec, job.front or [], pool).items() if seq in dups), None)
    return _architecture(request, factory, job.spec["space"], trial.arch, tenant_id=job.tenant_id,
                         space_hash=job.spec.get("space_hash"), job=job, trial=trial,
                         on_front=seq in (job.front or []) and duplicate_of is None, duplicate_of=duplicate_of,
                         labels={k: metric_label(spec, k) for k in trial.metrics})


@router.get("/architectures/{space}", response_class=HTMLResponse)
def architecture_page(request: Request, space: str, factory: SessionFactory, caller: Viewer,
                      arch: Annotated[str, Query(min_length=1, max_length=4000)]) -> HTMLResponse:
    return _architecture(request, factory, space, arch, tenant_id=caller.tenant_id, job=None,
                         trial=None, on_front=False, duplicate_of=None, labels={})


@router.get("/devices", response_class=HTMLResponse)
def devices_page(request: Request, factory: SessionFactory, caller: Viewer) -> HTMLResponse:
    with session_scope(factory) as s:
        devices = [{"name": d.name, "space": d.space, "kind": d.kind, "device": d.table.get("device", {}),
                    "entries": len(d.table.get("entries", {})), "provenance": d.table.get("provenance", {}),
                    "validation": d.table.get("validation", {}), "band": band_of(d.table)}
                   for d in catalog_q.list_devices(s, tenant_id=caller.tenant_id)]
    return _page(request, "devices.html", title="Devices", devices=devices)


@router.get("/compare", response_class=HTMLResponse)
def compare_page(request: Request, factory: SessionFactory, caller: Viewer,
                 jobs: Annotated[list[str], Query(max_length=2000)] = []) -> HTMLResponse:  # noqa: B006
    """``?jobs=a,b`` or ``?jobs=a&jobs=b`` (at most ``MAX_COMPARE``); the fronts come from
    ``/compare.json``."""
    chosen = list(dict.fromkeys(j.strip() for raw in jobs[:MAX_COMPARE + 1] for j in raw.split(",") if j.strip()))
    if len(chosen) > MAX_COMPARE:
        raise Problem(422, "Too many jobs to compare", f"jobs: at most {MAX_COMPARE} jobs at once",
                      [field_error("jobs", f"at most {MAX_COMPARE} jobs")])
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
    return _page(request, "login.html", title="Log in", next=safe_next(next))


@router.post("/login", status_code=204, response_class=Response)
def login(request: Request, factory: SessionFactory, settings: SettingsDep,
          api_key: Annotated[str, Body(embed=True, min_length=1, max_length=200)]) -> Response:
    """Check an API key and start a session; the cookie holds only the session's random id.

    Throttled per client address (``login_attempts_per_minute``), and refused from other sites.
    """
    limiter = request.app.state.rate_limiter
    limit = settings.login_attempts_per_minute
    retry_after = limiter.hit(f"{settings.queue}:login:{client_address(request)}", limit)
    if retry_after is not None:
        raise Problem(429, "Too many login attempts", f"more than {limit} a minute from this address",
                      headers={"Retry-After": str(retry_after)})
    if cross_site(request):
        raise Problem(403, "Cross-site request refused", "log in from this site's own login page")
    with session_scope(factory) as s:
        tenant = tenants_q.tenant_for_key(s, api_key)
        created = sessions_q.create(s, tenant.id, settings.session_ttl_s) if tenant else None
    if created is None:
        raise Problem(401, "Invalid API key", "the key is unknown or revoked")
    response = Response(status_code=204)
    response.set_cookie(SESSION_COOKIE, created.session_id, httponly=True, samesite="strict", path="/",
                        secure=request.url.scheme == "https", max_age=settings.session_ttl_s)
    return response


@router.post("/logout")
def logout(request: Request, factory: SessionFactory) -> Response:
    """End the session (refused from other sites, so no page elsewhere logs a user out)."""
    if cross_site(request):
        raise Problem(403, "Cross-site request refused", "log out from this site's own pages")
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id:
        with session_scope(factory) as s:
            sessions_q.end(s, session_id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
