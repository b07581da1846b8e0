"""The Celery app. Settings follow DESIGN.md's reliability model: the job row is the truth,
delivery is at least once, a job is claimed under a lease, a reaper re-queues stale jobs."""

from __future__ import annotations

from celery import Celery

from hwnas_settings import get_settings

settings = get_settings()
app = Celery("hwnas", broker=settings.broker_url or "redis://127.0.0.1:6379/0", include=["workers.tasks"])
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    worker_max_tasks_per_child=1,  # a fresh process (and torch state) per job
    task_ignore_result=True,
    task_default_queue=settings.queue,
    # One number drives the rest: a job may run job_time_limit_s; the broker must not
    # redeliver a message before that, the soft limit leaves time to record the end.
    task_time_limit=settings.job_time_limit_s + 60,
    task_soft_time_limit=settings.job_time_limit_s,
    broker_transport_options={"visibility_timeout": settings.job_time_limit_s + 120},
    broker_connection_retry_on_startup=True,
    beat_schedule={"reap-stale-jobs": {"task": "hwnas.reap", "schedule": float(settings.lease_seconds),
                                        "options": {"queue": settings.queue}}},
)
