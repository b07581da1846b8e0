"""Typed results. Unknown fields the server adds later are kept in ``raw``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TERMINAL = frozenset({"succeeded", "failed", "cancelled"})


@dataclass
class Job:
    id: str
    name: str
    status: str
    evaluated: int
    failed: int
    budget: int
    hypervolume: float | None
    best: dict[str, Any] | None
    error: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None
    spec: dict[str, Any]
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Job:
        progress = data.get("progress") or {}
        return cls(id=data["id"], name=data.get("name", ""), status=data["status"],
                   evaluated=int(progress.get("evaluated", 0)), failed=int(progress.get("failed", 0)),
                   budget=int(progress.get("budget", 0)), hypervolume=data.get("hypervolume"),
                   best=data.get("best"), error=data.get("error"), created_at=data["created_at"],
                   started_at=data.get("started_at"), finished_at=data.get("finished_at"),
                   spec=data.get("spec") or {}, raw=data)


@dataclass
class Trial:
    id: int
    seq: int
    arch: str
    arch_hash: str
    status: str
    metrics: dict[str, float]
    error: str | None
    duration_s: float | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Trial:
        return cls(id=data["id"], seq=data["seq"], arch=data["arch"], arch_hash=data["arch_hash"],
                   status=data["status"], metrics=data.get("metrics") or {}, error=data.get("error"),
                   duration_s=data.get("duration_s"))


@dataclass
class ParetoFront:
    job_id: str
    objectives: list[dict[str, Any]]
    reference_point: dict[str, float]
    hypervolume: float
    trials: list[Trial]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ParetoFront:
        return cls(job_id=data["job_id"], objectives=data["objectives"],
                   reference_point=data["reference_point"], hypervolume=data["hypervolume"],
                   trials=[Trial.from_json(t) for t in data["trials"]])


@dataclass
class Export:
    """An unpacked export: the files written (the manifest among them) and the manifest itself."""

    out_dir: Path
    files: list[Path]
    manifest: dict[str, Any]
