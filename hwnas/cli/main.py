"""The ``hwnas`` command line."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from hwnas.cli import remote
from hwnas.cli.bench import bench
from hwnas.cli.demo import demo
from hwnas.cli.render import console, fail
from hwnas.cli.search import search
from hwnas.settings import Settings

app = typer.Typer(help="Hardware-aware neural architecture search.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmark tables (accuracy lookups).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(bench_app, name="benchmarks")
app.command()(search)
app.command()(demo)
app.command()(bench)
remote.register(app)

DbUrl = Annotated[str | None, typer.Option("--database-url", envvar="HWNAS_DATABASE_URL",
                                           help="Database URL (default: the embedded SQLite file)")]


def _settings(database_url: str | None = None, **overrides: object) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    if database_url:
        values["database_url"] = database_url
    try:
        return Settings(**values)  # type: ignore[arg-type]
    except ValueError as exc:
        fail(str(exc))


def _factory(settings: Settings):  # type: ignore[no-untyped-def]
    from storage.db import make_engine, make_session_factory

    return make_session_factory(make_engine(settings.database_url))


@app.command()
def serve(embedded: Annotated[bool, typer.Option(help="SQLite + in-process worker (ignores the broker)")] = False,
          host: Annotated[str | None, typer.Option(help="Bind address")] = None,
          port: Annotated[int | None, typer.Option(help="Port")] = None,
          database_url: DbUrl = None) -> None:
    """Run the HTTP API (and, with --embedded, the worker in the same process)."""
    import uvicorn

    from api.app import create_app

    settings = _settings(database_url, host=host, port=port, **({"broker_url": ""} if embedded else {}))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    console.print(f"hwnas API on http://{settings.host}:{settings.port}  (docs at /docs, "
                  f"{'embedded worker, no auth' if settings.embedded else 'Celery at ' + settings.broker_url})")
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="warning")


@app.command()
def worker(concurrency: Annotated[int, typer.Option(help="Jobs run at once (processes)")] = 1,
           beat: Annotated[bool, typer.Option(help="Also run the reaper schedule in this worker")] = True) -> None:
    """Run a Celery worker (needs HWNAS_BROKER_URL and HWNAS_DATABASE_URL)."""
    settings = _settings()
    if settings.embedded:
        fail("HWNAS_BROKER_URL is not set", "export HWNAS_BROKER_URL=redis://127.0.0.1:6379/0, "
             "or run `hwnas serve --embedded` which needs no worker")
    from workers.celery_app import app as celery_app

    argv = ["worker", "--loglevel", "INFO", "--concurrency", str(concurrency), "--queues", settings.queue]
    if beat:
        argv += ["--beat", "--schedule", str(Path(tempfile.gettempdir()) / f"hwnas-beat-{os.getpid()}")]
    celery_app.worker_main(argv)


@db_app.command("upgrade")
def db_upgrade(database_url: DbUrl = None) -> None:
    """Apply all migrations and register the shipped latency tables."""
    from nas.service import register_shipped_tables
    from storage.db import StorageError
    from storage.migrate import upgrade

    settings = _settings(database_url)
    try:
        upgrade(settings.database_url)
        count = register_shipped_tables(_factory(settings))
    except (StorageError, Exception) as exc:  # alembic raises driver errors as they come
        fail(f"cannot upgrade {settings.database_url}: {exc}")
    console.print(f"database at head: {settings.database_url} ({count} shipped latency tables registered)")


@bench_app.command("import")
def bench_import(csv_path: Annotated[Path, typer.Argument(help="CSV with an 'arch' column")],
                 name: Annotated[str, typer.Option(help="Name jobs refer to")],
                 space: Annotated[str, typer.Option(help="Search space of the architectures")] = "nb201",
                 database_url: DbUrl = None) -> None:
    """Register a benchmark table so `benchmark` evaluators can use it."""
    from nas.evaluators import BenchmarkError, read_benchmark_csv
    from search_spaces import get_space
    from storage import catalog as catalog_q
    from storage.db import session_scope
    from storage.migrate import upgrade

    try:
        data = read_benchmark_csv(csv_path, get_space(space), name)
    except (BenchmarkError, KeyError) as exc:
        fail(str(exc))
    settings = _settings(database_url)
    upgrade(settings.database_url)
    with session_scope(_factory(settings)) as s:
        catalog_q.replace_benchmark(s, name=name, space=space, columns=data.columns, rows=data.rows,
                                    source=str(csv_path))
    console.print(f"registered benchmark {name!r}: {len(data.rows)} architectures of {space}, "
                  f"columns {', '.join(data.columns)}")


@bench_app.command("list")
def bench_list(database_url: DbUrl = None) -> None:
    """List registered benchmark tables."""
    from storage import catalog as catalog_q
    from storage.db import session_scope

    with session_scope(_factory(_settings(database_url))) as s:
        rows = catalog_q.list_benchmarks(s)
        table = Table("name", "space", "rows", "columns", "source")
        for b in rows:
            table.add_row(b.name, b.space, str(b.row_count), ", ".join(b.columns), b.source)
    console.print(table)


if __name__ == "__main__":
    app()
