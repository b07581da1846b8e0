"""Settings from the environment (``HWNAS_*``).

Authentication is decided on its own: the API serves without keys only in embedded
mode, which must be asked for (``HWNAS_EMBEDDED=true`` or ``hwnas serve --embedded``)
and listens only on a loopback address. Everything else needs a key; leaving a URL
out never turns authentication off (``check_serving`` says what to set).
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class UnsafeSettings(ValueError):
    """A combination of settings the server refuses to start with; the message says what to set."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HWNAS_", extra="ignore")

    database_url: str = "sqlite:///.hwnas/hwnas.db"
    #: Redis URL of the Celery broker (authenticated mode needs it).
    broker_url: str = ""
    #: Single-user mode: SQLite, an in-process worker, one implicit tenant, no authentication.
    #: Only on a loopback address, and only when asked for.
    embedded: bool = False
    #: Celery queue jobs are sent to and workers consume.
    queue: str = Field(default="hwnas", min_length=1, max_length=100)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    #: A job's lease: a worker that has not heartbeaten for this long (database clock) loses the job.
    lease_seconds: int = Field(default=60, ge=5, le=3600)
    #: Upper bound of one job's run; Celery's time limits derive from it.
    job_time_limit_s: int = Field(default=24 * 3600, ge=60)
    #: A job whose worker died this many times in a row without recording progress fails,
    #: naming the candidates it was evaluating (a poison trial).
    max_job_attempts: int = Field(default=3, ge=1, le=100)
    #: A fan-out candidate whose evaluation lost its worker this many times fails as a trial.
    max_claim_attempts: int = Field(default=3, ge=1, le=100)
    #: Jobs one Celery worker process runs before it is replaced (bounds leaks; 1 = a fresh
    #: process per job, which costs the imports and table loads again every job).
    worker_max_tasks_per_child: int = Field(default=500, ge=1)
    #: Threads of the in-process worker (embedded mode).
    embedded_workers: int = Field(default=1, ge=1, le=64)
    #: Whether every tenant may use the command evaluator (it runs the submitted command on
    #: workers). Off by default; ``hwnas tenants set NAME --command-evaluator`` enables one tenant.
    allow_command_evaluator: bool = False
    #: Names of worker environment variables a command evaluator also sees (comma-separated);
    #: it always gets only HWNAS_ARCH, PATH and HOME besides these.
    command_env_allow: str = ""
    #: PATH of a command evaluator.
    command_path: str = "/usr/local/bin:/usr/bin:/bin"
    #: User a command evaluator runs as when the worker runs as root (never root itself).
    command_user: str = "nobody"
    #: Resource limits of a command evaluator's processes (each process: CPU seconds, address
    #: space, open files; processes of its user).
    command_cpu_seconds: int = Field(default=3600, ge=1)
    command_memory_mb: int = Field(default=8192, ge=64)
    command_open_files: int = Field(default=256, ge=16)
    command_max_processes: int = Field(default=512, ge=8)
    #: Of a command's stdout and stderr only the last this many KiB are kept each.
    command_output_kib: int = Field(default=64, ge=1, le=16 * 1024)
    #: Largest request body accepted (413 beyond).
    max_body_bytes: int = Field(default=1_000_000, ge=1_000)
    #: Per-tenant defaults; a tenant row may override each.
    max_concurrent_jobs: int = Field(default=20, ge=1)
    max_active_evaluations: int = Field(default=1_000_000, ge=1)
    rate_limit_per_minute: int = Field(default=12_000, ge=1)
    #: Latency tables one tenant may own (a tenant row may override it).
    max_device_tables: int = Field(default=20, ge=0, le=10_000)
    #: Lifetime of a dashboard login session (the cookie holds only the session's id).
    session_ttl_s: int = Field(default=12 * 3600, ge=60, le=30 * 86400)
    #: Requests with an unknown API key, and POST /login attempts, allowed per client address a minute.
    failed_auth_per_minute: int = Field(default=30, ge=1)
    login_attempts_per_minute: int = Field(default=10, ge=1)
    #: Model exports (ONNX/torch): processes that build them, per-tenant exports a minute,
    #: requests waiting at most (503 beyond), and the CPU seconds one build may use.
    export_workers: int = Field(default=1, ge=1, le=16)
    export_rate_per_minute: int = Field(default=30, ge=1)
    export_queue: int = Field(default=16, ge=1)
    export_timeout_s: int = Field(default=120, ge=5)
    #: Measurement agents: seconds between heartbeats, silence after which one counts as offline,
    #: how long a job or onboarding waits for an offline device's agent before it fails, and the
    #: longest one model's measurement may take (command runtime).
    agent_heartbeat_s: float = Field(default=5.0, gt=0, le=600)
    agent_offline_after_s: float = Field(default=20.0, gt=0, le=3600)
    agent_wait_timeout_s: float = Field(default=600.0, gt=0, le=7 * 86_400)
    measure_timeout_s: float = Field(default=300.0, gt=0, le=86_400)

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, url: str) -> str:
        if not url.startswith(("sqlite", "postgresql")):
            raise ValueError("HWNAS_DATABASE_URL must be a sqlite:// or postgresql:// URL")
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
        return url

    @field_validator("broker_url")
    @classmethod
    def _supported_broker(cls, url: str) -> str:
        if url and not url.startswith(("redis://", "rediss://")):
            raise ValueError("HWNAS_BROKER_URL must be a redis:// URL")
        return url

    @property
    def command_env_names(self) -> list[str]:
        return [n.strip() for n in self.command_env_allow.split(",") if n.strip()]

    def check_serving(self) -> None:
        """Refuse to serve with an unsafe or incomplete combination (raises UnsafeSettings)."""
        if self.embedded:
            if not is_loopback(self.host):
                raise UnsafeSettings(
                    f"embedded mode serves without authentication and listens only on a loopback address, "
                    f"not {self.host!r}: set HWNAS_HOST=127.0.0.1 (--host 127.0.0.1), or serve authenticated "
                    f"with HWNAS_EMBEDDED=false, HWNAS_BROKER_URL=redis://… and a PostgreSQL HWNAS_DATABASE_URL")
            return
        if not self.broker_url:
            raise UnsafeSettings(
                "the authenticated server needs HWNAS_BROKER_URL (redis://…) for its Celery workers; "
                "for a single-user server without keys on this machine set HWNAS_EMBEDDED=true "
                "(or run `hwnas serve --embedded`)")


@lru_cache
def get_settings() -> Settings:
    return Settings()
