"""The ``hwnas`` command line."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from hwnas.cli import remote
from hwnas.cli.bench import bench
from hwnas.cli.demo import demo
from hwnas.cli.devices import agent
from hwnas.cli.devices import app as devices_app
from hwnas.cli.export import export
from hwnas.cli.render import console, fail
from search_spaces import DEFAULT_SPACE
from hwnas.cli.search import search
from hwnas.cli.spaces import app as spaces_app
from hwnas.cli.tables import app as tables_app
from hwnas_settings import Settings

app = typer.Typer(help="Hardware-aware neural architecture search.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmark tables (accuracy lookups).", no_args_is_help=True)
keys_app = typer.Typer(help="API keys (each names a tenant).", no_args_is_help=True)
tenants_app = typer.Typer(help="Tenants and what the operator lets them do.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(bench_app, name="benchmarks")
app.add_typer(keys_app, name="keys")
app.add_typer(tenants_app, name="tenants")
app.add_typer(tables_app, name="tables")
app.add_typer(spaces_app, name="spaces")
app.add_typer(devices_app, name="devices")
app.command()(agent)
app.command()(search)
app.command()(demo)
app.command()(bench)
app.command()(export)
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
def serve(embedded: Annotated[bool, typer.Option(
              help="Single-user mode on a loopback address: in-process worker, no authentication "
                   "(also HWNAS_EMBEDDED=true)")] = False,
          host: Annotated[str | None, typer.Option(help="Bind address")] = None,
          port: Annotated[int | None, typer.Option(help="Port")] = None,
          workers: Annotated[int, typer.Option(help="HTTP worker processes (not with --embedded)")] = 1,
          database_url: DbUrl = None) -> None:
    """Run the HTTP API (and, with --embedded, the worker in the same process)."""
    import uvicorn

    from api.app import create_app

    from hwnas_settings import UnsafeSettings

    settings = _settings(database_url, host=host, port=port, **({"embedded": True} if embedded else {}))
    try:
        settings.check_serving()
    except UnsafeSettings as exc:
        fail(f"refusing to start: {exc}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    console.print(f"hwnas API on http://{settings.host}:{settings.port}  (docs at /docs, "
                  f"{'embedded worker, no auth' if settings.embedded else 'Celery at ' + settings.broker_url})")
    if workers > 1:
        if settings.embedded:
            fail("--workers needs the Celery mode: the embedded worker lives in one process")
        os.environ["HWNAS_DATABASE_URL"] = settings.database_url  # the worker processes read the environment
        os.environ["HWNAS_HOST"] = settings.host
        uvicorn.run("api.app:create_app", factory=True, host=settings.host, port=settings.port, workers=workers,
                    log_level="warning")
    else:
        uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="warning")


@app.command()
def worker(concurrency: Annotated[int, typer.Option(help="Jobs run at once (processes)")] = 1,
           beat: Annotated[bool, typer.Option(help="Also run the reaper schedule in this worker")] = True) -> None:
    """Run a Celery worker (needs HWNAS_BROKER_URL and HWNAS_DATABASE_URL)."""
    settings = _settings()
    if settings.embedded or not settings.broker_url:
        fail("a worker needs HWNAS_BROKER_URL and HWNAS_EMBEDDED unset", "export HWNAS_BROKER_URL=redis://127.0.0.1:6379/0, "
             "or run `hwnas serve --embedded` which needs no worker")
    from nas.evaluators.command import protect_this_process
    from workers.celery_app import app as celery_app

    if os.geteuid() != 0:  # commands then run as this user: keep them out of its memory and environment
        protect_this_process()
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
                 space: Annotated[str, typer.Option(
                     help="Search space of the architectures: a shipped name or a definition file")] = DEFAULT_SPACE,
                 database_url: DbUrl = None) -> None:
    """Register a benchmark table so `benchmark` evaluators can use it."""
    from hwnas.cli.render import fail_definition
    from nas.evaluators import BenchmarkError, read_benchmark_csv
    from search_spaces import SpaceDefinitionError, resolve_space
    from storage import catalog as catalog_q
    from storage.db import session_scope
    from storage.migrate import upgrade

    try:
        found = resolve_space(space)  # a shipped name, or a definition file (a space registered on a server)
        space = found.name
        data = read_benchmark_csv(csv_path, found, name)
    except SpaceDefinitionError as exc:
        fail_definition(exc)
    except KeyError as exc:
        fail(str(exc.args[0]))
    except BenchmarkError as exc:
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

    with _storage_errors(), session_scope(_factory(_settings(database_url))) as s:
        rows = catalog_q.list_benchmarks(s)
        table = Table("name", "space", "rows", "columns", "source")
        for b in rows:
            table.add_row(b.name, b.space, str(b.row_count), ", ".join(b.columns), b.source)
    console.print(table)


@keys_app.command("create")
def keys_create(tenant: Annotated[str, typer.Option(help="Tenant the key acts for (created if new)")],
                name: Annotated[str, typer.Option(help="A label for the key")] = "",
                database_url: DbUrl = None) -> None:
    """Create an API key; it is printed once and stored only as a hash."""
    from storage import tenants as tenants_q
    from storage.db import session_scope

    if not tenant.strip() or len(tenant) > 100:
        fail("--tenant must be 1 to 100 characters")
    with _storage_errors(), session_scope(_factory(_settings(database_url))) as s:
        created = tenants_q.create_key(s, tenant.strip(), name)
    console.print(f"key {created.id} for tenant {created.tenant!r} (store it now, it is not shown again):")
    print(created.key)


@keys_app.command("list")
def keys_list(database_url: DbUrl = None) -> None:
    """List API keys (prefixes only)."""
    from storage import tenants as tenants_q
    from storage.db import session_scope

    table = Table("id", "tenant", "name", "prefix", "created", "revoked")
    with _storage_errors(), session_scope(_factory(_settings(database_url))) as s:
        for key, tenant_name in tenants_q.list_keys(s):
            table.add_row(str(key.id), tenant_name, key.name, key.prefix + "…", f"{key.created_at:%Y-%m-%d %H:%M}",
                          f"{key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "")
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[int, typer.Argument(help="Key id from `hwnas keys list`")],
                database_url: DbUrl = None) -> None:
    """Revoke an API key (it stops working within seconds)."""
    from storage import tenants as tenants_q
    from storage.db import session_scope

    with _storage_errors(), session_scope(_factory(_settings(database_url))) as s:
        revoked = tenants_q.revoke_key(s, key_id)
    if not revoked:
        fail(f"no active key {key_id}", "see `hwnas keys list`")
    console.print(f"revoked key {key_id}")


@tenants_app.command("set")
def tenants_set(tenant: Annotated[str, typer.Argument(help="Tenant name (created if new)")],
                command_evaluator: Annotated[bool | None, typer.Option(
                    "--command-evaluator/--no-command-evaluator",
                    help="Let this tenant's jobs run their own commands on the workers (sandboxed; see README)")] = None,
                database_url: DbUrl = None) -> None:
    """Change what a tenant may do."""
    from storage import tenants as tenants_q
    from storage.db import session_scope

    if command_evaluator is None:
        fail("nothing to set", "pass --command-evaluator or --no-command-evaluator")
    if not tenant.strip() or len(tenant) > 100:
        fail("the tenant name must be 1 to 100 characters")
    with _storage_errors(), session_scope(_factory(_settings(database_url))) as s:
        row = tenants_q.set_command_evaluator(s, tenant.strip(), command_evaluator)
        name = row.name
    console.print(f"tenant {name!r}: command evaluator {'enabled' if command_evaluator else 'disabled'}")


@tenants_app.command("list")
def tenants_list(database_url: DbUrl = None) -> None:
    """List tenants with their quotas and permissions."""
    from storage import tenants as tenants_q
    from storage.db import session_scope

    table = Table("tenant", "command evaluator", "max jobs", "max evaluations", "requests/min")
    with _storage_errors(), session_scope(_factory(_settings(database_url))) as s:
        for t in tenants_q.list_tenants(s):
            table.add_row(t.name, "yes" if t.allow_command_evaluator else "no", str(t.max_concurrent_jobs or "default"),
                          str(t.max_active_evaluations or "default"), str(t.rate_limit_per_minute or "default"))
    console.print(table)


@contextmanager
def _storage_errors() -> Iterator[None]:
    from sqlalchemy.exc import SQLAlchemyError

    from storage.db import StorageError

    try:
        yield
    except (StorageError, SQLAlchemyError) as exc:
        fail(f"database error: {str(exc).splitlines()[0]}", "is the database up, and migrated (`hwnas db upgrade`)?")


if __name__ == "__main__":
    app()
