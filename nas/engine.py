"""The one search loop every entry point runs (Celery task, embedded worker, ``hwnas search``).

ask -> evaluate -> add free metrics (table latency) -> tell -> record trials and checkpoint,
checking between evaluation batches whether the job must stop.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from nas.pareto import ParetoArchive
from nas.problem import TrialResult
from nas.resolve import Search


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class TrialRecord:
    seq: int
    arch: str
    arch_hash: str
    status: str  # "completed" | "failed"
    metrics: dict[str, float]
    error: str | None
    started_at: dt.datetime
    finished_at: dt.datetime

    @property
    def duration_s(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()


@dataclass
class Summary:
    evaluated: int = 0
    failed: int = 0
    front: list[int] = field(default_factory=list)  # seqs of the Pareto-optimal trials
    hypervolume: float = 0.0
    best: dict[str, Any] | None = None
    stop_reason: str | None = None
    #: What a long-running ``ask`` last reported (differentiable search: sweep point, epoch, ...).
    phase: dict[str, Any] | None = None


class Recorder(Protocol):
    def resume(self) -> tuple[dict[str, Any] | None, list[TrialRecord]]:
        """The last checkpoint and the trials recorded with it (empty for a new job)."""

    def record(self, trials: list[TrialRecord], checkpoint: dict[str, Any], summary: Summary) -> None:
        """Persist a finished batch together with the strategy state it produced."""

    def stop_reason(self) -> str | None:
        """Checked before each batch: e.g. 'cancelled'; None to go on."""


class _Tracker:
    """Summary of the trials so far: counts, running front, best."""

    def __init__(self, search: Search):
        self.search = search
        self.archive = ParetoArchive(search.objectives, search.reference)
        self.summary = Summary()
        self.failures: list[TrialRecord] = []

    def add(self, trial: TrialRecord) -> None:
        s = self.summary
        s.evaluated += 1
        if trial.status != "completed":
            s.failed += 1
            self.failures = [*self.failures[-4:], trial]
            return
        if not all(o.key in trial.metrics for o in self.search.objectives):
            return
        if not self.search.satisfies_constraints(trial.metrics):
            return
        self.archive.add(trial.seq, trial.metrics)
        s.front = self.archive.trial_ids
        s.hypervolume = self.archive.hypervolume()
        first = self.search.objectives[0]
        value = trial.metrics[first.key]
        best = None if s.best is None else s.best["metrics"][first.key]
        if best is None or (value > best if first.maximize else value < best):
            s.best = {"seq": trial.seq, "arch": trial.arch, "metrics": trial.metrics}


def run_search(search: Search, recorder: Recorder,
               on_progress: Callable[[Summary], None] | None = None,
               deadline: float | None = None) -> Summary:
    """Run until the budget is spent or something stops it (``summary.stop_reason`` says what).

    ``deadline`` is a ``time.time()`` after which no new evaluation starts.
    """
    budget = search.spec.budget.evaluations
    failure_limit = search.spec.failure_limit
    checkpoint, done = recorder.resume()
    tracker = _Tracker(search)
    for trial in done:
        tracker.add(trial)
    if checkpoint is not None:
        search.strategy.load_state_dict(checkpoint)
    search.strategy.mark_seen(t.arch_hash for t in done)
    summary = tracker.summary

    def interruption() -> str | None:
        """Cancel or time limit: what stops a job between units of work."""
        reason = recorder.stop_reason()
        if reason:
            return reason
        if deadline is not None and time.time() >= deadline:
            return (f"stopped: time limit of {search.spec.time_limit_s:g}s reached "
                    f"after {summary.evaluated} evaluations")
        return None

    def save_progress(phase: dict[str, Any]) -> str | None:
        """Checkpoint a long ``ask`` part-way (no trials) and report its progress."""
        summary.phase = phase
        recorder.record([], search.strategy.state_dict(), summary)
        if on_progress:
            on_progress(summary)
        return interruption()

    search.strategy.checkpoint_hook = save_progress
    while summary.evaluated < budget:
        # taken before the stop check: a trial's start then provably precedes any cancel it did not see
        started = utcnow()
        reason = recorder.stop_reason()
        if reason:
            summary.stop_reason = reason
            break
        if summary.failed >= failure_limit:
            last = next((t.error for t in reversed(tracker.failures) if t.error), "")
            summary.stop_reason = (f"stopped: {summary.failed} failed trials reached the limit of "
                                   f"{failure_limit}; last error: {last[:500]}")
            break
        if deadline is not None and time.time() >= deadline:
            summary.stop_reason = (f"stopped: time limit of {search.spec.time_limit_s:g}s reached "
                                   f"after {summary.evaluated} evaluations")
            break
        archs = search.strategy.ask(min(search.spec.batch_size, budget - summary.evaluated))
        if not archs:
            summary.stop_reason = interruption() or "exhausted"
            break
        t0 = time.perf_counter()
        outcomes = search.evaluator.evaluate(archs)
        per_trial = (time.perf_counter() - t0) / len(archs)
        free = search.problem.free_metrics(archs)
        trials, results = [], []
        for i, (arch, outcome) in enumerate(zip(archs, outcomes, strict=True)):
            metrics = {k: float(v[i]) for k, v in free.items()}
            metrics.update(outcome.metrics or {})
            finished = started + dt.timedelta(seconds=per_trial * (i + 1))
            trial = TrialRecord(seq=summary.evaluated + i, arch=arch,
                                arch_hash=search.space.canonical_hash(arch),
                                status="completed" if outcome.ok else "failed", metrics=metrics,
                                error=outcome.error, started_at=finished - dt.timedelta(seconds=per_trial),
                                finished_at=finished)
            trials.append(trial)
            results.append(TrialResult(arch, metrics, outcome.ok))
        search.strategy.tell(results)
        for trial in trials:
            tracker.add(trial)
        recorder.record(trials, search.strategy.state_dict(), summary)
        if on_progress:
            on_progress(summary)
    return summary
