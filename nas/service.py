"""The engine as a service: submit a job into the database, run a job under a lease.

Used by the API (submit, embedded worker) and the Celery worker (run) alike.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from hwnas_settings import Settings, get_settings
from latency_tables import LatencyTable, shipped_tables
from nas.catalog import BenchmarkInfo, SpecError
from nas.engine import Dispatcher, Recorder, Summary, TrialRecord, run_search, utcnow
from nas.evaluators.command import CommandPolicy
from nas.evaluators.benchmark import BenchmarkData
from nas.engine import AsyncDispatcher
from nas.fanout import AsyncDbFanOut, AsyncThreaded, DbFanOut, SendHelpers, ThreadedDispatch, help_evaluate, threads_safe
from nas.resolve import (Search, build_estimators, build_evaluator, build_search, check_spec, pin_space,
                         reference_point)
from storage.pending import MAX_CLAIMS
from nas.spec import JobSpec
from hwnas_settings import get_settings
from nas.devices.measure import AgentOffline, DeviceMeasurer, MeasurementStopped, Notify, OnProgress
from nas.devices.onboard import OnboardingError, run_onboarding
from nas.devices.verify import run_verification
from search_spaces import SPACES, SearchSpace, parse_space_definition
from storage import catalog as catalog_q
from storage import hypervolume as hv_q
from storage import devices as devices_q
from storage import jobs as jobs_q
from storage import pending as pending_q
from storage import spaces as spaces_q
from storage import tenants as tenants_q
from storage.clock import database_time
from storage.db import Conflict, Unavailable, session_scope
from storage.jobs import LeaseLost
from storage.models import Job, Tenant

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
    Latency tables: those ``tenant_id`` may use (its own, shared and shipped ones; None:
    all, for operator commands). ``pins`` (a job's ``table_pins``) makes every pinned
    device read that exact stored version; ``resolved`` records the version of each table
    handed out, which is what submit pins. With ``notify`` its measurers wake the device's
    agents (else the agents find the work by polling).
    """

    def __init__(self, factory: sessionmaker[Session], tenant_id: int | None = None,
                 pins: dict[str, str] | None = None, *, notify: Notify | None = None):
        self.factory = factory
        self.tenant_id = tenant_id
        self.pins = dict(pins or {})
        self.resolved: dict[str, str] = {}
        self._tables: dict[str, LatencyTable | None] = {}
        self.notify = notify

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
        key = pin_key(space, device)
        if key in self._tables:
            return self._tables[key]
        with session_scope(self.factory) as s:
            if key in self.pins:
                data = catalog_q.table_version(s, self.pins[key])
                digest = self.pins[key]
            else:
                rows = catalog_q.get_device(s, device, space, tenant_id=self.tenant_id)
                data, digest = (rows[0].table, rows[0].content_hash) if rows else (None, "")
        table = LatencyTable.from_dict(data) if data is not None else None
        if table is not None and digest:
            self.resolved[key] = digest
        self._tables[key] = table
        return table

    def measurer(self, device: str, space: str) -> DeviceMeasurer:
        settings = get_settings()
        return DeviceMeasurer(self.factory, device, space, notify=self.notify,
                              offline_after_s=settings.agent_offline_after_s,
                              wait_timeout_s=settings.agent_wait_timeout_s)

    def tables_of(self, space: str, but: str | None = None) -> list[LatencyTable]:
        """Every current table of the space (the basis of a fit), ``but`` left out."""
        with session_scope(self.factory) as s:
            return [LatencyTable.from_dict(d.table) for d in catalog_q.list_devices(s, space, tenant_id=self.tenant_id)
                    if d.name != but]

    def device_names(self, space: str) -> list[str]:
        with session_scope(self.factory) as s:
            return [d.name for d in catalog_q.list_devices(s, space, tenant_id=self.tenant_id)]

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


def pin_key(space: str, device: str) -> str:
    return f"{space}/{device}"


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
        catalog_q.adopt_legacy_tables(s)  # rows from before tenant-owned tables, once
        for table in tables:
            catalog_q.upsert_device(s, table.to_dict())
    return len(tables)


_OWNER = re.compile(r"@(?P<host>[^:#]+):(?P<pid>\d+)#(?P<ns>\d+)$")


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid").strip("pid:[]")
    except OSError:
        return "0"


def worker_identity(kind: str) -> str:
    """A job owner's name: ``kind@host:pid#pidns``; on the same host and PID namespace, another
    worker can tell that the owner died (``owner_is_dead``) without waiting for its lease."""
    return f"{kind}@{socket.gethostname()}:{os.getpid()}#{_pid_namespace()}"


def owner_is_dead(owner: str) -> bool:
    """True only when ``owner`` is provably gone: a process of this host and PID namespace that no
    longer exists (or is a zombie). Anything else (another machine, an old name format) waits for the lease."""
    found = _OWNER.search(owner)
    if not found or found["host"] != socket.gethostname() or found["ns"] != _pid_namespace():
        return False
    pid = int(found["pid"])
    if pid == os.getpid():
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")


def command_policy(settings: Settings) -> CommandPolicy:
    """The service's sandbox for command evaluators (see README, "The command evaluator's sandbox")."""
    return CommandPolicy(env_allow=tuple(settings.command_env_names), path=settings.command_path,
                         run_as=settings.command_user, allow_root=False, cpu_seconds=settings.command_cpu_seconds,
                         memory_bytes=settings.command_memory_mb << 20, open_files=settings.command_open_files,
                         max_processes=settings.command_max_processes,
                         output_tail_bytes=settings.command_output_kib << 10)


def command_evaluator_allowed(settings: Settings, session: Session, tenant_id: int | None) -> bool:
    """The operator's say: every tenant (HWNAS_ALLOW_COMMAND_EVALUATOR) or this one (its row)."""
    return settings.allow_command_evaluator or tenants_q.command_evaluator_allowed(session, tenant_id)


def command_refusal(tenant: str | None) -> str:
    who = f"tenant {tenant!r}" if tenant else "this tenant"
    return (f"command evaluators are not enabled for {who}: the operator enables them for every tenant with "
            f"HWNAS_ALLOW_COMMAND_EVALUATOR=true or for one with `hwnas tenants set NAME --command-evaluator`")


def poison_message(deaths: int, in_flight: dict[str, Any] | None, evaluated: int) -> str:
    """Why a job whose deliveries keep dying is failed, naming what it was evaluating."""
    if not in_flight:
        what = f"the batch after {evaluated} evaluations (not recorded)"
    else:
        first, archs = int(in_flight["first_seq"]), list(in_flight["archs"])
        what = (f"candidate seq {first} {archs[0]}" if len(archs) == 1 else
                f"candidates seq {first}-{first + len(archs) - 1} " + ", ".join(archs))
    return (f"poison trial: the worker running this job died {deaths} times in a row while evaluating "
            f"{what}; giving up (HWNAS_MAX_JOB_ATTEMPTS)")


@dataclass(frozen=True)
class Quotas:
    max_concurrent_jobs: int
    max_active_evaluations: int


class IdempotencyMismatch(ValueError):
    """An Idempotency-Key the tenant already used for a different job spec."""

    def __init__(self, key: str, job_id: str):
        super().__init__(f"Idempotency-Key {key!r} was already used for job {job_id} with a different body; "
                         "use a new key for a different spec")
        self.key, self.job_id = key, job_id


def _same_request(job: Job, spec: JobSpec, key: str) -> Job:
    """The job an idempotency key made, if this request is the same one again (else raises)."""
    if job.spec != spec.model_dump(mode="json"):
        raise IdempotencyMismatch(key, job.id)
    return job


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
    pins = dict(sorted(catalog.resolved.items()))  # every table the check read: the job reads the same
    try:
        return _create(factory, spec, reference, tenant_id, quotas, idempotency_key, pins)
    except Conflict:
        if not idempotency_key:
            raise
        with session_scope(factory) as s:  # a concurrent request with the same key won the race
            existing = jobs_q.find_by_idempotency_key(s, idempotency_key, tenant_id)
        if existing is None:
            raise
        return _same_request(existing, spec, idempotency_key), False


def _create(factory: sessionmaker[Session], spec: JobSpec, reference: dict[str, float], tenant_id: int,
            quotas: Quotas, idempotency_key: str | None, pins: dict[str, str]) -> tuple[Job, bool]:
    with session_scope(factory) as s:
        tenants_q.lock_tenant(s, tenant_id)
        if idempotency_key:
            existing = jobs_q.find_by_idempotency_key(s, idempotency_key, tenant_id)
            if existing is not None:
                return _same_request(existing, spec, idempotency_key), False
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
        job.table_pins = pins
    return job, True


class WorkerStopping(RuntimeError):
    """The process running the job is shutting down; the job stays unfinished and resumable."""


class DbRecorder(Recorder):
    """Trials and checkpoints under the job's lease.

    ``clock_offset`` (database clock minus this process's) shifts trial timestamps onto the
    database's clock. ``note_batches`` records each batch before it runs (only for a job whose
    previous delivery died: if this one dies too, the next claim can name the candidate).
    """

    def __init__(self, factory: sessionmaker[Session], job_id: str, token: str, lease_seconds: int,
                 clock_offset: dt.timedelta = dt.timedelta(0), note_batches: bool = False,
                 stopping: threading.Event | None = None):
        self.factory, self.job_id, self.token = factory, job_id, token
        self.lease_seconds = lease_seconds
        self.clock_offset, self.note_batches = clock_offset, note_batches
        self.lease_lost = threading.Event()
        #: set when this process shuts down: the job stops between units of work and stays resumable
        self.stopping = stopping or threading.Event()
        #: cancel flag read back by the last write; None until the first write
        self._cancel_seen: bool | None = None
        #: evaluations of the last hypervolume history row stored (set on resume)
        self._hv_stored = 0

    def resume(self) -> tuple[dict[str, Any] | None, list[TrialRecord]]:
        with session_scope(self.factory) as s:
            job = jobs_q.owned_job(s, self.job_id, self.token)
            self._hv_stored = hv_q.last_evaluations(s, self.job_id)
            trials = [TrialRecord(seq=t.seq, arch=t.arch, arch_hash=t.arch_hash, status=t.status,
                                  metrics=t.metrics, error=t.error, started_at=t.started_at,
                                  finished_at=t.finished_at) for t in jobs_q.job_trials(s, self.job_id)]
            return job.checkpoint, trials

    def begin_batch(self, first_seq: int, archs: list[str]) -> None:
        if not self.note_batches:
            return

        def write() -> None:
            with session_scope(self.factory) as s:
                jobs_q.begin_batch(s, self.job_id, self.token, first_seq, archs)

        self._retrying(write)

    def record(self, trials: list[TrialRecord], checkpoint: dict[str, Any], summary: Summary) -> None:
        shift = self.clock_offset
        rows = [{**asdict(t), "started_at": t.started_at + shift, "finished_at": t.finished_at + shift,
                 "duration_s": t.duration_s} for t in trials]

        def write() -> None:
            try:
                with session_scope(self.factory) as s:
                    self._cancel_seen = jobs_q.record_batch(
                        s, self.job_id, self.token, rows, checkpoint=checkpoint, evaluated=summary.evaluated,
                        failed=summary.failed, front=summary.front, hypervolume=summary.hypervolume,
                        best=summary.best, phase=summary.phase)
                    hv_q.append(s, self.job_id, [h for h in summary.hv_history if h[0] > self._hv_stored])
                    pending_q.remove(s, self.job_id, [t.seq for t in trials])  # fanned-out candidates, now trials
            except Conflict:
                # a retry after a connection lost during COMMIT: the first attempt may have landed
                with session_scope(self.factory) as s:
                    if jobs_q.owned_job(s, self.job_id, self.token).evaluated < summary.evaluated:
                        raise

        self._retrying(write)
        if summary.hv_history:
            self._hv_stored = max(self._hv_stored, summary.hv_history[-1][0])

    def _retrying(self, action: Callable[[], None]) -> None:
        """Ride out a database restart for up to one lease; after that another worker may own the job."""
        deadline = time.monotonic() + self.lease_seconds
        delay = 0.25
        while True:
            try:
                action()
                return
            except Unavailable:
                if time.monotonic() + delay > deadline or self.stopping.is_set():
                    raise
                log.warning("job %s: database unavailable, retrying in %.1fs", self.job_id, delay)
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def stop_reason(self) -> str | None:
        if self.lease_lost.is_set():
            raise LeaseLost(self.job_id)
        if self.stopping.is_set():
            raise WorkerStopping(self.job_id)
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
                send_helpers: SendHelpers | None = None, settings: Settings | None = None,
                max_claims: int = MAX_CLAIMS, notify: Notify | None = None,
                stopping: threading.Event | None = None) -> str:
    """Claim and run one job to its end. Returns what happened (for logs and tests).

    ``send_helpers`` asks other workers to help with a batch (Celery); without it a
    job's ``parallelism`` runs on threads of this process where the evaluator allows.
    A job whose deliveries died ``max_job_attempts`` times in a row without progress is
    failed here instead of run again (a poison trial). ``stopping``: set when the process shuts
    down; the job then stops between units of work, unfinished, for the next process to resume.
    """
    settings = settings or get_settings()
    with session_scope(factory) as s:
        token = jobs_q.claim(s, job_id, owner, lease_seconds)
        if token is None:
            lease = jobs_q.lease_of(s, job_id)
            if lease and lease[0] == "running" and lease[1] and lease[2] and owner_is_dead(lease[2]):
                token = jobs_q.take_over(s, job_id, owner, lease[1])
                if token:
                    log.warning("job %s: its owner %s died; taken over at once", job_id, lease[2])
    if token is None:
        return "not claimed"
    with session_scope(factory) as s:
        job = jobs_q.owned_job(s, job_id, token)
        spec_data, first_start, evaluated, tenant_id = job.spec, job.started_at, job.evaluated, job.tenant_id
        pins = job.table_pins
        deaths, in_flight = job.lost_deliveries, job.in_flight
        allowed = command_evaluator_allowed(settings, s, job.tenant_id)
        tenant = s.get(Tenant, job.tenant_id).name if job.tenant_id is not None else None
        clock_offset = database_time(s) - utcnow()
    if deaths >= settings.max_job_attempts:
        message = poison_message(deaths, in_flight, evaluated)
        log.error("job %s: %s", job_id, message)
        _finish(factory, job_id, token, "failed", message)
        return "failed"
    try:
        spec = JobSpec.model_validate(spec_data)
        if spec.evaluator.type == "command" and not allowed:
            raise SpecError("evaluator.type", command_refusal(tenant))
        catalog = DbCatalog(factory, tenant_id, pins, notify=notify)
        search = build_search(spec, catalog, command_policy=command_policy(settings))
    except (SpecError, ValueError) as exc:
        _finish(factory, job_id, token, "failed", f"the job cannot run: {exc}")
        return "failed"
    deadline = None
    if spec.time_limit_s and first_start:  # the database's start time, on this process's clock
        deadline = (first_start - clock_offset).timestamp() + spec.time_limit_s
    recorder = DbRecorder(factory, job_id, token, lease_seconds, clock_offset=clock_offset, note_batches=deaths > 0,
                          stopping=stopping)
    beat = _Heartbeat(recorder, max(1.0, lease_seconds / 4))
    beat.start()
    try:
        _wire_measurements(factory, search, recorder)
        dispatcher = _dispatcher(factory, search, recorder, send_helpers, owner, max_claims)
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
    except WorkerStopping:
        log.warning("job %s: this process is stopping; the job goes back to the queue, to resume from its last "
                    "checkpoint", job_id)
        with session_scope(factory) as s:
            jobs_q.release(s, job_id, token)
        return "interrupted"
    except Unavailable:
        if recorder.stopping.is_set():
            return "interrupted"
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
        kind, device, space, tenant_id = op.kind, op.device, op.space, op.tenant_id
        if op.job_id is not None and tenant_id is None:
            job = jobs_q.get_job(s, op.job_id)
            tenant_id = job.tenant_id if job is not None else None
    catalog = DbCatalog(factory, tenant_id, notify=notify)
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
                send_helpers: SendHelpers | None, owner: str,
                max_claims: int = MAX_CLAIMS) -> Dispatcher | AsyncDispatcher | None:
    """Where a job's candidates are evaluated: here (parallelism 1), on other workers, or on threads;
    asynchronously unless the spec asks for ``schedule: sync`` (or the strategy trains a supernet
    inside ``ask``, which proposes its architectures in fixed batches anyway)."""
    parallelism = search.spec.parallelism
    if parallelism <= 1:
        return None
    use_async = search.spec.schedule == "async" and not search.strategy.differentiable
    if send_helpers is not None:
        kind = AsyncDbFanOut if use_async else DbFanOut
        return kind(factory, recorder.job_id, recorder.token, spec=search.spec, evaluator=search.evaluator,
                    canonical_hash=search.space.canonical_hash, send_helpers=send_helpers, worker=owner,
                    lease_seconds=recorder.lease_seconds, lease_lost=recorder.lease_lost,
                    retrying=recorder._retrying, max_claims=max_claims)
    if threads_safe(search.spec):
        if use_async:
            return AsyncThreaded(search.evaluator, parallelism)
        return ThreadedDispatch(search.evaluator, parallelism, lambda: recorder.stop_reason() == "cancelled")
    return None  # training seeds torch globally: one evaluation at a time in this process


def help_with_job(factory: sessionmaker[Session], job_id: str, *, worker: str, lease_seconds: int,
                  settings: Settings | None = None, max_claims: int = MAX_CLAIMS) -> int:
    """Evaluate candidates of a fanned-out job's batches (a helper task). Returns how many results it stored."""
    settings = settings or get_settings()
    with session_scope(factory) as s:
        job = jobs_q.get_job(s, job_id)
        if job is None:
            return 0
        if job.spec.get("evaluator", {}).get("type") == "command" \
                and not command_evaluator_allowed(settings, s, job.tenant_id):
            log.warning("job %s: not helping, %s", job_id, command_refusal(None))
            return 0
    policy = command_policy(settings)
    return help_evaluate(factory, job_id, worker=worker, lease_seconds=lease_seconds,
                         build_evaluator=lambda spec: build_evaluator(spec, DbCatalog(factory), command_policy=policy),
                         max_claims=max_claims)


def _outcome(stop_reason: str | None) -> tuple[str, str | None]:
    """Terminal status and the note stored with it."""
    if stop_reason == "cancelled":
        return "cancelled", None
    if stop_reason == "exhausted":
        return "succeeded", "the search space has no more feasible architectures"
    if stop_reason:
        return "failed", stop_reason
    return "succeeded", None
