"""The results dashboard: server-rendered pages under ``/`` (see docs/dashboard.md)."""

from api.dashboard.pages import router

__all__ = ["router"]
