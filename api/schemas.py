"""Response models (``XPublic``); the request body of a job is nas.spec.JobSpec."""

from __future__ import annotations

import datetime as dt
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")
JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
TrialStatus = Literal["completed", "failed"]


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class Progress(BaseModel):
    evaluated: int
    failed: int
    budget: int
    fraction: float
    #: Inside a long step, what it last reported (differentiable search: sweep_point, epoch, latency_weight, ...)
    phase: dict[str, Any] | None = None


class JobPublic(BaseModel):
    id: str
    name: str
    status: JobStatus
    progress: Progress
    best: dict[str, Any] | None
    hypervolume: float | None
    reference_point: dict[str, float] | None
    error: str | None
    cancel_requested: bool
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    updated_at: dt.datetime
    spec: dict[str, Any]
    links: dict[str, str]


class TrialPublic(BaseModel):
    id: int
    seq: int
    arch: str
    arch_hash: str
    status: TrialStatus
    metrics: dict[str, float]
    error: str | None
    started_at: dt.datetime
    finished_at: dt.datetime
    duration_s: float


class ObjectivePublic(BaseModel):
    key: str
    metric: str
    device: str | None
    goal: str


class ParetoPublic(BaseModel):
    job_id: str
    status: JobStatus
    objectives: list[ObjectivePublic]
    constraints: list[dict[str, Any]]
    reference_point: dict[str, float]
    hypervolume: float
    trials: list[TrialPublic]
    #: Error bands of confidence limits: the trial metric keys of each band's lower and upper bound.
    bands: list[dict[str, Any]] = []
    #: Verifications on devices: status, and per verified trial predicted vs measured latency,
    #: whether it breaks a limit or leaves the front once measured.
    verifications: list[dict[str, Any]] = []


class SearchSpacePublic(BaseModel):
    name: str
    description: str
    size: int
    choices: list[list[str]]
    example: str
    #: sha256 of the canonical definition: what a job using the space pins at submit.
    content_hash: str
    #: "shipped" with hwnas, or "registered" by the caller's tenant (POST /v1/search-spaces).
    source: Literal["shipped", "registered"]


class SearchSpaceRegistered(BaseModel):
    name: str
    content_hash: str
    #: 1, 2, ... for each definition registered under the name; the highest is current.
    version: int
    size: int
    #: How many op signatures (latency table entries) the space has.
    signatures: int


class SearchSpaceVersion(BaseModel):
    version: int
    content_hash: str
    registered_at: dt.datetime


class SearchSpaceDetail(SearchSpacePublic):
    definition: dict[str, Any]
    #: Every op signature: the entries a device's latency table for this space must have.
    signatures: list[str]
    #: A registered space's definitions, oldest first (empty for shipped spaces).
    versions: list[SearchSpaceVersion]


class StrategyParamPublic(BaseModel):
    """One declared strategy param: its JSON type, default and bounds (absent when unbounded)."""

    name: str
    type: str
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    exclusive_maximum: float | None = None
    choices: list[Any] | None = None
    max_items: int | None = None
    description: str = ""


class StrategyPublic(BaseModel):
    name: str
    description: str
    #: What ``strategy.params`` may hold; anything else is a 422 naming ``strategy.params.X``.
    params: list[StrategyParamPublic] = []


class DevicePublic(BaseModel):
    name: str
    space: str
    kind: str
    device: dict[str, Any]
    entries: int
    provenance: dict[str, Any]
    validation: dict[str, Any]
    #: "shipped" (comes with hwnas), "yours" (the caller uploaded it) or "shared" (another tenant shared it)
    owner: Literal["shipped", "yours", "shared"] = "shipped"
    #: whether every tenant may see and use it
    shared: bool = True
    #: SHA-256 of the stored table: the version a job submitted now pins
    content_hash: str = ""
    #: The device's measurement agent: online, last_seen, runtime, environment (None: never seen).
    agent: dict[str, Any] | None = None


class OnboardRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    space: str = Field(min_length=1, max_length=50)
    #: Reference architectures the table is fitted from.
    samples: int = Field(default=20, ge=3, le=500)
    #: Further random architectures measured to validate it (held out).
    validate_: int = Field(default=30, ge=0, le=1000, alias="validate")
    seed: int = Field(default=0, ge=0, le=2**31 - 1)


class OperationPublic(BaseModel):
    id: str
    kind: str
    device: str
    space: str
    job_id: str | None
    params: dict[str, Any]
    status: str
    progress: dict[str, Any] | None
    result: dict[str, Any] | None
    error: str | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    links: dict[str, str]


class Health(BaseModel):
    """Up or down per component; version and mode only for a caller with a key (or embedded mode)."""

    status: Literal["ok", "down"]
    database: Literal["up", "down"]
    broker: Literal["up", "down", "embedded"]
    version: str | None = None
    mode: str | None = None
