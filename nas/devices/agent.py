"""The measurement agent's loop (``hwnas agent`` runs it inside a Celery worker on the device's queue).

The database is the truth: requesters insert ``measurements`` rows and send a wake-up
task to the device's queue; the agent claims pending rows in batches, exports each
model, measures the batch with its runtime and stores every result (or its reason)
under its claim. A heartbeat thread keeps the agent's row fresh, and, when the agent is
idle and rows are waiting (a dead agent's claims, wake-ups sent while none ran), sends
itself a wake-up, so a new agent picks up where a killed one stopped.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from nas.devices.models import model_for
from nas.devices.runtimes import DeviceRuntime, ModelRef, RuntimeResult
from search_spaces import get_space
from storage import devices as devices_q
from storage.db import Unavailable, session_scope

log = logging.getLogger("hwnas.agent")


#: Anchor architectures per batch: three average out most of one anchor's own timing noise.
ANCHORS = 3


def device_queue(base_queue: str, device: str) -> str:
    """The Celery queue of one device's agents (``hwnas-device-NAME`` with the default queue)."""
    return f"{base_queue}-device-{device}"


class Agent:
    def __init__(self, factory: sessionmaker[Session], *, device: str, space: str, runtime: DeviceRuntime,
                 queue: str, cache_dir: Path, heartbeat_s: float = 5.0, offline_after_s: float = 20.0,
                 batch: int = 8, wake: Callable[[], None] | None = None):
        self.factory, self.device, self.space, self.runtime = factory, device, space, runtime
        self.queue, self.cache_dir, self.heartbeat_s, self.offline_after_s = queue, cache_dir, heartbeat_s, offline_after_s
        self.batch, self.wake = batch, wake
        self.id = str(uuid.uuid4())
        #: Fixed architectures timed in every batch of an interleaved runtime (see ``measure``).
        rng = np.random.default_rng(0)
        self.anchor_archs = [get_space(space).sample(rng) for _ in range(ANCHORS)]
        self.anchor_ms: np.ndarray | None = None
        self.last_drift: float | None = None
        self.environment: dict[str, Any] = {}
        self._busy = threading.Lock()
        self._woken = threading.Event()  # a wake-up is on its way: do not send another
        self._stopped = threading.Event()
        self._beat: threading.Thread | None = None

    def start(self) -> None:
        import socket

        self.environment = self.runtime.environment()
        with session_scope(self.factory) as s:
            devices_q.register_agent(s, agent_id=self.id, device=self.device, space=self.space,
                                     runtime=self.runtime.name, queue=self.queue, host=socket.gethostname(),
                                     environment=self.environment)
        self._beat = threading.Thread(target=self._heartbeat, daemon=True, name="agent-heartbeat")
        self._beat.start()
        log.info("agent %s for device %r (%s, %s) on queue %s", self.id, self.device, self.space,
                 self.runtime.name, self.queue)

    def stop(self) -> None:
        self._stopped.set()
        try:
            with session_scope(self.factory) as s:
                devices_q.agent_stopped(s, self.id)
        except Unavailable:
            pass

    def _heartbeat(self) -> None:
        while not self._stopped.wait(self.heartbeat_s):
            try:
                with session_scope(self.factory) as s:
                    devices_q.agent_heartbeat(s, self.id)
                    waiting = devices_q.has_unclaimed(s, self.device, self.space, self.offline_after_s)
                if waiting and self.wake and not self._busy.locked() and not self._woken.is_set():
                    self._woken.set()
                    self.wake()
            except Unavailable:
                log.warning("agent heartbeat: database unavailable")
            except Exception:  # the broker may be down: the next beat tries again
                log.exception("agent heartbeat failed")

    def work(self) -> int:
        """Measure one batch of what is waiting; wake itself again if more is. Returns results stored.

        One batch per task keeps a warm shutdown short (Celery lets the running task finish).
        """
        self._woken.clear()
        stored = 0
        with self._busy:
            if self._stopped.is_set():
                return 0
            with session_scope(self.factory) as s:
                rows = [(m.id, m.arch) for m in devices_q.claim_measurements(
                    s, agent_id=self.id, device=self.device, space=self.space, limit=self.batch,
                    offline_after_s=self.offline_after_s)]
            if not rows:
                return 0
            results = self.measure([arch for _, arch in rows])
            env = {**self.environment, "measured_at": time.time(), "anchor_drift": self.last_drift,
                   "reference_drift": self.runtime.reference_drift,
                   "anchor_ms": None if self.anchor_ms is None else self.anchor_ms.tolist()}
            with session_scope(self.factory) as s:
                for (mid, _), result in zip(rows, results, strict=True):
                    stored += devices_q.complete_measurement(
                        s, mid, self.id, latency_ms=result.latency_ms if result.ok else None,
                        energy_mj=result.energy_mj, peak_memory_kb=result.peak_memory_kb, environment=env,
                        error=None if result.ok else (result.error or "no latency reported"))
                more = devices_q.has_unclaimed(s, self.device, self.space, self.offline_after_s)
        if more and self.wake and not self._woken.is_set():
            self._woken.set()
            self.wake()
        return stored

    def measure(self, archs: list[str]) -> list[RuntimeResult]:
        """Export (cached) and measure a batch; an export that fails is that model's error.

        For an interleaved runtime the batch also times the agent's *anchors* (fixed
        architectures of the space): a model's latency is its time divided by the anchors'
        drift, the geometric mean of their time in this batch over their time in the agent's
        first batch. Within a batch the models see the same load; across batches the anchors
        carry the scale, so a reference measured in a quiet minute and a validation network
        measured in a busy one stay comparable. The drift goes with each result.
        """
        if not self.runtime.interleaved:
            return self._measure(archs)
        k = len(self.anchor_archs)
        results = self._measure([*self.anchor_archs, *archs])
        anchors, rest = results[:k], results[k:]
        if not all(a.ok for a in anchors):
            return rest
        times = np.array([float(a.latency_ms) for a in anchors])  # type: ignore[arg-type]
        if self.anchor_ms is None:
            self.anchor_ms = times
        drift = float(np.exp(np.mean(np.log(times / self.anchor_ms))))  # geometric mean over the anchors
        self.last_drift = drift
        return [RuntimeResult(r.latency_ms / drift, r.energy_mj, r.peak_memory_kb) if r.ok else r  # type: ignore[operator]
                for r in rest]

    def _measure(self, archs: list[str]) -> list[RuntimeResult]:
        refs: list[ModelRef | None] = []
        errors: dict[int, str] = {}
        for i, arch in enumerate(archs):
            try:
                refs.append(model_for(self.space, arch, self.runtime.export_format, self.cache_dir))
            except Exception as exc:  # export errors of any kind: recorded, the batch goes on
                refs.append(None)
                errors[i] = f"export failed: {type(exc).__name__}: {str(exc)[:500]}"
        ready = [r for r in refs if r is not None]
        measured = iter(self.runtime.measure(ready) if ready else [])
        return [RuntimeResult(error=errors[i]) if r is None else next(measured) for i, r in enumerate(refs)]
