"""Who is calling: an API key names a tenant; embedded mode has one implicit tenant.

Keys are looked up by their SHA-256; a short cache keeps the lookup off the hot
path (a revoked key stops working within ``KEY_CACHE_S`` seconds). Unknown keys are
throttled per client address (``failed_auth_per_minute``) before any lookup.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from api.deps import SessionFactory, SettingsDep
from api.problems import Problem
from api.ratelimit import RateLimiter
from hwnas_settings import Settings
from nas.service import Quotas
from storage import tenants as tenants_q
from storage.db import session_scope
from storage.models import Tenant

KEY_CACHE_S = 5.0


@dataclass(frozen=True)
class Caller:
    tenant_id: int
    tenant: str
    quotas: Quotas
    rate_limit_per_minute: int
    #: The operator lets this caller run the command evaluator (globally or on its tenant row).
    command_evaluator: bool = False
    max_device_tables: int = 20


class KeyCache:
    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, Caller | None]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[bool, Caller | None]:
        with self._lock:
            hit = self._entries.get(key)
        if hit is None or hit[0] < time.monotonic():
            return False, None
        return True, hit[1]

    def put(self, key: str, caller: Caller | None) -> None:
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[key] = (time.monotonic() + KEY_CACHE_S, caller)


def caller_for(tenant: Tenant, settings: SettingsDep) -> Caller:
    return Caller(
        tenant_id=tenant.id, tenant=tenant.name,
        quotas=Quotas(max_concurrent_jobs=tenant.max_concurrent_jobs or settings.max_concurrent_jobs,
                      max_active_evaluations=tenant.max_active_evaluations or settings.max_active_evaluations),
        rate_limit_per_minute=tenant.rate_limit_per_minute or settings.rate_limit_per_minute,
        command_evaluator=settings.allow_command_evaluator or bool(tenant.allow_command_evaluator),
        max_device_tables=(settings.max_device_tables if tenant.max_device_tables is None
                           else tenant.max_device_tables))


UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def presented_key(request: Request) -> str | None:
    """The API key of a request: ``Authorization: Bearer`` or ``X-API-Key``, never a cookie
    (the dashboard's session cookie is for dashboard routes only, so the JSON API cannot be
    driven cross-site through a browser's ambient credentials)."""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return request.headers.get("x-api-key") or None


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def cross_site(request: Request) -> bool:
    """Whether a browser says the request comes from another origin (Sec-Fetch-Site, else Origin)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site not in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        return False
    return origin.split("://", 1)[-1] != request.headers.get("host", "")


def throttle_failures(request: Request, settings: Settings, *, count: bool) -> None:
    """429 once a client address sent ``failed_auth_per_minute`` unknown keys or sessions;
    ``count`` records one more failure. Checked before any lookup, so guessing costs no queries."""
    limiter: RateLimiter = request.app.state.rate_limiter
    key, limit = f"{settings.queue}:authfail:{client_address(request)}", settings.failed_auth_per_minute
    retry_after = limiter.hit(key, limit) if count else limiter.peek(key, limit)
    if retry_after is not None:
        raise Problem(429, "Too many failed authentications",
                      f"more than {limit} unknown keys a minute from this address",
                      headers={"Retry-After": str(retry_after)})


def rate_limit(request: Request, settings: Settings, caller: Caller) -> None:
    limiter: RateLimiter = request.app.state.rate_limiter
    retry_after = limiter.hit(f"{settings.queue}:tenant:{caller.tenant_id}", caller.rate_limit_per_minute)
    if retry_after is not None:
        raise Problem(429, "Too many requests",
                      f"more than {caller.rate_limit_per_minute} requests a minute",
                      headers={"Retry-After": str(retry_after)})


def current_caller(request: Request, factory: SessionFactory, settings: SettingsDep) -> Caller:
    state = request.app.state
    if settings.embedded:
        if getattr(state, "embedded_caller", None) is None:
            with session_scope(factory) as s:
                state.embedded_caller = caller_for(tenants_q.get_or_create_tenant(s, tenants_q.DEFAULT_TENANT),
                                                   settings)
        caller: Caller | None = state.embedded_caller
        if request.method in UNSAFE_METHODS and cross_site(request):
            # no key to steal here, but a page elsewhere must not drive the implicit tenant
            raise Problem(403, "Cross-site request refused",
                          "this embedded server only takes changes from its own pages or non-browser clients")
    else:
        key = presented_key(request)
        if key is None:
            raise Problem(401, "Authentication required",
                          "send an API key as 'Authorization: Bearer KEY' (create one with `hwnas keys create`)",
                          headers={"WWW-Authenticate": "Bearer"})
        cache: KeyCache = state.key_cache
        found, caller = cache.get(key)
        if not found:
            throttle_failures(request, settings, count=False)
            with session_scope(factory) as s:
                tenant = tenants_q.tenant_for_key(s, key)
                caller = caller_for(tenant, settings) if tenant else None
            if caller is not None:
                cache.put(key, caller)  # unknown keys are not cached: the throttle bounds them instead
        if caller is None:
            throttle_failures(request, settings, count=True)
            raise Problem(401, "Invalid API key", "the key is unknown or revoked",
                          headers={"WWW-Authenticate": "Bearer"})
    assert caller is not None
    rate_limit(request, settings, caller)
    return caller


CallerDep = Annotated[Caller, Depends(current_caller)]
