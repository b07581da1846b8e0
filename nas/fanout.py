"""One job's evaluations spread over many workers (job spec ``parallelism``).

The job keeps one owner, the worker holding its lease: it alone asks, tells and
checkpoints. For each batch it stores the candidates as pending rows together with
the strategy state right after ``ask`` (one transaction under the lease), asks
for ``parallelism - 1`` helpers (fewer when helpers of the last batch are still
there) and evaluates candidates itself. Helpers and owner claim candidates with
``FOR UPDATE SKIP LOCKED`` under a claim token they heartbeat, and complete each
with a conditional update on that token, so each result is stored once. The owner waits for the whole batch, tells the strategy in
seq order (the same state whichever worker finished first), records the trials and
deletes the rows. A claim whose heartbeat went stale (its worker died) is claimed
again; a new owner after a stale lease finds the rows and the post-``ask`` state
and waits for that batch instead of asking again.

In embedded mode there are no other workers: ``ThreadedDispatch`` evaluates a
batch on ``parallelism`` threads of the job's process instead.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from nas.engine import Dispatcher, Outcome, utcnow
from nas.evaluators.base import Evaluation, Evaluator
from nas.evaluators.kinds import evaluator_kind
from nas.spec import JobSpec
from storage import jobs as jobs_q
from storage import pending as pending_q
from storage.db import Unavailable, session_scope
from storage.jobs import LeaseLost

log = logging.getLogger("hwnas.fanout")

#: How often the owner looks whether its batch is complete, and idle helpers look for work:
#: soon after something happened, then less and less often (a slow evaluator is not polled 100 times a second).
POLL_MIN_S, POLL_MAX_S = 0.01, 0.25
#: A helper with nothing to claim this long leaves; the owner sends new ones when a batch had fewer.
HELPER_IDLE_S = 5.0

#: ``send_helpers(job_id, n)``: ask ``n`` more workers to help evaluate the job's batch.
SendHelpers = Callable[[str, int], None]
#: Runs a database action, riding out a short outage (the owner's recorder provides one).
Retrying = Callable[[Callable[[], None]], None]


def threads_safe(spec: JobSpec) -> bool:
    """Whether the evaluator may run on several threads of one process (training seeds torch globally)."""
    return evaluator_kind(spec).threads_safe


def claim_size(spec: JobSpec) -> int:
    """Candidates taken per claim: one for slow evaluations, more for large batches of fast ones.

    Four claims per worker and batch keep the workers evenly loaded without a
    round trip per candidate of a benchmark-scored batch of hundreds.
    """
    return max(1, spec.batch_size // (spec.parallelism * 4))


class _Backoff:
    def __init__(self) -> None:
        self.delay = POLL_MIN_S

    def reset(self) -> None:
        self.delay = POLL_MIN_S

    def sleep(self) -> None:
        time.sleep(self.delay)
        self.delay = min(self.delay * 1.5, POLL_MAX_S)


class ClaimHeartbeat(threading.Thread):
    """Keeps this process's claims fresh while their candidates are evaluated."""

    def __init__(self, factory: sessionmaker[Session], lease_seconds: int):
        super().__init__(daemon=True, name="claim-heartbeat")
        self.factory, self.interval = factory, max(0.5, lease_seconds / 4)
        self._tokens: set[str] = set()
        self._lock = threading.Lock()
        self._stopped = threading.Event()

    def hold(self, token: str) -> None:
        with self._lock:
            self._tokens.add(token)

    def release(self, token: str) -> None:
        with self._lock:
            self._tokens.discard(token)

    def run(self) -> None:
        while not self._stopped.wait(self.interval):
            with self._lock:
                tokens = list(self._tokens)
            try:
                with session_scope(self.factory) as s:
                    pending_q.heartbeat(s, tokens)
            except Unavailable:
                log.warning("claim heartbeat: database unavailable, retrying")

    def __enter__(self) -> ClaimHeartbeat:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stopped.set()


def evaluate_claim(factory: sessionmaker[Session], claim: pending_q.Claim, evaluator: Evaluator,
                   beat: ClaimHeartbeat) -> int:
    """Evaluate the claimed candidates and store their results under the claim. Returns how many counted."""
    beat.hold(claim.token)
    try:
        archs = [arch for _, arch in claim.candidates]
        started = utcnow()
        t0 = time.perf_counter()
        evaluations = evaluator.evaluate(archs)
        share = dt.timedelta(seconds=(time.perf_counter() - t0) / len(archs))
        counted = 0
        with session_scope(factory) as s:
            for i, ((seq, _), evaluation) in enumerate(zip(claim.candidates, evaluations, strict=True)):
                counted += pending_q.complete(s, claim.job_id, seq, claim.token, metrics=evaluation.metrics,
                                              error=evaluation.error, started_at=started + share * i,
                                              finished_at=started + share * (i + 1))
        if counted < len(archs):
            log.info("job %s: %d results of claim %s came too late (the claim expired and was taken again)",
                     claim.job_id, len(archs) - counted, claim.token)
        return counted
    finally:
        beat.release(claim.token)


class DbFanOut(Dispatcher):
    """The owner's side: hand a batch out, evaluate alongside the helpers, wait for all of it."""

    def __init__(self, factory: sessionmaker[Session], job_id: str, lease_token: str, *, spec: JobSpec,
                 evaluator: Evaluator, canonical_hash: Callable[[str], str], send_helpers: SendHelpers,
                 worker: str, lease_seconds: int, lease_lost: threading.Event, retrying: Retrying):
        self.factory, self.job_id, self.lease_token = factory, job_id, lease_token
        self.spec, self.evaluator, self.canonical_hash = spec, evaluator, canonical_hash
        self.send_helpers, self.worker, self.lease_seconds = send_helpers, worker, lease_seconds
        self.lease_lost, self.retrying = lease_lost, retrying
        self._resumed = False
        #: helpers seen claiming in the last batch: they stay for the next one, so no message is needed
        self._helpers_seen = 0
        self._last_batch_done = 0.0

    def in_flight(self) -> list[str]:
        rows: list[Any] = []

        def read() -> None:
            with session_scope(self.factory) as s:
                rows[:] = pending_q.batch(s, self.job_id)

        self.retrying(read)
        self._resumed = bool(rows)
        if rows:
            log.info("job %s: resuming a batch of %d handed out by the previous owner", self.job_id, len(rows))
        return [r.arch for r in rows]

    def evaluate(self, first_seq: int, archs: list[str], strategy_state: dict[str, Any]) -> list[Outcome]:
        if not self._resumed:
            candidates = [(a, self.canonical_hash(a)) for a in archs]

            def hand_out() -> None:
                with session_scope(self.factory) as s:
                    pending_q.hand_out(s, self.job_id, self.lease_token, first_seq, candidates, strategy_state)

            self.retrying(hand_out)
        self._resumed = False
        # helpers of the last batch wait HELPER_IDLE_S for the next; after a slow ask they may be gone
        staying = self._helpers_seen if time.monotonic() - self._last_batch_done < HELPER_IDLE_S / 2 else 0
        helpers = min(self.spec.parallelism - 1, len(archs) - 1) - staying
        if helpers > 0:
            try:
                self.send_helpers(self.job_id, helpers)
            except Exception:  # the broker is down: the owner evaluates the batch alone
                log.exception("job %s: could not send helpers; evaluating alone", self.job_id)
        rows = self._run_batch()
        self._helpers_seen = len({r.claimed_by for r in rows if r.claimed_by and r.claimed_by != self.worker})
        self._last_batch_done = time.monotonic()
        return [Outcome(r.arch, Evaluation(r.metrics, r.error), r.started_at, r.finished_at)
                for r in rows if r.status == "done"]

    def _run_batch(self) -> list[Any]:
        size = claim_size(self.spec)
        dropped = False
        rows: list[Any] = []
        backoff = _Backoff()
        done_before = -1
        with ClaimHeartbeat(self.factory, self.lease_seconds) as beat:
            while True:
                if self.lease_lost.is_set():
                    raise LeaseLost(self.job_id)
                claimed: list[pending_q.Claim | None] = [None]
                if not dropped:
                    def claim() -> None:
                        with session_scope(self.factory) as s:
                            claimed[0] = pending_q.claim(s, self.job_id, self.worker, self.lease_seconds, size)

                    self.retrying(claim)
                if claimed[0] is not None:
                    evaluate_claim(self.factory, claimed[0], self.evaluator, beat)
                    backoff.reset()
                    continue
                state: list[Any] = [None]

                def look() -> None:
                    with session_scope(self.factory) as s:
                        rows[:] = pending_q.batch(s, self.job_id)
                        state[0] = pending_q.job_state(s, self.job_id)

                self.retrying(look)
                if all(r.status != "pending" for r in rows):
                    return rows
                done_now = sum(r.status != "pending" for r in rows)
                if done_now != done_before:  # a helper finished one: the rest may follow soon
                    done_before = done_now
                    backoff.reset()
                if state[0] is not None and state[0][1]:
                    # cancelled: nothing not yet started may start (nor a dead helper's claim be redone);
                    # wait for what is running
                    def drop() -> None:
                        with session_scope(self.factory) as s:
                            pending_q.drop_unclaimed(s, self.job_id, self.lease_seconds)

                    self.retrying(drop)
                    dropped = True
                backoff.sleep()


def help_evaluate(factory: sessionmaker[Session], job_id: str, *, worker: str, lease_seconds: int,
                  build_evaluator: Callable[[JobSpec], Evaluator], idle_s: float = HELPER_IDLE_S) -> int:
    """A helper's side: evaluate the job's pending candidates until none come for ``idle_s``
    or the job stops running. Returns how many results it stored."""
    with session_scope(factory) as s:
        job = jobs_q.get_job(s, job_id)
        if job is None or job.status != "running":
            return 0
        spec = JobSpec.model_validate(job.spec)
    size = claim_size(spec)
    evaluator: Evaluator | None = None
    stored = 0
    idle_since = time.monotonic()
    backoff = _Backoff()
    with ClaimHeartbeat(factory, lease_seconds) as beat:
        while True:
            with session_scope(factory) as s:
                claim = pending_q.claim(s, job_id, worker, lease_seconds, size)
                state = None if claim else pending_q.job_state(s, job_id)
            if claim is None:
                if state is None or state[0] != "running" or state[1] \
                        or time.monotonic() - idle_since > idle_s:
                    return stored
                backoff.sleep()
                continue
            if evaluator is None:
                evaluator = build_evaluator(spec)
            stored += evaluate_claim(factory, claim, evaluator, beat)
            idle_since = time.monotonic()
            backoff.reset()


class ThreadedDispatch(Dispatcher):
    """Embedded mode: a batch on ``parallelism`` threads of this process; no trial starts after a cancel."""

    def __init__(self, evaluator: Evaluator, parallelism: int, cancelled: Callable[[], bool]):
        self.evaluator, self.parallelism, self.cancelled = evaluator, parallelism, cancelled

    def in_flight(self) -> list[str]:
        return []

    def evaluate(self, first_seq: int, archs: list[str], strategy_state: dict[str, Any]) -> list[Outcome]:
        def one(arch: str) -> Outcome | None:
            if self.cancelled():
                return None
            started = utcnow()
            evaluation = self.evaluator.evaluate([arch])[0]
            return Outcome(arch, evaluation, started, utcnow())

        with ThreadPoolExecutor(self.parallelism, thread_name_prefix="hwnas-eval") as pool:
            outcomes = list(pool.map(one, archs))
        return [o for o in outcomes if o is not None]
