"""A job's stored hypervolume history (``job_hypervolume``): written by the worker, read by the dashboard."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.models import JobHypervolume


def append(session: Session, job_id: str, points: Sequence[tuple[int, float]]) -> None:
    """Add (evaluations, hypervolume) rows; evaluations grow, so rows are only ever appended."""
    if points:
        session.execute(JobHypervolume.__table__.insert(),
                        [{"job_id": job_id, "evaluations": int(n), "hypervolume": float(v)} for n, v in points])


def last_evaluations(session: Session, job_id: str) -> int:
    return int(session.scalar(select(func.max(JobHypervolume.evaluations))
                              .where(JobHypervolume.job_id == job_id)) or 0)


def history(session: Session, job_id: str) -> list[tuple[int, float]]:
    return [(n, v) for n, v in session.execute(
        select(JobHypervolume.evaluations, JobHypervolume.hypervolume)
        .where(JobHypervolume.job_id == job_id).order_by(JobHypervolume.evaluations))]
