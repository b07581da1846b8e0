"""Who may see the dashboard, and what a browser may change through it.

Pages take ``Viewer``: in embedded mode the implicit tenant; otherwise an API key in a
header (tools, tests), or the login session whose random id the ``hwnas_session``
cookie carries (HttpOnly, SameSite=Strict; the database keeps only its SHA-256, and it
expires after ``session_ttl_s``). The cookie counts only on dashboard routes: the JSON
API under ``/v1`` never reads it. A browser without a valid session is sent to ``/login``.

An unsafe request (POST, ...) that relies on the cookie must prove it comes from the
dashboard's own pages: ``Sec-Fetch-Site: same-origin`` (or, without that header, an
``Origin`` equal to this host), or the session's CSRF token in ``X-CSRF-Token``
(the pages' scripts send it from ``<meta name="csrf-token">``). Otherwise 403.
"""

from __future__ import annotations

import hmac
import re
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from starlette.exceptions import HTTPException

from api.auth import UNSAFE_METHODS, Caller, caller_for, cross_site, current_caller, presented_key, rate_limit
from api.auth import throttle_failures
from api.deps import SessionFactory, SettingsDep
from api.problems import Problem
from storage import sessions as sessions_q
from storage.db import session_scope

SESSION_COOKIE = "hwnas_session"
#: A login ``next`` is a plain path on this site: one leading slash, then path and query
#: characters only (no backslash, whitespace, control characters or a second leading slash,
#: which browsers read as another host).
_SAFE_NEXT = re.compile(r"/(?![/\\])[A-Za-z0-9\-._~!$&'()*+,;=:@%/?]*")


def safe_next(target: str) -> str:
    return target if _SAFE_NEXT.fullmatch(target) else "/"


def _refuse_cross_site(request: Request, csrf_token: str | None) -> None:
    token = request.headers.get("x-csrf-token")
    if csrf_token and token and hmac.compare_digest(token, csrf_token):
        return
    site = request.headers.get("sec-fetch-site")
    same = site in ("same-origin", "none") if site is not None else (
        request.headers.get("origin") is not None and not cross_site(request))
    if not same:
        raise Problem(403, "Cross-site request refused",
                      "a change through the dashboard must come from its own pages (same origin or CSRF token)")


def viewer(request: Request, factory: SessionFactory, settings: SettingsDep) -> Caller:
    unsafe = request.method in UNSAFE_METHODS
    if settings.embedded or presented_key(request) is not None:
        caller = current_caller(request, factory, settings)
        if settings.embedded and unsafe:
            _refuse_cross_site(request, None)
        return caller
    session_id = request.cookies.get(SESSION_COOKIE)
    found = None
    if session_id:
        throttle_failures(request, settings, count=False)
        with session_scope(factory) as s:
            hit = sessions_q.lookup(s, session_id)
            found = None if hit is None else (caller_for(hit[0], settings), hit[1])
        if found is None:
            throttle_failures(request, settings, count=True)
    if found is None:
        if request.method == "GET":
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise HTTPException(303, "Log in to see the dashboard",
                                headers={"Location": f"/login?next={quote(target, safe='')}"})
        raise Problem(401, "Authentication required", "log in on /login first")
    caller, csrf_token = found
    if unsafe:
        _refuse_cross_site(request, csrf_token)
    request.state.csrf_token = csrf_token
    rate_limit(request, settings, caller)
    return caller


Viewer = Annotated[Caller, Depends(viewer)]
