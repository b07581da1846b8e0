"""The results dashboard: server-rendered pages under ``/`` (see docs/dashboard.md)."""

from fastapi import APIRouter

from api.dashboard import pages, uiapi

router = APIRouter(include_in_schema=False)
router.include_router(uiapi.router)
router.include_router(pages.router)

__all__ = ["router"]
