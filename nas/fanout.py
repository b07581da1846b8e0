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

That is the ``sync`` schedule (bit-identical replays). The default ``async`` schedule
(``AsyncDbFanOut``) has no batch barrier: the owner keeps ``parallelism + 1`` candidates
handed out (one spare, so a worker that finishes claims the next at once), asks the
strategy for one more as each result lands and records each result on its own. Its own
evaluations run on a thread of the owner, so handing out never waits for one. Every
hand-out and every recorded result stores the strategy state with it; a new owner finds
the candidates in flight and the state that asked them.

A candidate claimed ``max_claims`` times whose claim went stale again fails as a trial
(``storage.pending.fail_overclaimed``), so one that kills its worker cannot loop.

In embedded mode there are no other workers: ``ThreadedDispatch`` (sync) and
``AsyncThreaded`` (async) evaluate on ``parallelism`` threads of the job's process instead.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
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
        t0 = time.perf_counter()
        evaluations = evaluator.evaluate(archs)
        share = (time.perf_counter() - t0) / len(archs)
        counted = 0
        with session_scope(factory) as s:
            for (seq, _), evaluation in zip(claim.candidates, evaluations, strict=True):
                counted += pending_q.complete(s, claim.job_id, seq, claim.token, metrics=evaluation.metrics,
                                              error=evaluation.error, duration_s=share)
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
                 worker: str, lease_seconds: int, lease_lost: threading.Event, retrying: Retrying,
                 max_claims: int = pending_q.MAX_CLAIMS):
        self.max_claims = max_claims
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
                            claimed[0] = pending_q.claim(s, self.job_id, self.worker, self.lease_seconds, size,
                                                         self.max_claims)

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
                  build_evaluator: Callable[[JobSpec], Evaluator], idle_s: float = HELPER_IDLE_S,
                  max_claims: int = pending_q.MAX_CLAIMS) -> int:
    """A helper's side: evaluate the job's pending candidates until none come for ``idle_s``
    or the job stops running. Returns how many results it stored."""
    with session_scope(factory) as s:
        job = jobs_q.get_job(s, job_id)
        if job is None or job.status != "running":
            return 0
        spec = JobSpec.model_validate(job.spec)
    size = claim_size(spec) if spec.schedule == "sync" else 1
    evaluator: Evaluator | None = None
    stored = 0
    idle_since = time.monotonic()
    backoff = _Backoff()
    with ClaimHeartbeat(factory, lease_seconds) as beat:
        while True:
            with session_scope(factory) as s:
                claim = pending_q.claim(s, job_id, worker, lease_seconds, size, max_claims)
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


def _outcome_of(row: Any) -> Outcome | None:
    if row.status != "done":
        return None  # dropped after a cancel
    return Outcome(row.arch, Evaluation(row.metrics, row.error), row.started_at, row.finished_at)


class _OwnEvaluations(threading.Thread):
    """The owner's share of the work: claims and evaluates candidates like a helper, on a thread."""

    def __init__(self, fanout: AsyncDbFanOut, beat: ClaimHeartbeat):
        super().__init__(daemon=True, name=f"own-evals-{fanout.job_id[:8]}")
        self.fanout, self.beat = fanout, beat
        self.stopped = threading.Event()

    def run(self) -> None:
        f = self.fanout
        backoff = _Backoff()
        while not self.stopped.is_set():
            try:
                with session_scope(f.factory) as s:
                    claim = pending_q.claim(s, f.job_id, f.worker, f.lease_seconds, 1, f.max_claims)
                if claim is None:
                    backoff.sleep()
                    continue
                evaluate_claim(f.factory, claim, f.evaluator, self.beat)
                backoff.reset()
            except Unavailable:
                log.warning("job %s: database unavailable for the owner's evaluations, retrying", f.job_id)
                time.sleep(0.5)
            except Exception:  # an evaluator crash: its claim goes stale and is redone (or fails after N)
                log.exception("job %s: the owner's evaluation crashed", f.job_id)
                time.sleep(0.5)


class AsyncDbFanOut(DbFanOut):
    """The owner's side of the asynchronous schedule (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.slots = self.spec.parallelism + 1
        self._beat: ClaimHeartbeat | None = None
        self._own: _OwnEvaluations | None = None
        self._helpers_sent_at: float | None = None
        self._mine: set[int] = set()

    def flying(self) -> list[tuple[int, str]]:
        rows: list[Any] = []

        def read() -> None:
            with session_scope(self.factory) as s:
                rows[:] = pending_q.batch(s, self.job_id)

        self.retrying(read)
        if rows:
            log.info("job %s: resuming a batch of %d candidates in flight, handed out by the previous owner",
                     self.job_id, len(rows))
            self._start()
        self._mine = {int(r.seq) for r in rows}
        return [(int(r.seq), str(r.arch)) for r in rows]

    def _start(self) -> None:
        if self._own is None:
            self._beat = ClaimHeartbeat(self.factory, self.lease_seconds).__enter__()
            self._own = _OwnEvaluations(self, self._beat)
            self._own.start()
            self._send(self.spec.parallelism - 1)

    def _send(self, count: int) -> None:
        self._helpers_sent_at = time.monotonic()
        if count > 0:
            try:
                self.send_helpers(self.job_id, count)
            except Exception:  # the broker is down: the owner evaluates alone
                log.exception("job %s: could not send helpers; evaluating alone", self.job_id)

    def submit(self, seq: int, arch: str, strategy_state: dict[str, Any]) -> None:
        if self.lease_lost.is_set():
            raise LeaseLost(self.job_id)

        def hand_out() -> None:
            with session_scope(self.factory) as s:
                pending_q.hand_out(s, self.job_id, self.lease_token, seq, [(arch, self.canonical_hash(arch))],
                                   strategy_state)

        self.retrying(hand_out)
        self._mine.add(seq)
        self._start()

    def wait(self, stopping: bool) -> list[tuple[int, Outcome | None]]:
        backoff = _Backoff()
        dropped = False
        while True:
            if self.lease_lost.is_set():
                raise LeaseLost(self.job_id)
            rows: list[Any] = []
            state: list[Any] = [None]

            def look() -> None:
                with session_scope(self.factory) as s:
                    rows[:] = pending_q.batch(s, self.job_id)
                    state[0] = pending_q.job_state(s, self.job_id)

            self.retrying(look)
            finished: list[tuple[int, Outcome | None]] = [(int(r.seq), _outcome_of(r)) for r in rows
                                                          if r.status != "pending" and int(r.seq) in self._mine]
            # a row gone (the job ended under us) counts as dropped, so the engine never waits on it
            finished += [(seq, None) for seq in self._mine - {int(r.seq) for r in rows}]
            if finished:
                self._mine -= {seq for seq, _ in finished}
                return finished
            if (stopping or (state[0] is not None and state[0][1])) and not dropped:
                def drop() -> None:
                    with session_scope(self.factory) as s:
                        pending_q.drop_unclaimed(s, self.job_id, self.lease_seconds)

                self.retrying(drop)
                dropped = True
                continue
            self._keep_helpers(rows)
            backoff.sleep()
            backoff.delay = min(backoff.delay, 0.05)  # a free worker waits for the next hand-out this long at most

    def _keep_helpers(self, rows: list[Any]) -> None:
        """Helpers leave after HELPER_IDLE_S without work (a slow ask); send new ones when candidates wait."""
        waiting = any(r.claim_token is None for r in rows)
        if not waiting or self._helpers_sent_at is None or time.monotonic() - self._helpers_sent_at < HELPER_IDLE_S:
            return
        busy = len({r.claimed_by for r in rows if r.claim_token is not None and r.claimed_by != self.worker})
        self._send(self.spec.parallelism - 1 - busy)

    def close(self) -> None:
        if self._own is not None:
            self._own.stopped.set()
            self._own.join(timeout=1.0)
        if self._beat is not None:
            self._beat.__exit__(None, None, None)


class AsyncThreaded:
    """Embedded mode, asynchronous schedule: ``parallelism`` threads, the next candidate as one frees."""

    def __init__(self, evaluator: Evaluator, parallelism: int):
        self.evaluator, self.slots = evaluator, parallelism
        self.pool = ThreadPoolExecutor(parallelism, thread_name_prefix="hwnas-eval")
        self.futures: dict[Future[Outcome], int] = {}

    def flying(self) -> list[tuple[int, str]]:
        return []

    def _one(self, arch: str) -> Outcome:
        started = utcnow()
        evaluation = self.evaluator.evaluate([arch])[0]
        return Outcome(arch, evaluation, started, utcnow())

    def submit(self, seq: int, arch: str, strategy_state: dict[str, Any]) -> None:
        self.futures[self.pool.submit(self._one, arch)] = seq

    def wait(self, stopping: bool) -> list[tuple[int, Outcome | None]]:
        if stopping:
            for future in self.futures:
                future.cancel()  # only those not started yet
        done, _ = wait_futures(list(self.futures), return_when=FIRST_COMPLETED)
        out: list[tuple[int, Outcome | None]] = []
        for future in done:
            seq = self.futures.pop(future)
            out.append((seq, None if future.cancelled() else future.result()))
        return out

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
