"""The job spec users submit (``POST /v1/jobs`` body, ``hwnas search --spec`` file)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from nas.registry import STRATEGIES
from search_spaces import DEFAULT_SPACE, SPACES
from search_spaces.definition import NAME_PATTERN
from search_spaces.metrics import STATIC_METRICS

#: Metrics an objective or constraint may name, and who provides them.
METRICS: dict[str, str] = {
    "accuracy": "evaluator",
    "latency_ms": "latency table of a device",
    "energy_mj": "energy entries of a device's table",
    **{name: f"space definition: {what}" for name, what in STATIC_METRICS.items()},
}
PER_DEVICE_METRICS = {"latency_ms", "energy_mj"}
#: What an agent's runtime can report (``"source": "measured"``, verification).
MEASURABLE_METRICS = ("latency_ms", "energy_mj", "peak_memory_kb")
#: Metric names an evaluator may declare (``"evaluator": {..., "metrics": [...]}``).
METRIC_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
#: ``"constraints": "device"`` (alone or as a list item): the target device's declared budgets.
DEVICE_LIMITS = "device"
MAX_BUDGET = 1_000_000


#: What a device may be called (a table's ``device.name``, an agent's queue, a URL path segment).
DEVICE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$"


def metric_key(metric: str, device: str | None, source: str = "table") -> str:
    """How a metric is named in trial metrics: ``latency_ms@pixel3`` for per-device metrics,
    ``measured_latency_ms@pixel3`` for what the device's agent measured."""
    if source == "measured":
        return f"measured_{metric}@{device}"
    return f"{metric}@{device}" if device else metric


def band_key(key: str, level: float) -> str:
    """The trial metric holding ``key``'s error-band bound at quantile ``level`` (``latency_ms@d:q0.95``)."""
    return f"{key}:q{level:g}"


class _Strict(BaseModel):
    #: NaN and Infinity (which Python's JSON parser accepts) are refused in every float field
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        """PostgreSQL stores no NUL character in text or JSON: refuse it here, naming the field."""
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value


def one_of(value: str, valid: Iterable[str], what: str) -> str:
    """``value`` if it is a valid name, else an error that lists the valid ones."""
    names = sorted(valid)
    if value not in names:
        raise ValueError(f"unknown {what} {value!r}; valid: {', '.join(names)}")
    return value


def _examples_of(names: Callable[[], Iterable[str]]) -> Callable[[dict[str, Any]], None]:
    """Document example values (the shipped spaces; tenants register more) in the JSON schema."""

    def extra(schema: dict[str, Any]) -> None:
        schema["examples"] = sorted(names())

    return extra


def _enum_of(names: Callable[[], Iterable[str]]) -> Callable[[dict[str, Any]], None]:
    """Document the valid names in the JSON schema, read from the registry when the schema is built."""

    def extra(schema: dict[str, Any]) -> None:
        schema["enum"] = sorted(names())

    return extra


def _field_error(loc: tuple[str | int, ...], value: Any, message: str) -> None:
    """Raise a validation error located at ``loc`` (a model validator's own errors have no field)."""
    from pydantic import ValidationError
    from pydantic_core import InitErrorDetails, PydanticCustomError

    raise ValidationError.from_exception_data("JobSpec", [InitErrorDetails(
        type=PydanticCustomError("value_error", "{message}", {"message": message}), loc=loc, input=value)])


class StrategySpec(_Strict):
    #: ``default`` (GP + exact table latency) when omitted: the strategy the docs recommend.
    name: str = Field(default="default", json_schema_extra=_enum_of(STRATEGIES.names))
    #: Checked against the strategy's declared ``Params`` (names, ranges) when the job is submitted.
    params: dict[str, Any] = Field(default_factory=dict, max_length=64)

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        return one_of(name, STRATEGIES, "strategy")


class BudgetSpec(_Strict):
    evaluations: int = Field(ge=1, le=MAX_BUDGET)


class _MetricRef(_Strict):
    #: A built-in metric (``METRICS``) or one the evaluator declares (checked by JobSpec).
    metric: str = Field(pattern=METRIC_NAME, json_schema_extra={"examples": sorted(METRICS)})
    device: str | None = Field(default=None, pattern=DEVICE_NAME)
    #: ``table`` (predicted from the device's latency table) or ``measured`` (every candidate on its agent).
    source: Literal["table", "measured"] = "table"

    @model_validator(mode="after")
    def _device_when_needed(self) -> _MetricRef:
        if self.source == "measured":
            if self.metric not in MEASURABLE_METRICS:
                raise ValueError(f"metric {self.metric!r} cannot be measured by an agent; "
                                 f"valid: {', '.join(MEASURABLE_METRICS)}")
            if not self.device:
                raise ValueError("a measured metric needs a device (whose agent measures it)")
            return self
        if self.metric in PER_DEVICE_METRICS and not self.device:
            raise ValueError(f"metric {self.metric!r} needs a device")
        if self.metric not in PER_DEVICE_METRICS and self.device:
            raise ValueError(f"metric {self.metric!r} takes no device")
        return self

    @property
    def key(self) -> str:
        return metric_key(self.metric, self.device, self.source)


class ObjectiveSpec(_MetricRef):
    goal: Literal["maximize", "minimize"]


class ConstraintSpec(_MetricRef):
    max: float | None = None
    min: float | None = None
    #: Table latency only: feasible only if the bound holds at this confidence, using the table's
    #: error band (predicted x residual_ratio_quantile(confidence) <= max).
    confidence: float | None = Field(default=None, ge=0.5, lt=1.0)

    @model_validator(mode="after")
    def _has_bound(self) -> ConstraintSpec:
        if self.max is None and self.min is None:
            raise ValueError("a constraint needs 'max' or 'min'")
        if self.confidence is not None and (self.metric != "latency_ms" or self.source != "table"):
            raise ValueError("confidence applies to table latency (metric latency_ms with a device's table)")
        if self.confidence is not None and self.max is not None and self.min is not None:
            raise ValueError("a constraint with confidence takes 'max' or 'min', not both")
        return self

    @property
    def check_key(self) -> str:
        """The trial metric the bound is checked on: the band's upper (max) or lower (min) bound
        at ``confidence``, else the metric itself."""
        if self.confidence is None:
            return self.key
        return band_key(self.key, self.confidence if self.max is not None else round(1 - self.confidence, 6))

    def satisfied(self, value: float) -> bool:
        return (self.max is None or value <= self.max) and (self.min is None or value >= self.min)


class VerifySpec(_Strict):
    """After the search, measure the front's best ``top_k`` (by the first objective) on the device's agent."""

    device: str = Field(pattern=DEVICE_NAME)
    top_k: int = Field(default=5, ge=1, le=100)


class BenchmarkEvaluatorSpec(_Strict):
    type: Literal["benchmark"]
    table: str = Field(min_length=1, max_length=100)
    metric: str = Field(min_length=1, max_length=100)


class CommandEvaluatorSpec(_Strict):
    type: Literal["command"]
    #: An argument list (split like a shell would, but run without one); ``{arch}`` is one argument.
    command: str = Field(min_length=1, max_length=4000)
    timeout_s: float = Field(default=600.0, gt=0, le=86_400)
    retries: int = Field(default=0, ge=0, le=10)
    #: Metrics the command reports beside accuracy: each may be an objective or a constraint.
    metrics: list[Annotated[str, Field(pattern=METRIC_NAME)]] = Field(default_factory=list, max_length=32)

    @field_validator("command")
    @classmethod
    def _argument_list(cls, command: str) -> str:
        import shlex

        try:
            if not shlex.split(command):
                raise ValueError("the command has no program to run")
        except ValueError as exc:
            raise ValueError(f"not a valid argument list: {exc}") from None
        return command


class TrainEvaluatorSpec(_Strict):
    """Short real training; ``dataset`` is ``digits`` (scikit-learn's, built in) or an .npz path."""

    type: Literal["train"]
    dataset: str = Field(default="digits", max_length=1000)
    epochs: int = Field(default=3, ge=1, le=200)
    width: int = Field(default=8, ge=1, le=128)
    cells_per_stage: int = Field(default=1, ge=1, le=5)
    batch_size: int = Field(default=64, ge=1, le=4096)
    learning_rate: float = Field(default=0.05, gt=0, le=10)
    resolution: int | None = Field(default=None, ge=4, le=512, description=(
        "resize the images to this many pixels square (bilinear): the space's input resolution to "
        "score as deployed, smaller to score cheaply; default: the dataset's images as they are"))


class ProxyEvaluatorSpec(_Strict):
    """Zero-cost proxy on one minibatch; ``dataset`` is ``digits`` or an .npz path. The score is the accuracy."""

    type: Literal["proxy"]
    proxy: Literal["synflow", "naswot", "jacob_cov", "snip", "grad_norm"] = "naswot"
    dataset: str = Field(default="digits", max_length=1000)
    batch_size: int = Field(default=64, ge=2, le=1024)
    width: int = Field(default=16, ge=1, le=128)
    cells_per_stage: int = Field(default=5, ge=1, le=5)
    resolution: int | None = Field(default=None, ge=4, le=512, description=(
        "resize the images to this many pixels square (bilinear): the space's input resolution to "
        "score as deployed, smaller to score cheaply; default: the dataset's images as they are"))


EvaluatorSpec = Annotated[BenchmarkEvaluatorSpec | CommandEvaluatorSpec | TrainEvaluatorSpec | ProxyEvaluatorSpec,
                          Field(discriminator="type")]


EXAMPLE_SPEC: dict[str, Any] = {
    "name": "pixel3 under 10 ms", "space": DEFAULT_SPACE, "strategy": {"name": "evolution", "params": {}},
    "budget": {"evaluations": 20}, "seed": 0,
    "objectives": [{"metric": "accuracy", "goal": "maximize"},
                   {"metric": "latency_ms", "device": "pixel3", "goal": "minimize"}],
    "constraints": [{"metric": "latency_ms", "device": "pixel3", "max": 10.0}],
    "evaluator": {"type": "benchmark", "table": DEFAULT_SPACE, "metric": "cifar10_acc"},
}


_TINY = {"space": DEFAULT_SPACE, "budget": {"evaluations": 20}, "seed": 0,
         "evaluator": {"type": "benchmark", "table": DEFAULT_SPACE, "metric": "cifar10_acc"}}
#: Every form of spec the server accepts, for the OpenAPI document (POST /v1/jobs examples).
SPEC_EXAMPLES: dict[str, dict[str, Any]] = {
    "benchmark": {"summary": "Accuracy from a benchmark table vs pixel3 latency under 10 ms", "value": EXAMPLE_SPEC},
    "device_limits_shorthand": {
        "summary": "\"constraints\": \"device\": the target device's budgets (SRAM, flash) as constraints",
        "value": {**_TINY, "name": "fits a Cortex-M7", "device": "cortex_m7", "constraints": "device",
                  "objectives": [{"metric": "accuracy", "goal": "maximize"},
                                 {"metric": "peak_memory_kb", "goal": "minimize"}]}},
    "device_limits_item": {
        "summary": "\"device\" as a list item, beside explicit constraints",
        "value": {**_TINY, "device": "cortex_m7", "constraints": ["device", {"metric": "params", "max": 500000}],
                  "objectives": [{"metric": "accuracy", "goal": "maximize"},
                                 {"metric": "latency_ms", "device": "cortex_m7", "goal": "minimize"}]}},
    "device_limits_flag": {
        "summary": "The same budgets with \"device_limits\": true",
        "value": {**_TINY, "device": "cortex_m7", "device_limits": True,
                  "objectives": [{"metric": "accuracy", "goal": "maximize"},
                                 {"metric": "peak_memory_kb", "goal": "minimize"}]}},
    "command": {"summary": "Your own evaluator command, two devices",
                "value": {**_TINY, "strategy": {"name": "nsga2", "params": {}}, "batch_size": 4, "parallelism": 2,
                          "objectives": [{"metric": "accuracy", "goal": "maximize"},
                                         {"metric": "latency_ms", "device": "pixel3", "goal": "minimize"},
                                         {"metric": "latency_ms", "device": "raspi4", "goal": "minimize"}],
                          "evaluator": {"type": "command", "command": "python3 eval.py {arch}", "timeout_s": 600}}},
    "train": {"summary": "Short real training on digits",
              "value": {**_TINY, "objectives": [{"metric": "accuracy", "goal": "maximize"},
                                                {"metric": "macs", "goal": "minimize"}],
                        "evaluator": {"type": "train", "dataset": "digits", "epochs": 3}}},
    "proxy": {"summary": "A zero-cost proxy score (named naswot, not accuracy, on the dashboard)",
              "value": {**_TINY, "keep_degenerate": False,
                        "objectives": [{"metric": "accuracy", "goal": "maximize"},
                                       {"metric": "latency_ms", "device": "pixel3", "goal": "minimize"}],
                        "evaluator": {"type": "proxy", "proxy": "naswot", "dataset": "digits"}}},
}


class JobSpec(_Strict):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False,
                              json_schema_extra={"examples": [EXAMPLE_SPEC]})

    name: str = Field(default="", max_length=200)
    #: A shipped space (``GET /v1/search-spaces``) or one the tenant registered
    #: (``POST /v1/search-spaces``); checked against the catalog when the job is submitted.
    space: str = Field(pattern=NAME_PATTERN.pattern, json_schema_extra=_examples_of(lambda: SPACES))
    #: The content hash of the space's definition, pinned at submit (given here, it must match one
    #: registered under ``space``): the job runs on exactly that definition, whatever is registered later.
    space_hash: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    strategy: StrategySpec = Field(default_factory=StrategySpec)
    budget: BudgetSpec
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    objectives: list[ObjectiveSpec] = Field(min_length=1, max_length=16)
    #: Also accepts "device" (alone, or as an item): the target device's budgets, see ``device_limits``.
    constraints: list[ConstraintSpec] = Field(default_factory=list, max_length=32)
    #: The board the job targets (its ``device.limits``); default: the one device the objectives name.
    device: str | None = Field(default=None, pattern=DEVICE_NAME)
    #: Apply the target device's declared budgets (SRAM, flash, latency) as constraints.
    device_limits: bool = Field(default=False, description=(
        "Apply the target device's declared budgets (its table's device.limits: SRAM, flash, latency) as "
        "constraints; `\"constraints\": \"device\"` (alone or as a list item) sets it too."))
    evaluator: EvaluatorSpec
    #: Let strategies propose degenerate architectures (``SearchSpace.is_degenerate``: e.g. an nb201
    #: cell whose output no real op reaches); by default they are skipped.
    keep_degenerate: bool = Field(default=False, description=(
        "Let strategies propose degenerate architectures (e.g. an nb201 cell whose output no real op "
        "reaches); by default they are skipped."))
    #: Hypervolume reference per objective key; defaults are documented in nas.pareto.
    reference_point: dict[str, float] | None = None
    batch_size: int = Field(default=1, ge=1, le=1024)
    #: Workers evaluating one batch at once (1: the job's own worker only); see nas/fanout.py.
    parallelism: int = Field(default=1, ge=1, le=256)
    #: With parallelism > 1: ``async`` (default) hands the next candidate to whichever worker is
    #: free, the strategy asking for one more as each result lands (no batch barrier; the order of
    #: trials depends on which finished first); ``sync`` evaluates ``batch_size`` candidates, waits
    #: for all of them and tells the strategy in seq order: bit-identical replays, at the cost of
    #: waiting for the slowest candidate of every batch.
    schedule: Literal["async", "sync"] = "async"
    #: The job fails once this many trials failed; default min(budget, max(10, budget // 2)).
    #: A job whose every trial failed fails whatever this says.
    max_failed_trials: int | None = Field(default=None, ge=1, le=MAX_BUDGET)
    #: Wall-clock limit from the job's first start; it then ends failed, its trials kept.
    time_limit_s: float | None = Field(default=None, gt=0, le=30 * 86_400)
    #: After the search: measure the front's best k on a device's agent (see docs/devices.md).
    verify: VerifySpec | None = None

    @property
    def failure_limit(self) -> int:
        budget = self.budget.evaluations
        return self.max_failed_trials or min(budget, max(10, budget // 2))

    @model_validator(mode="before")
    @classmethod
    def _device_constraints(cls, data: Any) -> Any:
        """``"constraints": "device"`` or a ``"device"`` item -> ``device_limits``."""
        if isinstance(data, dict):
            given = data.get("constraints")
            if given == DEVICE_LIMITS or (isinstance(given, list) and DEVICE_LIMITS in given):
                rest = [] if given == DEVICE_LIMITS else [c for c in given if c != DEVICE_LIMITS]
                data = {**data, "constraints": rest, "device_limits": True}
        return data

    @property
    def declared_metrics(self) -> list[str]:
        """Metrics the evaluator declares beside the built-in ones."""
        return list(getattr(self.evaluator, "metrics", []) or [])

    @model_validator(mode="after")
    def _known_metrics(self) -> JobSpec:
        """Every objective and constraint names a built-in metric or one the evaluator declares
        (the error names the field, ``objectives[1].metric``, and lists both)."""
        declared = self.declared_metrics
        valid = sorted({*METRICS, *declared})
        for where, refs in (("objectives", self.objectives), ("constraints", self.constraints)):
            for i, ref in enumerate(refs):
                if ref.metric not in valid:
                    _field_error((where, i, "metric"), ref.metric,
                                 f"unknown metric {ref.metric!r}; valid: {', '.join(valid)} (declared by the "
                                 f"evaluator: {', '.join(declared) or 'none'}; a command evaluator declares more "
                                 "with \"metrics\": [...])")
                if ref.metric in declared and ref.metric not in METRICS and ref.device:
                    _field_error((where, i, "device"), ref.device, f"evaluator metric {ref.metric!r} takes no device")
        return self

    @model_validator(mode="after")
    def _distinct_objectives(self) -> JobSpec:
        keys = [o.key for o in self.objectives]
        if len(set(keys)) != len(keys):
            raise ValueError("objectives must be distinct")
        if self.reference_point is not None:
            unknown = set(self.reference_point) - set(keys)
            if unknown:
                raise ValueError(f"reference_point names {sorted(unknown)}, not objectives {keys}")
        return self

    @property
    def explicit_constraints(self) -> list[ConstraintSpec]:
        """The constraints written out in the spec (without the device's budgets)."""
        return self.constraints

    def devices(self) -> list[str]:
        """Devices whose latency tables the job predicts with (measured-only ones need none)."""
        refs: list[_MetricRef] = [*self.objectives, *self.explicit_constraints]
        return sorted({r.device for r in refs if r.device and r.source == "table"})

    def measured_refs(self) -> list[_MetricRef]:
        """Objectives and constraints every candidate is measured for on a device's agent."""
        return [r for r in [*self.objectives, *self.explicit_constraints] if r.source == "measured"]
