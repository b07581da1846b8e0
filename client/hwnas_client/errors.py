from __future__ import annotations

from typing import Any


class HwnasError(Exception):
    """Base of the client's errors."""


class ApiError(HwnasError):
    """The server answered with an RFC 9457 problem; ``problem`` holds it whole."""

    def __init__(self, status: int, problem: dict[str, Any]):
        self.status = status
        self.problem = problem
        self.title = str(problem.get("title", ""))
        self.detail = str(problem.get("detail", ""))
        self.errors: list[dict[str, Any]] = list(problem.get("errors") or [])
        fields = ", ".join(f"{e.get('field')}: {e.get('message')}" for e in self.errors)
        super().__init__(f"HTTP {status} {self.title}: {self.detail}" + (f" ({fields})" if fields else ""))


class JobFailed(HwnasError):
    def __init__(self, job: Any):
        self.job = job
        super().__init__(f"job {job.id} ended {job.status}: {job.error or 'no reason given'}")


class WaitTimeout(HwnasError):
    pass
