"""The measurement agent's Celery app: one solo worker on the device's own queue.

``hwnas agent`` builds the ``Agent`` (nas/devices/agent.py), stores it here and runs this
app's worker in its own process: the task runs in the main thread, where the runtime's
threads are pinned, and the agent's heartbeat thread runs beside it. Messages are only
wake-ups (the measurements live in the database), so they are acknowledged on receipt.
"""

from __future__ import annotations

import logging
import os

from celery import Celery
from celery.signals import worker_ready, worker_shutdown

from hwnas_settings import get_settings
from nas.devices.agent import Agent

log = logging.getLogger("hwnas.agent")
MEASURE_TASK = "hwnas.agent.measure"
settings = get_settings()
app = Celery("hwnas-agent", broker=settings.broker_url or "redis://127.0.0.1:6379/0")
app.conf.update(task_acks_late=False, worker_prefetch_multiplier=1, task_ignore_result=True,
                broker_connection_retry_on_startup=True, worker_hijack_root_logger=False)
AGENT: Agent | None = None


@app.task(name=MEASURE_TASK)
def measure() -> int:
    if AGENT is None:
        raise RuntimeError("this worker is not a measurement agent (run `hwnas agent`)")
    stored = AGENT.work()
    log.info("measured %d models", stored)
    return stored


@worker_ready.connect
def _started(**_: object) -> None:
    if AGENT is not None:
        AGENT.start()
        wake_self()


@worker_shutdown.connect
def _stopped(**_: object) -> None:
    if AGENT is not None:
        AGENT.stop()


def wake_self() -> None:
    if AGENT is not None:
        app.send_task(MEASURE_TASK, queue=AGENT.queue)


def run(agent: Agent) -> None:
    """Run ``agent`` as a Celery worker in this process until it is stopped."""
    global AGENT
    AGENT = agent
    agent.wake = wake_self
    app.worker_main(["worker", "--loglevel", "INFO", "--pool", "solo", "--concurrency", "1",
                     "--queues", agent.queue, "--hostname", f"agent-{agent.device}-{os.getpid()}@%h",
                     "--without-gossip", "--without-mingle", "--without-heartbeat"])


def sender(broker_url: str, base_queue: str):  # type: ignore[no-untyped-def]
    """A wake-up sender for requesters (API, workers): device -> message on its agents' queue."""
    from nas.devices.agent import device_queue

    client = Celery("hwnas-agent-sender", broker=broker_url)

    def notify(device: str) -> None:
        client.send_task(MEASURE_TASK, queue=device_queue(base_queue, device))

    return notify


