"""The Celery app. Settings follow DESIGN.md's reliability model: the job row is the truth,
delivery is at least once, a job is claimed under a lease, a reaper re-queues stale jobs.

No start-up tax per job: worker processes are reused (``worker_max_tasks_per_child`` jobs
each, default 500), and everything a job needs is imported in the parent before it forks
its pool (``workers.tasks`` warms the strategies, evaluators and torch's Python side), so
a claimed job starts evaluating at once. A job needs no fresh process: the thread policy
(``nas.threads``) is applied before every torch computation and every evaluator seeds
its own generators. A child killed mid-job is still recoverable: its message is not acked
(``task_acks_late`` + ``task_reject_on_worker_lost``) and the job's lease goes stale, so
the reaper hands it on.
"""

from __future__ import annotations

from celery import Celery
from celery.signals import worker_init

from hwnas_settings import get_settings
from nas import threads

threads.prepare_environment()  # before torch is imported anywhere in this process
settings = get_settings()
app = Celery("hwnas", broker=settings.broker_url or "redis://127.0.0.1:6379/0", include=["workers.tasks"])
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    worker_max_tasks_per_child=settings.worker_max_tasks_per_child,
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


@worker_init.connect
def _thread_policy(sender: object = None, **_: object) -> None:
    """Each pool process runs one evaluation at a time: the cores are shared by ``concurrency`` of them."""
    threads.configure(int(getattr(sender, "concurrency", None) or 1))
