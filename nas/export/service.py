"""Exports of a job's trials for the API: tenant-scoped lookups, bounded model builds, a cache.

Building a model file is the costly part (ONNX: torch export plus an onnxruntime check,
1-7 s of CPU) and uses torch's process-wide state, which must not be driven from the
API's parallel request threads. So ``ExportRunner`` builds model files in a small pool
of separate processes (``export_workers``, one build at a time each, torch on one thread),
admits at most ``export_queue`` requests waiting (``Busy`` beyond), stops a build after
``export_timeout_s`` seconds of CPU (an ExportError, 422), and folds identical concurrent
requests into one build. Finished model files are cached in
the database (``export_cache``) by (space content, canonical architecture, format, seed,
hwnas version); the manifest around them (job, predictions) is made per request, cheaply.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import io
import json
import multiprocessing
import signal
import tempfile
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from hwnas_settings.version import __version__
from latency_tables import LatencyTable, TableError
from nas.export.codegen import ExportError
from nas.export.core import ModelFiles, export_architecture, resolve, write_model_files
from nas.service import DbCatalog
from nas.spec import JobSpec
from search_spaces import SearchSpace
from storage import catalog as catalog_q
from storage import jobs as jobs_q
from storage.db import Conflict, session_scope
from storage.models import ExportArtifact

_EXTRA = "_extra.json"
#: An export waits at most this many times its CPU limit on the wall clock (queue included).
WALL_FACTOR = 10


class NotFound(LookupError):
    """No such job for this tenant, or no such trial in that job."""


class Busy(RuntimeError):
    """Too many exports are waiting already, or one took longer than its time limit."""

    def __init__(self, message: str, retry_after_s: int = 10):
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass
class Archive:
    filename: str
    content: bytes


#: How a space travels to an export process: a shipped code space by name, any other by its definition.
SpaceRef = str | dict[str, Any]


def space_ref(space: SearchSpace) -> SpaceRef:
    definition = space.definition()
    return space.name if definition.get("type") == "code" else definition


def _space(ref: SpaceRef) -> SearchSpace:
    from search_spaces import get_space, parse_space_definition

    return get_space(ref) if isinstance(ref, str) else parse_space_definition(ref)


def build_model(space: SpaceRef | SearchSpace, arch: str, fmt: str, seed: int) -> ModelFiles:
    """The model files of one export."""
    if not isinstance(space, SearchSpace):
        space = _space(space)
    with tempfile.TemporaryDirectory(prefix="hwnas-model-") as tmp:
        names, extra = write_model_files(space, arch, fmt, Path(tmp), seed=seed)
        return ModelFiles({n: (Path(tmp) / n).read_bytes() for n in names}, extra)


def _init_process() -> None:
    """An export process: torch on one thread (one export per process, no core oversubscription)."""
    import torch

    torch.set_num_threads(1)


def _build_bounded(space: SpaceRef, arch: str, fmt: str, seed: int, cpu_s: float) -> ModelFiles:
    """build_model, stopped once it used ``cpu_s`` seconds of CPU (however busy the machine is)."""
    def stop(signum: int, frame: object) -> None:
        raise ExportError(f"the export used more than {cpu_s:g}s of CPU and was stopped")

    previous = signal.signal(signal.SIGPROF, stop)
    signal.setitimer(signal.ITIMER_PROF, cpu_s)
    try:
        return build_model(space, arch, fmt, seed)
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)


class ExportRunner:
    """Builds model files in separate processes, bounded, one build per identical request."""

    def __init__(self, workers: int = 1, queue: int = 16, timeout_s: float = 120):
        self.workers, self.timeout_s = workers, timeout_s
        self._slots = threading.BoundedSemaphore(queue)
        self._lock = threading.Lock()
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._in_flight: dict[str, concurrent.futures.Future[ModelFiles]] = {}

    def _executor(self) -> concurrent.futures.ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                # spawn: a fresh interpreter, never a fork of the API's threads and torch state
                self._pool = concurrent.futures.ProcessPoolExecutor(
                    self.workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_process,
                    max_tasks_per_child=50)
            return self._pool

    def build(self, key: str, space: SpaceRef, arch: str, fmt: str, seed: int,
              store: Callable[[ModelFiles], None] | None = None) -> ModelFiles:
        """The model files of ``key``, built once however many ask at the same time; ``store``
        (the cache write) runs before a later request stops finding the build in flight, so one
        that arrives just after it finished reads the cache instead of building again."""
        if not self._slots.acquire(blocking=False):
            raise Busy("too many exports are waiting; try again shortly")
        try:
            with self._lock:
                future = self._in_flight.get(key)
                owner = future is None
            if owner:
                future = self._executor().submit(_build_bounded, space, arch, fmt, seed, self.timeout_s)
                with self._lock:
                    self._in_flight[key] = future
            assert future is not None
            try:
                # the build stops itself after timeout_s of CPU; this wall-clock backstop only
                # catches a process that hangs without using CPU
                model = future.result(timeout=self.timeout_s * WALL_FACTOR)
                if owner and store is not None:
                    store(model)
                return model
            except concurrent.futures.TimeoutError:
                self._restart()
                raise Busy(f"the export did not finish within {self.timeout_s * WALL_FACTOR:g}s", 30) from None
            except (concurrent.futures.process.BrokenProcessPool, concurrent.futures.CancelledError):
                if owner:
                    self._restart()
                raise Busy("the export process was stopped; try again", 5) from None
            finally:
                if owner:
                    with self._lock:
                        self._in_flight.pop(key, None)
        finally:
            self._slots.release()

    def _restart(self) -> None:
        """Stop the pool's processes (a build past its time limit cannot be cancelled otherwise)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            for proc in list(getattr(pool, "_processes", {}).values()):
                proc.kill()
            pool.shutdown(wait=False, cancel_futures=True)

    def shutdown(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def cache_key(space: SearchSpace, canonical_hash: str, fmt: str, seed: int) -> str:
    """The space's content hash (a re-registered definition is another space), the canonical
    architecture, the format, the seed (it initialises the weights) and the hwnas version."""
    return hashlib.sha256(json.dumps([space.content_hash, canonical_hash, fmt, seed, __version__]).encode()).hexdigest()


def _pack(model: ModelFiles) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        for name, content in model.files.items():
            zf.writestr(name, content)
        zf.writestr(_EXTRA, json.dumps(model.extra))
    return buffer.getvalue()


def _unpack(content: bytes) -> ModelFiles:
    with zipfile.ZipFile(io.BytesIO(content)) as zf:
        files = {n: zf.read(n) for n in zf.namelist() if n != _EXTRA}
        return ModelFiles(files, json.loads(zf.read(_EXTRA)))


def model_files(factory: sessionmaker[Session], runner: ExportRunner | None, space: SearchSpace, arch: str,
                fmt: str, seed: int) -> ModelFiles:
    """From the cache, else built (in the runner's processes when given, else here) and cached."""
    space, arch = resolve(space, arch)
    key = cache_key(space, space.canonical_hash(arch), fmt, seed)
    with session_scope(factory) as s:
        hit = s.get(ExportArtifact, key)
        if hit is not None:
            return _unpack(hit.content)

    def store(model: ModelFiles) -> None:
        try:
            with session_scope(factory) as s:
                if s.get(ExportArtifact, key) is None:
                    s.add(ExportArtifact(key=key, filename=f"{space.name}-{fmt}", content=_pack(model)))
        except Conflict:
            pass  # another server process stored the same build first

    if runner is None:
        model = build_model(space, arch, fmt, seed)
        store(model)
        return model
    return runner.build(key, space_ref(space), arch, fmt, seed, store=store)


def export_trial(factory: sessionmaker[Session], *, tenant_id: int, job_id: str, trial_id: int,
                 fmt: str, runner: ExportRunner | None = None) -> Archive:
    """The zip of one trial's export. Raises NotFound, ExportError for a bad format or arch, Busy."""
    with session_scope(factory) as s:
        job = jobs_q.get_job(s, job_id, tenant_id)
        if job is None:
            raise NotFound(f"no job {job_id!r}")
        trial = jobs_q.get_trial_by_id(s, job.id, trial_id)
        if trial is None:
            raise NotFound(f"job {job_id} has no trial {trial_id}")
        spec = JobSpec.model_validate(job.spec)
        tenant = job.tenant_id
        tables = []
        pins = job.table_pins or {}
        for device in catalog_q.list_devices(s, spec.space, tenant_id=tenant_id):
            pinned = pins.get(f"{spec.space}/{device.name}")  # the version the job ran with
            data = (catalog_q.table_version(s, pinned) if pinned else None) or device.table
            try:
                tables.append(LatencyTable.from_dict(data))
            except TableError:
                continue  # stored tables were checked on upload; a broken one is left out, not fatal
        info = {"id": job.id, "name": job.name, "trial_id": trial.id, "trial_seq": trial.seq,
                "trial_status": trial.status, "metrics": trial.metrics}
        arch = trial.arch
    if fmt not in ("torch", "onnx", "json"):
        raise ExportError(f"unknown format {fmt!r}; valid: torch, onnx, json")
    # the definition the job ran on (pinned by hash), whatever the tenant registered since
    space = DbCatalog(factory, tenant).space(spec.space, spec.space_hash)
    if space is None:
        raise ExportError(f"the job's search space {spec.space!r} (content hash {spec.space_hash}) is not known here")
    model = model_files(factory, runner if fmt == "onnx" else None, space, arch, fmt, spec.seed)
    with tempfile.TemporaryDirectory(prefix="hwnas-export-") as tmp:
        result = export_architecture(space, arch, fmt, Path(tmp), tables=tables,
                                     tables_source="every device table this tenant may use "
                                                   "(the job's pinned versions for its devices)",
                                     seed=spec.seed, used_devices=spec.devices(), job=info, model=model)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
            for name in result.files:
                zf.write(result.out_dir / name, name)
    name = f"hwnas-{spec.space}-{result.manifest['canonical_hash']}-{fmt}.zip"
    return Archive(name, buffer.getvalue())
