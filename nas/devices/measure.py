"""The requesting side: ask a device's agent to measure architectures and wait for the results.

Waiting is visible: ``on_progress`` hears "measuring on D: 3/20" while an agent is
online and "waiting for an agent of D: offline, last answered …" while none is; after
``wait_timeout_s`` of continuous absence the wait fails with ``AgentOffline``. A
measurement that fails carries its reason; nothing is ever a silent 0.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from search_spaces import get_space
from storage import devices as devices_q
from storage.db import session_scope
from storage.models import utcnow

#: (device) -> None: wake the device's agents (a Celery message on their queue); None: they poll.
Notify = Callable[[str], None]
#: (message, done, total)
OnProgress = Callable[[str, int, int], None]


class AgentOffline(RuntimeError):
    """No agent of the device answered for longer than the wait timeout."""


class MeasurementStopped(RuntimeError):
    """The caller asked to stop waiting (the job was cancelled)."""


@dataclass
class Measured:
    arch: str
    latency_ms: float | None
    energy_mj: float | None
    peak_memory_kb: float | None
    error: str | None
    environment: dict[str, Any] | None

    @property
    def ok(self) -> bool:
        return self.error is None and self.latency_ms is not None

    def value(self, metric: str) -> float | None:
        return getattr(self, metric, None) if self.ok else None


def agent_status(factory: sessionmaker[Session], device: str, offline_after_s: float) -> dict[str, Any] | None:
    """Whether an agent of ``device`` is online and when one last answered (None: never seen)."""
    with session_scope(factory) as s:
        agents = devices_q.agents_of(s, device)
        if not agents:
            return None
        fresh = utcnow() - dt.timedelta(seconds=offline_after_s)
        online = [a for a in agents if a.heartbeat_at >= fresh and a.stopped_at is None]
        last = agents[0]
        shown = online[0] if online else last
        return {"online": bool(online), "agents_online": len(online),
                "last_seen": last.heartbeat_at.isoformat(), "space": shown.space, "runtime": shown.runtime,
                "queue": shown.queue, "host": shown.host, "environment": shown.environment}


class DeviceMeasurer:
    def __init__(self, factory: sessionmaker[Session], device: str, space: str, *, notify: Notify | None = None,
                 offline_after_s: float = 20.0, wait_timeout_s: float = 600.0, poll_s: float = 0.5):
        self.factory, self.device, self.space, self.notify = factory, device, space, notify
        self.offline_after_s, self.wait_timeout_s, self.poll_s = offline_after_s, wait_timeout_s, poll_s

    def request(self, archs: Sequence[str], *, purpose: str, owner: str | None) -> list[int]:
        space = get_space(self.space)
        with session_scope(self.factory) as s:
            ids = devices_q.request_measurements(s, device=self.device, space=self.space,
                                                 archs=[(a, space.canonical_hash(a)) for a in archs],
                                                 purpose=purpose, owner=owner)
        self._wake()
        return ids

    def _wake(self) -> None:
        if self.notify:
            try:
                self.notify(self.device)
            except Exception:  # the agents poll as well: a lost wake-up only delays
                pass

    def wait(self, ids: Sequence[int], *, on_progress: OnProgress | None = None,
             stop: Callable[[], bool] | None = None) -> list[Measured]:
        offline_since: float | None = None
        while True:
            with session_scope(self.factory) as s:
                rows = devices_q.measurements(s, ids)
                done = sum(r.status in devices_q.MEASUREMENT_TERMINAL for r in rows)
                online = devices_q.online_agents(s, self.device, self.space, self.offline_after_s)
                if done == len(ids):
                    return [Measured(r.arch, r.latency_ms, r.energy_mj, r.peak_memory_kb, r.error, r.environment)
                            for r in rows]
            if stop and stop():
                raise MeasurementStopped("stopped while waiting for measurements")
            if online:
                if offline_since is not None:
                    self._wake()  # a new agent: make sure it looks at once
                offline_since = None
                if on_progress:
                    on_progress(f"measuring on {self.device}", done, len(ids))
            else:
                now = time.monotonic()
                offline_since = now if offline_since is None else offline_since
                status = agent_status(self.factory, self.device, self.offline_after_s)
                seen = f"last answered {status['last_seen']}" if status else "never seen"
                reason = (f"waiting for an agent of device {self.device!r} ({self.space}): offline, {seen}; "
                          f"start one with `hwnas agent --device {self.device} --space {self.space}`")
                if on_progress:
                    on_progress(reason, done, len(ids))
                if now - offline_since > self.wait_timeout_s:
                    raise AgentOffline(f"no agent of device {self.device!r} answered for "
                                       f"{self.wait_timeout_s:g}s ({seen}); {done}/{len(ids)} measured")
            time.sleep(self.poll_s)

    def measure(self, archs: Sequence[str], *, purpose: str, owner: str | None,
                on_progress: OnProgress | None = None, stop: Callable[[], bool] | None = None) -> list[Measured]:
        return self.wait(self.request(archs, purpose=purpose, owner=owner), on_progress=on_progress, stop=stop)
