"""Settings from the environment (``HWNAS_*``). Defaults are the embedded mode:
a SQLite file and an in-process worker, no PostgreSQL or Redis needed."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HWNAS_", extra="ignore")

    database_url: str = "sqlite:///.hwnas/hwnas.db"
    #: Redis URL of the Celery broker; empty means jobs run in an in-process worker.
    broker_url: str = ""
    #: Celery queue jobs are sent to and workers consume.
    queue: str = Field(default="hwnas", min_length=1, max_length=100)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    #: A job's lease: a worker that has not heartbeaten for this long loses the job.
    lease_seconds: int = Field(default=60, ge=5, le=3600)
    #: Upper bound of one job's run; Celery's time limits derive from it.
    job_time_limit_s: int = Field(default=24 * 3600, ge=60)
    #: Threads of the in-process worker (embedded mode).
    embedded_workers: int = Field(default=1, ge=1, le=64)
    #: Whether jobs may use the command evaluator (it runs the submitted command on workers).
    allow_command_evaluator: bool = True
    #: Largest request body accepted (413 beyond).
    max_body_bytes: int = Field(default=1_000_000, ge=1_000)
    #: Per-tenant defaults; a tenant row may override each.
    max_concurrent_jobs: int = Field(default=20, ge=1)
    max_active_evaluations: int = Field(default=1_000_000, ge=1)
    rate_limit_per_minute: int = Field(default=12_000, ge=1)
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
            raise ValueError("HWNAS_BROKER_URL must be a redis:// URL (or empty for the embedded worker)")
        return url

    @property
    def embedded(self) -> bool:
        """SQLite-or-not, jobs run in the API process; single user, so no authentication."""
        return not self.broker_url


@lru_cache
def get_settings() -> Settings:
    return Settings()
