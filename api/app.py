"""The FastAPI app factory. Embedded mode runs jobs in-process; otherwise they go to Celery."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import dashboard, openapi, problems
from api.auth import KeyCache
from api.dashboard import assets as dashboard_assets
from api.limits import BodySizeLimit
from api.ratelimit import MemoryRateLimiter, RedisRateLimiter
from api.routers import catalog, exports, health, jobs, spaces
from hwnas_settings.version import __version__
from hwnas_settings import Settings, get_settings
from nas.export.service import ExportRunner
from nas.local_worker import LocalWorker
from nas.service import register_shipped_tables
from storage.db import make_engine, make_session_factory
from storage.migrate import upgrade

log = logging.getLogger("hwnas.api")
CELERY_TASK = "hwnas.run_job"
OPERATION_TASK = "hwnas.device_operation"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    settings.check_serving()  # raises UnsafeSettings saying what to set
    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # compress the dashboard's assets once now, not on the first page view
        threading.Thread(target=dashboard_assets.warm, daemon=True, name="hwnas-assets").start()
        worker = None
        if settings.embedded:
            upgrade(settings.database_url)
            register_shipped_tables(factory)
            from nas import threads

            threads.configure(settings.embedded_workers)  # jobs at once share the cores
            worker = LocalWorker(factory, lease_seconds=settings.lease_seconds,
                                 threads=settings.embedded_workers, settings=settings)
            app.state.enqueue = worker.enqueue
            resumed = worker.resume_pending()
            log.warning("embedded mode: database %s, in-process worker, no authentication "
                        "(%d unfinished jobs resumed)", settings.database_url, resumed)
        else:
            from celery import Celery

            sender = Celery("hwnas-api", broker=settings.broker_url)
            app.state.enqueue = lambda job_id: sender.send_task(CELERY_TASK, args=[job_id], queue=settings.queue)
            app.state.enqueue_operation = lambda op_id: sender.send_task(OPERATION_TASK, args=[op_id],
                                                                         queue=settings.queue)
            app.state.ping_broker = lambda: sender.connection_for_write().ensure_connection(max_retries=1)
        yield
        app.state.export_runner.shutdown()
        if worker:
            worker.shutdown()
        engine.dispose()

    app = FastAPI(title="hwnas", version=__version__, lifespan=lifespan,
                  description="Hardware-aware neural architecture search: submit a search, "
                              "watch it run, fetch the Pareto-optimal architectures.")
    app.state.settings = settings
    app.state.session_factory = factory
    app.state.key_cache = KeyCache()
    app.state.export_runner = ExportRunner(settings.export_workers, settings.export_queue, settings.export_timeout_s)
    app.state.rate_limiter = RedisRateLimiter(settings.broker_url) if settings.broker_url and not settings.embedded else MemoryRateLimiter()
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    problems.install(app)
    for router in (jobs.router, exports.router, spaces.router, catalog.router, health.router, dashboard.router):
        app.include_router(router)
    openapi.install(app)
    return app
