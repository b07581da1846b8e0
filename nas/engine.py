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

from nas.evaluators.base import Evaluation
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
    #: (evaluations, hypervolume) at every evaluation where the hypervolume changed, in order:
    #: computed here as trials land, so readers (the dashboard) never recompute it.
    hv_history: list[tuple[int, float]] = field(default_factory=list)


class Recorder(Protocol):
    def resume(self) -> tuple[dict[str, Any] | None, list[TrialRecord]]:
        """The last checkpoint and the trials recorded with it (empty for a new job)."""

    def record(self, trials: list[TrialRecord], checkpoint: dict[str, Any], summary: Summary) -> None:
        """Persist a finished batch together with the strategy state it produced."""

    def stop_reason(self) -> str | None:
        """Checked before each batch: e.g. 'cancelled'; None to go on."""

    # Optional: ``begin_batch(first_seq, archs)`` is called before a batch is evaluated (the
    # database recorder notes it once a delivery of the job died, to name a poison candidate).


class MemoryRecorder(Recorder):
    """Keeps a run's trials in memory (``hwnas search``, ``hwnas bench``): nothing to resume, never stopped."""

    def __init__(self) -> None:
        self.trials: list[TrialRecord] = []

    def resume(self) -> tuple[dict[str, Any] | None, list[TrialRecord]]:
        return None, []

    def record(self, trials: list[TrialRecord], checkpoint: dict[str, Any], summary: Summary) -> None:
        self.trials.extend(trials)

    def stop_reason(self) -> str | None:
        return None


@dataclass
class Outcome:
    """One candidate's evaluation and when it ran (a dispatcher's answer)."""

    arch: str
    evaluation: Evaluation
    started_at: dt.datetime
    finished_at: dt.datetime


class Dispatcher(Protocol):
    """Evaluates a batch somewhere else than in this thread (other workers, a thread pool)."""

    def in_flight(self) -> list[str]:
        """Called once at start: a batch handed out before the job was resumed (evaluate it, do not ask)."""

    def evaluate(self, first_seq: int, archs: list[str], strategy_state: dict[str, Any]) -> list[Outcome]:
        """Outcomes in the order of ``archs``; fewer (those that ran) only when a cancel cut the batch short.

        ``strategy_state`` is the strategy right after ``ask``: stored with the batch, a new
        owner resumes from it without asking again.
        """


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
        value = self.archive.hypervolume()
        if value != s.hypervolume:
            s.hv_history.append((s.evaluated, value))
        s.hypervolume = value
        first = self.search.objectives[0]
        value = trial.metrics[first.key]
        best = None if s.best is None else s.best["metrics"][first.key]
        if best is None or (value > best if first.maximize else value < best):
            s.best = {"seq": trial.seq, "arch": trial.arch, "metrics": trial.metrics}


def run_search(search: Search, recorder: Recorder,
               on_progress: Callable[[Summary], None] | None = None,
               deadline: float | None = None, dispatcher: Dispatcher | None = None) -> Summary:
    """Run until the budget is spent or something stops it (``summary.stop_reason`` says what).

    ``deadline`` is a ``time.time()`` after which no new batch starts. ``dispatcher``
    evaluates batches elsewhere (job spec ``parallelism``); by default they run here.
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
    in_flight = dispatcher.in_flight() if dispatcher else []
    search.strategy.mark_seen(search.space.canonical_hash(a) for a in in_flight)
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
        archs = in_flight or search.strategy.ask(min(search.spec.batch_size, budget - summary.evaluated))
        in_flight = []
        if not archs:
            summary.stop_reason = interruption() or "exhausted"
            break
        begin_batch = getattr(recorder, "begin_batch", None)
        if begin_batch is not None:
            begin_batch(summary.evaluated, archs)
        if dispatcher:
            outcomes = dispatcher.evaluate(summary.evaluated, archs, search.strategy.state_dict())
        else:
            outcomes = _evaluate_here(search, archs, started)
        free = search.problem.free_metrics([o.arch for o in outcomes]) if outcomes else {}
        trials, results = [], []
        for i, outcome in enumerate(outcomes):
            metrics = {k: float(v[i]) for k, v in free.items()}
            metrics.update(outcome.evaluation.metrics or {})
            ok = outcome.evaluation.ok
            trial = TrialRecord(seq=summary.evaluated + i, arch=outcome.arch,
                                arch_hash=search.space.canonical_hash(outcome.arch),
                                status="completed" if ok else "failed", metrics=metrics,
                                error=outcome.evaluation.error, started_at=outcome.started_at,
                                finished_at=outcome.finished_at)
            trials.append(trial)
            results.append(TrialResult(outcome.arch, metrics, ok))
        if len(outcomes) == len(archs):
            search.strategy.tell(results)
        # else a cancel cut the batch short: the job stops at the next check, and a strategy
        # expects one result per architecture it asked for
        for trial in trials:
            tracker.add(trial)
        if trials:
            recorder.record(trials, search.strategy.state_dict(), summary)
        if on_progress:
            on_progress(summary)
    if summary.evaluated and summary.failed == summary.evaluated and summary.stop_reason in (None, "exhausted"):
        last = next((t.error for t in reversed(tracker.failures) if t.error), "")
        summary.stop_reason = f"stopped: all {summary.failed} trials failed; last error: {last[:500]}"
    return summary


def _evaluate_here(search: Search, archs: list[str], started: dt.datetime) -> list[Outcome]:
    """The batch in this thread; each trial gets an equal share of the batch's time."""
    t0 = time.perf_counter()
    evaluations = search.evaluator.evaluate(archs)
    per_trial = dt.timedelta(seconds=(time.perf_counter() - t0) / len(archs))
    return [Outcome(arch, evaluation, started + per_trial * i, started + per_trial * (i + 1))
            for i, (arch, evaluation) in enumerate(zip(archs, evaluations, strict=True))]
