"""Shared fixtures: real PostgreSQL and Redis, live server and worker processes.

Services come from HWNAS_TEST_DATABASE_URL / HWNAS_TEST_REDIS_URL (default: local
servers). Without them a test skips, except under CI, where it fails.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
PG_URL = os.environ.get("HWNAS_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("HWNAS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
ARTIFACTS = ROOT / "test-artifacts"
#: An interpreter a sandboxed command evaluator can run: the service runs commands as ``nobody``
#: when its worker is root, and this checkout's virtualenv may live where ``nobody`` cannot go.
EVAL_PYTHON = sys.executable if os.geteuid() != 0 else (
    next((p for p in ("/usr/bin/python3", "/usr/local/bin/python3") if os.path.exists(p)), sys.executable))
#: What a worker in these tests needs on top of the environment: the command evaluator enabled
#: (every test of a worker uses one; its default is off and tests/workers/test_command_sandbox.py
#: covers that).
WORKER_ENV = {"HWNAS_ALLOW_COMMAND_EVALUATOR": "true"}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failure pytest cannot draw still fails its test, instead of ending the whole run.

    On Python 3.11 an exception raised at an instruction that has no line (a signal handler,
    e.g. pytest-timeout's, firing there) leaves ``tb_lineno`` None, and pytest's report of it
    raises TypeError: an INTERNALERROR that stops the suite. Report such a failure by its
    frames and the exception (the standard library's formatter can fail on them too).
    """
    try:
        return (yield)
    except TypeError:
        if call.excinfo is None:
            raise
        lines, tb = [], call.excinfo.tb
        while tb is not None:
            code = tb.tb_frame.f_code
            lines.append(f"  {code.co_filename}:{tb.tb_lineno or '?'} in {code.co_name}")
            tb = tb.tb_next
        lines.append(f"{call.excinfo.typename}: {call.excinfo.value}")
        return pytest.TestReport(item.nodeid, item.location, {k: 1 for k in item.keywords}, "failed",
                                 "\n".join(lines), call.when or "call",
                                 duration=call.duration, start=call.start, stop=call.stop)


@pytest.fixture
def tmp_path(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """pytest's tmp_path, except when tests run as root: then a directory the sandboxed evaluator's
    user (``nobody``) can read, since evaluator scripts written there run as that user. (pytest's
    own tree is 0700 and shared by every pytest session of the user, which resets its mode.)"""
    if os.geteuid() != 0:
        import re

        yield tmp_path_factory.mktemp(re.sub(r"[\W]", "_", request.node.name)[:30], numbered=True)
        return
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="hwnas-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _unavailable(what: str, exc: Exception) -> None:
    message = f"{what} unreachable: {exc}"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set: tests that need it must not skip)")
    pytest.skip(message)


def _pg_admin_url() -> str:
    url = PG_URL
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


@pytest.fixture(scope="session")
def pg_server() -> str:
    url = _pg_admin_url()
    try:
        engine = create_engine(url)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # any driver error means: no server here
        _unavailable("PostgreSQL", exc)
    return url


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    name = f"hwnas_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(pg_server).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def migrated_pg_url(pg_url: str) -> str:
    from nas.service import register_shipped_tables
    from storage.db import make_engine, make_session_factory
    from storage.migrate import upgrade

    upgrade(pg_url)
    engine = make_engine(pg_url)
    register_shipped_tables(make_session_factory(engine))
    engine.dispose()
    return pg_url


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:
        _unavailable("Redis", exc)
    return REDIS_URL


@pytest.fixture(scope="session")
def nb201_csv() -> Path:
    path = SHARED_DATA / "nb201_hw.csv"
    if not path.is_file():
        pytest.fail(f"{path} is missing: the measured tables live in ../shared/data beside the checkout")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def hwnas_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "hwnas.cli.main", *args]


@dataclass
class Service:
    url: str
    env: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]]
    logs: dict[str, Path]
    api_key: str | None = None

    def log(self, name: str) -> str:
        return self.logs[name].read_text(errors="replace")[-4000:]


def create_api_key(env: dict[str, str], tenant: str) -> str:
    out = subprocess.run(hwnas_cmd("keys", "create", "--tenant", tenant), env=env, cwd=ROOT, check=True,
                         capture_output=True, text=True, timeout=120).stdout
    return out.strip().splitlines()[-1]


def start_process(name: str, args: list[str], env: dict[str, str], log_dir: Path) -> tuple[subprocess.Popen[bytes], Path]:
    log = log_dir / f"{name}.log"
    proc = subprocess.Popen(args, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=ROOT,
                            start_new_session=True)
    return proc, log


def wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> None:
    """Until /v1/health answers. Start-up takes seconds; the deadline is for a machine under load."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/v1/health", timeout=10).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server not healthy in {timeout}s:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """A test's service at teardown: SIGTERM, then SIGKILL after 5 s (a Celery worker's warm
    shutdown would finish the job in hand first; nothing after a test needs that job). The
    group is swept with SIGKILL even when the leader left in time: a pool child forked during
    the shutdown never saw the SIGTERM and would outlive the test, consuming the shared Redis."""
    if proc.poll() is None:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
    try:
        os.killpg(proc.pid, 9)
    except (ProcessLookupError, PermissionError):
        pass


@pytest.fixture
def celery_stack(migrated_pg_url: str, redis_url: str, tmp_path: Path) -> Iterator[Service]:
    """uvicorn + a Celery worker process on real PostgreSQL and Redis, on a queue of their own."""
    port = free_port()
    env = {**os.environ, "HWNAS_DATABASE_URL": migrated_pg_url, "HWNAS_BROKER_URL": redis_url,
           "HWNAS_QUEUE": f"hwnas-test-{uuid.uuid4().hex[:8]}", "HWNAS_PORT": str(port),
           "HWNAS_LEASE_SECONDS": "10", "PYTHONUNBUFFERED": "1", **WORKER_ENV}
    api, api_log = start_process("api", hwnas_cmd("serve"), env, tmp_path)
    worker, worker_log = start_process("worker", hwnas_cmd("worker"), env, tmp_path)
    service = Service(f"http://127.0.0.1:{port}", env, {"api": api, "worker": worker},
                      {"api": api_log, "worker": worker_log}, create_api_key(env, "test-tenant"))
    try:
        wait_healthy(service.url, api, api_log)
        yield service
    finally:
        for proc in service.processes.values():
            stop(proc)


@pytest.fixture
def embedded_server(tmp_path: Path) -> Iterator[Service]:
    port = free_port()
    env = {**os.environ, "HWNAS_DATABASE_URL": f"sqlite:///{tmp_path / 'hwnas.db'}", "HWNAS_BROKER_URL": "",
           "HWNAS_PORT": str(port), "PYTHONUNBUFFERED": "1", **WORKER_ENV}
    api, api_log = start_process("api", hwnas_cmd("serve", "--embedded"), env, tmp_path)
    service = Service(f"http://127.0.0.1:{port}", env, {"api": api}, {"api": api_log})
    try:
        wait_healthy(service.url, api, api_log)
        yield service
    finally:
        stop(api)


def _service_binary(path: str) -> str:
    import glob
    import shutil

    found = shutil.which(path) or next(iter(sorted(glob.glob(path))), None)
    if not found:
        _unavailable(path, FileNotFoundError(path))
    return str(found)


@dataclass
class PrivateRedis:
    """A Redis server of the test's own, so it can be flushed and restarted."""

    port: int
    binary: str
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis

        self.proc = subprocess.Popen([self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 60  # milliseconds when idle; bounded for a loaded machine
        while time.monotonic() < deadline:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("private redis did not start in 60s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis(free_port(), _service_binary("redis-server"))
    server.start()
    yield server
    server.stop()


@dataclass
class PrivatePostgres:
    """A PostgreSQL cluster of the test's own (initdb in a temp dir), so it can be restarted."""

    port: int
    data_dir: Path
    bin_dir: Path

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir),
                        "-w", "-t", "120", "-o", f"-p {self.port} -k /tmp -c listen_addresses=127.0.0.1", *args],
                       check=True, capture_output=True)

    def start(self) -> None:
        self._ctl("-l", str(self.data_dir / "log"), "start")

    def restart(self) -> None:
        self._ctl("-m", "fast", "-l", str(self.data_dir / "log"), "restart")

    def stop(self) -> None:
        self._ctl("-m", "immediate", "stop")


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    import shutil
    import tempfile

    bin_dir = Path(_service_binary("/usr/lib/postgresql/*/bin/initdb")).parent
    root = Path(tempfile.mkdtemp(prefix="hwnas-pg-"))  # outside pytest's 0700 tree: postgres must reach it
    root.chmod(0o777)
    data_dir = root / "data"
    subprocess.run(["runuser", "-u", "postgres", "--", str(bin_dir / "initdb"), "-D", str(data_dir), "-A", "trust",
                    "-U", "postgres"], check=True, capture_output=True)
    server = PrivatePostgres(free_port(), data_dir, bin_dir)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


class Stack:
    """uvicorn + any number of Celery worker processes on given PostgreSQL and Redis URLs."""

    def __init__(self, database_url: str, redis_url: str, log_dir: Path, lease_seconds: int = 5, **env: str):
        from nas.service import register_shipped_tables
        from storage.db import make_engine, make_session_factory
        from storage.migrate import upgrade

        upgrade(database_url)
        engine = make_engine(database_url)
        register_shipped_tables(make_session_factory(engine))
        engine.dispose()
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log_dir = log_dir
        self.env = {**os.environ, "HWNAS_DATABASE_URL": database_url, "HWNAS_BROKER_URL": redis_url,
                    "HWNAS_QUEUE": f"hwnas-test-{uuid.uuid4().hex[:8]}", "HWNAS_PORT": str(port),
                    "HWNAS_LEASE_SECONDS": str(lease_seconds), "PYTHONUNBUFFERED": "1", **WORKER_ENV, **env}
        self.api_key = create_api_key(self.env, "test-tenant")
        self.api, api_log = start_process("api", hwnas_cmd("serve"), self.env, log_dir)
        self.workers: list[subprocess.Popen[bytes]] = []
        wait_healthy(self.url, self.api, api_log)

    def start_worker(self, beat: bool = True, **env: str) -> subprocess.Popen[bytes]:
        """A worker process; ``env`` adds to its environment (e.g. a faked clock)."""
        name = f"worker{len(self.workers)}"
        args = hwnas_cmd("worker", *([] if beat else ["--no-beat"]))
        proc, _ = start_process(name, args, {**self.env, **env}, self.log_dir)
        self.workers.append(proc)
        return proc

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(self.log_dir.glob("*.log")))

    def close(self) -> None:
        for proc in [self.api, *self.workers]:
            stop(proc)


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    stacks: list[Stack] = []

    def make(database_url: str, redis_url: str, **kwargs: object) -> Stack:
        stack = Stack(database_url, redis_url, tmp_path, **kwargs)  # type: ignore[arg-type]
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.close()
