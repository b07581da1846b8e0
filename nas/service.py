"""The engine as a service: submit a job into the database, run a job under a lease.

Used by the API (submit, embedded worker) and the Celery worker (run) alike.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from latency_tables import LatencyTable, shipped_tables
from nas.catalog import BenchmarkInfo, SpecError
from nas.engine import Dispatcher, Recorder, Summary, TrialRecord, run_search
from nas.evaluators.benchmark import BenchmarkData
from nas.fanout import DbFanOut, SendHelpers, ThreadedDispatch, help_evaluate, threads_safe
from nas.resolve import (Search, build_estimators, build_evaluator, build_search, check_spec, pin_space,
                         reference_point)
from nas.spec import JobSpec
from hwnas_settings import get_settings
from nas.devices.measure import AgentOffline, DeviceMeasurer, MeasurementStopped, Notify, OnProgress
from nas.devices.onboard import OnboardingError, run_onboarding
from nas.devices.verify import run_verification
from search_spaces import SPACES, SearchSpace, parse_space_definition
from storage import catalog as catalog_q
from storage import devices as devices_q
from storage import jobs as jobs_q
from storage import pending as pending_q
from storage import spaces as spaces_q
from storage import tenants as tenants_q
from storage.db import Conflict, Unavailable, session_scope
from storage.jobs import LeaseLost
from storage.models import Job

log = logging.getLogger("hwnas.service")
_BENCHMARK_CACHE: OrderedDict[tuple[str, int], BenchmarkData] = OrderedDict()
_CACHE_SIZE = 4
_SPACE_CACHE: OrderedDict[str, SearchSpace] = OrderedDict()
_SPACE_CACHE_SIZE = 16
_SPACE_LOCK = threading.Lock()


class DbCatalog:
    """nas.catalog.Catalog over the spaces, devices and benchmark tables stored in the database.

    Spaces: the shipped ones, then those ``tenant_id`` registered. Without a tenant (a
    helper worker of a fanned-out job) only a pinned content hash finds a registered space.
    With ``job_id`` it answers with the table revisions the job pinned at submit; with
    ``notify`` its measurers wake the device's agents (else the agents find the work by polling).
    """

    def __init__(self, factory: sessionmaker[Session], tenant_id: int | None = None, *,
                 job_id: str | None = None, notify: Notify | None = None):
        self.factory = factory
        self.tenant_id = tenant_id
        self.job_id, self.notify = job_id, notify

    def space(self, name: str, content_hash: str | None = None) -> SearchSpace | None:
        shipped = SPACES.get(name)
        if shipped is not None:
            return shipped if content_hash in (None, shipped.content_hash) else None
        with session_scope(self.factory) as s:
            if content_hash is not None:
                row = spaces_q.by_hash(s, name, content_hash, self.tenant_id)
            elif self.tenant_id is not None:
                row = spaces_q.current_row(s, self.tenant_id, name)
            else:
                row = None
            found = (row.content_hash, row.definition) if row is not None else None
        return parsed_space(*found) if found is not None else None

    def space_names(self) -> list[str]:
        names = set(SPACES)
        if self.tenant_id is not None:
            with session_scope(self.factory) as s:
                names.update(r.name for r in spaces_q.list_current(s, self.tenant_id))
        return sorted(names)

    def latency_table(self, space: str, device: str) -> LatencyTable | None:
        with session_scope(self.factory) as s:
            rows = catalog_q.get_device(s, device, space)
            if not rows:
                return None
            data = rows[0].table
            if self.job_id:
                pinned = devices_q.job_pins(s, self.job_id).get((space, device))
                if pinned is not None and pinned != devices_q.table_revision(data):
                    data = devices_q.table_at(s, device, space, pinned) or data
            return LatencyTable.from_dict(data)

    def measurer(self, device: str, space: str) -> DeviceMeasurer:
        settings = get_settings()
        return DeviceMeasurer(self.factory, device, space, notify=self.notify,
                              offline_after_s=settings.agent_offline_after_s,
                              wait_timeout_s=settings.agent_wait_timeout_s)

    def tables_of(self, space: str, but: str | None = None) -> list[LatencyTable]:
        """Every current table of the space (the basis of a fit), ``but`` left out."""
        with session_scope(self.factory) as s:
            return [LatencyTable.from_dict(d.table) for d in catalog_q.list_devices(s, space) if d.name != but]

    def device_names(self, space: str) -> list[str]:
        with session_scope(self.factory) as s:
            return [d.name for d in catalog_q.list_devices(s, space)]

    def benchmark_info(self, name: str) -> BenchmarkInfo | None:
        with session_scope(self.factory) as s:
            t = catalog_q.get_benchmark(s, name)
            return BenchmarkInfo(t.name, t.space, list(t.columns)) if t else None

    def benchmark(self, name: str) -> BenchmarkData | None:
        with session_scope(self.factory) as s:
            t = catalog_q.get_benchmark(s, name)
            if t is None:
                return None
            key = (str(s.get_bind().url), t.id)
            if key not in _BENCHMARK_CACHE:
                _BENCHMARK_CACHE[key] = BenchmarkData(t.name, t.space, list(t.columns),
                                                      catalog_q.benchmark_rows(s, t.id))
                while len(_BENCHMARK_CACHE) > _CACHE_SIZE:
                    _BENCHMARK_CACHE.popitem(last=False)
            return _BENCHMARK_CACHE[key]

    def benchmark_names(self) -> list[str]:
        with session_scope(self.factory) as s:
            return [t.name for t in catalog_q.list_benchmarks(s)]


def parsed_space(content_hash: str, definition: dict[str, Any]) -> SearchSpace:
    """The space of a stored definition, parsed once per content hash (a few kept)."""
    with _SPACE_LOCK:
        hit = _SPACE_CACHE.get(content_hash)
        if hit is not None:
            _SPACE_CACHE.move_to_end(content_hash)
            return hit
    space = parse_space_definition(definition)
    with _SPACE_LOCK:
        _SPACE_CACHE[content_hash] = space
        while len(_SPACE_CACHE) > _SPACE_CACHE_SIZE:
            _SPACE_CACHE.popitem(last=False)
    return space


class SpaceNameTaken(ValueError):
    """A registration under the name of a shipped space."""


def register_space(factory: sessionmaker[Session], definition: Any, *,
                   tenant_id: int) -> tuple[SearchSpace, int, bool]:
    """Parse ``definition`` (SpaceDefinitionError listing every problem with its JSON path) and
    make it the tenant's current definition of its name. Returns (space, its version, changed)."""
    space = parse_space_definition(definition)
    if space.name in SPACES:
        raise SpaceNameTaken(f"{space.name!r} is a shipped search space; give yours another name")
    with session_scope(factory) as s:
        tenants_q.lock_tenant(s, tenant_id)  # one registration of a tenant at a time: versions stay in order
        row, changed = spaces_q.register(s, tenant_id=tenant_id, name=space.name, content_hash=space.content_hash,
                                         definition=definition)
        version = row.version
    return space, version, changed


def register_shipped_tables(factory: sessionmaker[Session]) -> int:
    """Store the tables that ship with hwnas (idempotent; run at start-up and by ``db upgrade``)."""
    tables = shipped_tables()
    with session_scope(factory) as s:
        for table in tables:
            catalog_q.upsert_device(s, table.to_dict())
    return len(tables)


@dataclass(frozen=True)
class Quotas:
    max_concurrent_jobs: int
    max_active_evaluations: int


class QuotaExceeded(RuntimeError):
    def __init__(self, message: str, retry_after_s: int = 30):
        super().__init__(message)
        self.retry_after_s = retry_after_s


def submit(factory: sessionmaker[Session], spec: JobSpec, *, tenant_id: int, quotas: Quotas,
           idempotency_key: str | None = None) -> tuple[Job, bool]:
    """Validate against the catalog and store the job. Returns (job, created).

    The tenant's row is locked for the transaction, so concurrent submissions of
    one tenant are serialised: one job per idempotency key, quotas hold exactly.
    """
    catalog = DbCatalog(factory, tenant_id)
    spec = pin_space(spec, catalog)
    check_spec(spec, catalog)
    reference = reference_point(spec, build_estimators(spec, catalog), catalog=catalog)
    pins = {}
    for device in {*spec.devices(), *([spec.verify.device] if spec.verify else [])}:
        table = catalog.latency_table(spec.space, device)
        if table is not None:
            pins[device] = (spec.space, int(table.provenance.get("revision", 0)))
    try:
        return _create(factory, spec, reference, tenant_id, quotas, idempotency_key, pins)
    except Conflict:
        if not idempotency_key:
            raise
        with session_scope(factory) as s:  # a concurrent request with the same key won the race
            existing = jobs_q.find_by_idempotency_key(s, idempotency_key, tenant_id)
        if existing is None:
            raise
        return existing, False


def _create(factory: sessionmaker[Session], spec: JobSpec, reference: dict[str, float], tenant_id: int,
            quotas: Quotas, idempotency_key: str | None,
            pins: dict[str, tuple[str, int]] | None = None) -> tuple[Job, bool]:
    with session_scope(factory) as s:
        tenants_q.lock_tenant(s, tenant_id)
        if idempotency_key:
            existing = jobs_q.find_by_idempotency_key(s, idempotency_key, tenant_id)
            if existing is not None:
                return existing, False
        active_jobs, active_evaluations = jobs_q.active_load(s, tenant_id)
        if active_jobs >= quotas.max_concurrent_jobs:
            raise QuotaExceeded(f"{active_jobs} jobs are queued or running; the limit is "
                                f"{quotas.max_concurrent_jobs}")
        if active_evaluations + spec.budget.evaluations > quotas.max_active_evaluations:
            raise QuotaExceeded(f"{active_evaluations} evaluations are still to run and this job adds "
                                f"{spec.budget.evaluations}; the limit is {quotas.max_active_evaluations}")
        job = jobs_q.create_job(s, spec=spec.model_dump(mode="json"), name=spec.name,
                                budget=spec.budget.evaluations, reference_point=reference, tenant_id=tenant_id,
                                idempotency_key=idempotency_key)
        devices_q.pin_tables(s, job.id, pins or {})
    return job, True


class DbRecorder(Recorder):
    def __init__(self, factory: sessionmaker[Session], job_id: str, token: str, lease_seconds: int):
        self.factory, self.job_id, self.token = factory, job_id, token
        self.lease_seconds = lease_seconds
        self.lease_lost = threading.Event()
        #: cancel flag read back by the last write; None until the first write
        self._cancel_seen: bool | None = None

    def resume(self) -> tuple[dict[str, Any] | None, list[TrialRecord]]:
        with session_scope(self.factory) as s:
            job = jobs_q.owned_job(s, self.job_id, self.token)
            trials = [TrialRecord(seq=t.seq, arch=t.arch, arch_hash=t.arch_hash, status=t.status,
                                  metrics=t.metrics, error=t.error, started_at=t.started_at,
                                  finished_at=t.finished_at) for t in jobs_q.job_trials(s, self.job_id)]
            return job.checkpoint, trials

    def record(self, trials: list[TrialRecord], checkpoint: dict[str, Any], summary: Summary) -> None:
        rows = [{**asdict(t), "duration_s": t.duration_s} for t in trials]

        def write() -> None:
            try:
                with session_scope(self.factory) as s:
                    self._cancel_seen = jobs_q.record_batch(
                        s, self.job_id, self.token, rows, checkpoint=checkpoint, evaluated=summary.evaluated,
                        failed=summary.failed, front=summary.front, hypervolume=summary.hypervolume,
                        best=summary.best, phase=summary.phase)
                    pending_q.clear(s, self.job_id)  # a fanned-out batch, now recorded
            except Conflict:
                # a retry after a connection lost during COMMIT: the first attempt may have landed
                with session_scope(self.factory) as s:
                    if jobs_q.owned_job(s, self.job_id, self.token).evaluated < summary.evaluated:
                        raise

        self._retrying(write)

    def _retrying(self, action: Callable[[], None]) -> None:
        """Ride out a database restart for up to one lease; after that another worker may own the job."""
        deadline = time.monotonic() + self.lease_seconds
        delay = 0.25
        while True:
            try:
                action()
                return
            except Unavailable:
                if time.monotonic() + delay > deadline:
                    raise
                log.warning("job %s: database unavailable, retrying in %.1fs", self.job_id, delay)
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def stop_reason(self) -> str | None:
        if self.lease_lost.is_set():
            raise LeaseLost(self.job_id)
        if not self._cancel_seen:
            def read() -> None:
                with session_scope(self.factory) as s:
                    self._cancel_seen = jobs_q.cancel_requested(s, self.job_id, self.token)

            self._retrying(read)
        return "cancelled" if self._cancel_seen else None


class _Heartbeat(threading.Thread):
    def __init__(self, recorder: DbRecorder, interval: float):
        super().__init__(daemon=True, name=f"heartbeat-{recorder.job_id[:8]}")
        self.recorder, self.interval = recorder, interval
        self.stopped = threading.Event()

    def run(self) -> None:
        r = self.recorder
        while not self.stopped.wait(self.interval):
            try:
                with session_scope(r.factory) as s:
                    if not jobs_q.heartbeat(s, r.job_id, r.token):
                        r.lease_lost.set()
                        return
            except Unavailable:
                log.warning("heartbeat of %s: database unavailable, retrying", r.job_id)


def execute_job(factory: sessionmaker[Session], job_id: str, *, owner: str, lease_seconds: int,
                send_helpers: SendHelpers | None = None, notify: Notify | None = None) -> str:
    """Claim and run one job to its end. Returns what happened (for logs and tests).

    ``send_helpers`` asks other workers to help with a batch (Celery); without it a
    job's ``parallelism`` runs on threads of this process where the evaluator allows.
    """
    with session_scope(factory) as s:
        token = jobs_q.claim(s, job_id, owner, lease_seconds)
    if token is None:
        return "not claimed"
    with session_scope(factory) as s:
        job = jobs_q.owned_job(s, job_id, token)
        spec_data, first_start, tenant_id = job.spec, job.started_at, job.tenant_id
    catalog = DbCatalog(factory, tenant_id, job_id=job_id, notify=notify)
    try:
        spec = JobSpec.model_validate(spec_data)
        search = build_search(spec, catalog)
    except (SpecError, ValueError) as exc:
        _finish(factory, job_id, token, "failed", f"the job cannot run: {exc}")
        return "failed"
    deadline = first_start.timestamp() + spec.time_limit_s if spec.time_limit_s and first_start else None
    recorder = DbRecorder(factory, job_id, token, lease_seconds)
    beat = _Heartbeat(recorder, max(1.0, lease_seconds / 4))
    beat.start()
    try:
        _wire_measurements(factory, search, recorder)
        dispatcher = _dispatcher(factory, search, recorder, send_helpers, owner)
        summary = run_search(search, recorder, deadline=deadline, dispatcher=dispatcher)
        status, note = _outcome(summary.stop_reason)
        if status == "succeeded" and spec.verify is not None:
            status, note = _verify_in_job(factory, catalog, recorder, spec)
        _finish(factory, job_id, token, status, note)
        return status
    except AgentOffline as exc:
        _finish(factory, job_id, token, "failed", str(exc))
        return "failed"
    except LeaseLost:
        log.warning("job %s: lease lost, another worker owns it now", job_id)
        return "lease lost"
    except Unavailable:
        log.exception("job %s: database unavailable; the reaper will hand the job on", job_id)
        return "database unavailable"
    except Exception as exc:  # an engine bug must end the job with its reason, not hang it
        log.exception("job %s failed", job_id)
        _finish(factory, job_id, token, "failed", f"{type(exc).__name__}: {exc}")
        return "failed"
    finally:
        beat.stopped.set()


def _job_phase(factory: sessionmaker[Session], recorder: DbRecorder) -> OnProgress:
    def report(message: str, done: int, total: int) -> None:
        with session_scope(factory) as s:
            devices_q.set_job_phase(s, recorder.job_id, recorder.token,
                                    {"phase": "measuring", "message": message, "measured": done, "total": total})

    return report


def _wire_measurements(factory: sessionmaker[Session], search: Search, recorder: DbRecorder) -> None:
    """A measuring evaluator reports its waits in the job's phase and stops on cancel."""
    from nas.devices.evaluator import MeasuringEvaluator

    if isinstance(search.evaluator, MeasuringEvaluator):
        search.evaluator.owner = recorder.job_id
        search.evaluator.on_progress = _job_phase(factory, recorder)
        search.evaluator.stop = lambda: recorder.stop_reason() == "cancelled"


def _verify_in_job(factory: sessionmaker[Session], catalog: DbCatalog, recorder: DbRecorder,
                   spec: JobSpec) -> tuple[str, str | None]:
    """``"verify"`` in the spec: measure the front's best k before the job ends (its phase says so)."""
    assert spec.verify is not None
    with session_scope(factory) as s:
        op = devices_q.create_operation(s, kind="verify", device=spec.verify.device, space=spec.space,
                                        params={"top_k": spec.verify.top_k}, tenant_id=None, job_id=recorder.job_id)
        devices_q.start_operation(s, op.id)
        op_id = op.id
    try:
        result = run_verification(factory, op_id, catalog.measurer(spec.verify.device, spec.space),
                                  lambda space, device: catalog.tables_of(space, but=device),
                                  on_progress=_job_phase(factory, recorder),
                                  stop=lambda: recorder.stop_reason() == "cancelled")
    except MeasurementStopped:
        with session_scope(factory) as s:
            devices_q.finish_operation(s, op_id, "cancelled", error="the job was cancelled")
        return "cancelled", None
    except (AgentOffline, OnboardingError) as exc:
        with session_scope(factory) as s:
            devices_q.finish_operation(s, op_id, "failed", error=str(exc))
        return "failed", f"verification on {spec.verify.device!r} failed: {exc}"
    with session_scope(factory) as s:
        devices_q.finish_operation(s, op_id, "succeeded", result=result)
    return "succeeded", None


def run_operation(factory: sessionmaker[Session], op_id: str, *, notify: Notify | None = None) -> str:
    """Run a queued onboarding or verification (a worker task). Returns its end status."""
    with session_scope(factory) as s:
        if not devices_q.start_operation(s, op_id):
            return "not started"
        op = devices_q.get_operation(s, op_id)
        assert op is not None
        kind, device, space = op.kind, op.device, op.space
    catalog = DbCatalog(factory, notify=notify)
    measurer = catalog.measurer(device, space)

    def progress(message: str, done: int, total: int) -> None:
        with session_scope(factory) as s:
            devices_q.operation_progress(s, op_id, {"phase": "measuring", "message": message,
                                                     "measured": done, "total": total})

    try:
        if kind == "onboard":
            result = run_onboarding(factory, op_id, measurer, lambda sp, d: catalog.tables_of(sp, but=d))
        else:
            result = run_verification(factory, op_id, measurer, lambda sp, d: catalog.tables_of(sp, but=d),
                                      on_progress=progress)
    except (AgentOffline, OnboardingError, ValueError) as exc:
        with session_scope(factory) as s:
            devices_q.finish_operation(s, op_id, "failed", error=str(exc))
        return "failed"
    except Exception as exc:  # a bug must end the operation with its reason, not leave it running
        log.exception("device operation %s failed", op_id)
        with session_scope(factory) as s:
            devices_q.finish_operation(s, op_id, "failed", error=f"{type(exc).__name__}: {exc}")
        return "failed"
    with session_scope(factory) as s:
        devices_q.finish_operation(s, op_id, "succeeded", result=result)
    return "succeeded"


def _finish(factory: sessionmaker[Session], job_id: str, token: str, status: str, note: str | None) -> None:
    """End the job and forget a batch still in flight (a cancel cut it short)."""
    with session_scope(factory) as s:
        jobs_q.finish(s, job_id, token, status, note)
        pending_q.clear(s, job_id)


def _dispatcher(factory: sessionmaker[Session], search: Search, recorder: DbRecorder,
                send_helpers: SendHelpers | None, owner: str) -> Dispatcher | None:
    """Where a job's batches are evaluated: here (parallelism 1), on other workers, or on threads."""
    parallelism = search.spec.parallelism
    if parallelism <= 1:
        return None
    if send_helpers is not None:
        return DbFanOut(factory, recorder.job_id, recorder.token, spec=search.spec, evaluator=search.evaluator,
                        canonical_hash=search.space.canonical_hash, send_helpers=send_helpers, worker=owner,
                        lease_seconds=recorder.lease_seconds, lease_lost=recorder.lease_lost,
                        retrying=recorder._retrying)
    if threads_safe(search.spec):
        return ThreadedDispatch(search.evaluator, parallelism, lambda: recorder.stop_reason() == "cancelled")
    return None  # training seeds torch globally: one evaluation at a time in this process


def help_with_job(factory: sessionmaker[Session], job_id: str, *, worker: str, lease_seconds: int) -> int:
    """Evaluate candidates of a fanned-out job's batches (a helper task). Returns how many results it stored."""
    return help_evaluate(factory, job_id, worker=worker, lease_seconds=lease_seconds,
                         build_evaluator=lambda spec: build_evaluator(spec, DbCatalog(factory)))


def _outcome(stop_reason: str | None) -> tuple[str, str | None]:
    """Terminal status and the note stored with it."""
    if stop_reason == "cancelled":
        return "cancelled", None
    if stop_reason == "exhausted":
        return "succeeded", "the search space has no more feasible architectures"
    if stop_reason:
        return "failed", stop_reason
    return "succeeded", None
