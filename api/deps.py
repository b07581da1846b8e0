"""Dependencies shared by the routers (``Annotated`` aliases, as the FastAPI template does)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from hwnas_settings import Settings


def _factory(request: Request) -> sessionmaker[Session]:
    return request.app.state.session_factory


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _enqueue(request: Request) -> Callable[[str], None]:
    return request.app.state.enqueue


SessionFactory = Annotated[sessionmaker[Session], Depends(_factory)]
SettingsDep = Annotated[Settings, Depends(_settings)]
Enqueue = Annotated[Callable[[str], None], Depends(_enqueue)]
