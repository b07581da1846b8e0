"""Who may see the dashboard: the API's own authentication (api.auth), plus a login cookie.

Pages take ``Viewer``: the caller as the JSON API sees it (API key in a header, or the
``hwnas_key`` cookie the login page sets; the implicit tenant in embedded mode). A browser
without a valid key is sent to ``/login``; everything a page shows is scoped to the
caller's tenant, as the JSON API is.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from starlette.exceptions import HTTPException

from api.auth import Caller, current_caller
from api.deps import SessionFactory, SettingsDep
from api.problems import Problem


def viewer(request: Request, factory: SessionFactory, settings: SettingsDep) -> Caller:
    try:
        return current_caller(request, factory, settings)
    except Problem as problem:
        if problem.status == 401 and request.method == "GET":
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise HTTPException(303, "Log in to see the dashboard",
                                headers={"Location": f"/login?next={quote(target, safe='')}"}) from None
        raise


Viewer = Annotated[Caller, Depends(viewer)]
