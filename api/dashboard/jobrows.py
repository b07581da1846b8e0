"""One row of the jobs table: what the list shows, and how it sorts and filters."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from storage.jobs import STATUSES
from storage.models import Job

SORTS: dict[str, str] = {"created": "Age", "name": "Name", "status": "Status", "progress": "Progress",
                         "best": "Best", "hypervolume": "Hypervolume", "strategy": "Strategy"}
ACTIVE = ("queued", "running")
#: Most jobs the list reads; filtering and sorting happen over these, newest first.
MAX_ROWS = 500


@dataclass
class JobRow:
    id: str
    name: str
    status: str
    evaluated: int
    failed: int
    budget: int
    fraction: float
    best_key: str | None
    best_value: float | None
    hypervolume: float | None
    devices: list[str]
    strategy: str
    created_at: dt.datetime
    cancel_requested: bool
    #: api.dashboard.choosing.normalised_hv: fraction of the best front (or own box), its basis
    hv_fraction: float | None = None
    hv_kind: str | None = None
    hv_basis: str = ""

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


def job_row(job: Job, hv: dict[str, Any] | None = None) -> JobRow:
    spec: dict[str, Any] = job.spec or {}
    objectives = spec.get("objectives") or [{}]
    first = objectives[0]
    key = f"{first['metric']}@{first['device']}" if first.get("device") else first.get("metric")
    best = (job.best or {}).get("metrics", {}).get(key) if key else None
    devices = sorted({r["device"] for r in [*objectives, *(spec.get("constraints") or [])] if r.get("device")})
    return JobRow(id=job.id, name=job.name or job.id[:8], status=job.status, evaluated=job.evaluated,
                  failed=job.failed, budget=job.budget,
                  fraction=min(1.0, job.evaluated / job.budget) if job.budget else 0.0,
                  best_key=key, best_value=best, hypervolume=job.hypervolume, devices=devices,
                  strategy=str((spec.get("strategy") or {}).get("name", "")), created_at=job.created_at,
                  cancel_requested=job.cancel_requested,
                  hv_fraction=hv["fraction"] if hv else None, hv_kind=hv["kind"] if hv else None,
                  hv_basis=hv["basis"] if hv else "")


def _sort_key(row: JobRow, sort: str) -> tuple[bool, Any]:
    """Rows without a value sort last whatever the order (the bool comes first)."""
    value: Any = {"created": row.created_at, "name": row.name.lower(), "status": row.status,
                  "progress": row.fraction, "best": row.best_value,
                  # raw hypervolumes of unlike jobs do not compare: sort by the normalised share
                  "hypervolume": row.hv_fraction,
                  "strategy": row.strategy}[sort]
    return value is None, value


def arrange(rows: Sequence[JobRow], *, sort: str = "created", descending: bool = True,
            query: str = "") -> list[JobRow]:
    """Filter by a case-insensitive substring of name, id, strategy or device, then sort."""
    needle = query.strip().lower()
    if needle:
        rows = [r for r in rows if needle in " ".join([r.name, r.id, r.strategy, *r.devices]).lower()]
    present = [r for r in rows if _sort_key(r, sort)[0] is False]
    missing = [r for r in rows if _sort_key(r, sort)[0] is True]
    present.sort(key=lambda r: _sort_key(r, sort)[1], reverse=descending)
    return present + missing


def age(created: dt.datetime, now: dt.datetime | None = None) -> str:
    """'12s', '5m', '3h', '2d' since ``created``."""
    now = now or dt.datetime.now(dt.UTC)
    if created.tzinfo is None:  # SQLite returns naive datetimes for UTC columns
        created = created.replace(tzinfo=dt.UTC)
    seconds = max(0, int((now - created).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


__all__ = ["ACTIVE", "MAX_ROWS", "SORTS", "STATUSES", "JobRow", "age", "arrange", "job_row"]
