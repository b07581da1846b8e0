"""Strategies ``darts`` and ``fbnet``: a sweep of differentiable supernet searches as ask/tell.

``ask`` runs the supernet search of the next latency weight of the sweep (epochs of bilevel
training, see ``nas.differentiable.trainer``) and returns its derived architecture(s); the
engine evaluates them with the job's evaluator and records them as trials, so the job's
front is built from real evaluations. Budget = number of derived architectures
(``len(latency_weights) * archs_per_weight`` at most).

After every epoch the strategy hands its state (α, supernet weights, optimiser state, sweep
position) to ``checkpoint_hook``, which the engine points at the job's checkpoint and
progress; a replacement worker resumes from the last epoch.

The derived architecture is the argmax of α per position. When it was asked before (two
weights may agree) or breaks a job constraint, the next most probable architecture under
softmax(α) that is new and feasible is taken instead.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from pydantic import Field, field_validator

from nas.catalog import SpecError
from nas.problem import Problem
from nas.registry import STRATEGIES
from nas.strategies.base import Strategy, StrategyParams

if TYPE_CHECKING:
    from nas.differentiable.trainer import SupernetSearch
    from nas.spec import JobSpec

TORCH_DEVICES = ("cpu", "cuda")
#: Architectures up to this many are ranked exactly by probability; larger spaces search near the argmax.
EXACT_RANKING_LIMIT = 100_000
log = logging.getLogger("hwnas.differentiable")


class DifferentiableStrategy(Strategy):
    differentiable: ClassVar[bool] = True
    default_relaxation: ClassVar[str]
    default_loss: ClassVar[str]
    default_weights: ClassVar[tuple[float, ...]]
    default_temperature: ClassVar[float] = 1.0
    default_temperature_decay: ClassVar[float] = 1.0

    class Params(StrategyParams):
        """Bounds on one job's supernet training (defaults: see the constructor; None = the strategy's)."""

        latency_weights: list[float] | None = Field(None, min_length=1, max_length=32,
                                                    description="one supernet search per weight (each >= 0)")
        epochs: int = Field(8, ge=1, le=200)
        warmup_epochs: int = Field(2, ge=0, le=200)
        batch_size: int = Field(64, ge=1, le=1024)
        weight_lr: float = Field(0.05, gt=0, le=10)
        alpha_lr: float = Field(0.03, gt=0, le=10)
        relaxation: Literal["softmax", "gumbel"] | None = None
        temperature: float | None = Field(None, gt=0, le=1000)
        temperature_decay: float | None = Field(None, gt=0, le=1)
        hard_sampling: bool = False
        loss: Literal["linear", "multiplicative"] | None = None
        loss_scale: float = Field(0.2, gt=0, le=1000)
        device: str | None = Field(None, min_length=1, max_length=100)
        hard_limit: bool = False
        latency_limit_ms: float | None = Field(None, gt=0, le=1e6)
        penalty_growth: float = Field(2.0, ge=1, le=100)
        dataset: str | None = Field(None, max_length=1000)
        width: int = Field(8, ge=1, le=64)
        cells_per_stage: int = Field(1, ge=1, le=5)
        width_multiplier: float = Field(0.25, gt=0, le=1)
        archs_per_weight: int = Field(1, ge=1, le=16)
        torch_device: str = Field("cpu", pattern=r"^(cpu|cuda(:[0-9]{1,2})?)$")

        @field_validator("latency_weights")
        @classmethod
        def _bounded(cls, weights: list[float] | None) -> list[float] | None:
            if weights and any(not 0 <= w <= 1e6 for w in weights):
                raise ValueError("each latency weight must be within [0, 1e6]")
            return weights

    def __init__(self, problem: Problem, seed: int = 0, *, latency_weights: list[float] | None = None,
                 epochs: int = 8, warmup_epochs: int = 2, batch_size: int = 64, weight_lr: float = 0.05,
                 alpha_lr: float = 0.03, relaxation: str | None = None, temperature: float | None = None,
                 temperature_decay: float | None = None, hard_sampling: bool = False, loss: str | None = None,
                 loss_scale: float = 0.2, device: str | None = None, hard_limit: bool = False,
                 latency_limit_ms: float | None = None, penalty_growth: float = 2.0, dataset: str | None = None,
                 width: int = 8, cells_per_stage: int = 1, width_multiplier: float = 0.25,
                 archs_per_weight: int = 1, torch_device: str = "cpu"):
        super().__init__(problem, seed)
        from nas.differentiable.latency_loss import PENALTY_MODES, LatencyPenalty
        from nas.differentiable.relaxation import Relaxation
        from nas.differentiable.trainer import SearchConfig

        weights = list(self.default_weights if latency_weights is None else latency_weights)
        if not weights or any(not isinstance(w, (int, float)) or w < 0 for w in weights):
            raise ValueError("latency_weights must be a non-empty list of numbers >= 0")
        self.latency_weights = [float(w) for w in weights]
        loss = loss or self.default_loss
        if loss not in PENALTY_MODES:
            raise ValueError(f"loss must be one of {', '.join(PENALTY_MODES)}, got {loss!r}")
        if archs_per_weight < 1 or width < 1 or cells_per_stage < 1 or not 0 < width_multiplier <= 1:
            raise ValueError("need archs_per_weight, width, cells_per_stage >= 1 and 0 < width_multiplier <= 1")
        if torch_device.split(":")[0] not in TORCH_DEVICES:
            raise ValueError(f"torch_device must be 'cpu' or 'cuda' (or 'cuda:N'), got {torch_device!r}")
        self.relaxation = Relaxation(relaxation or self.default_relaxation,  # type: ignore[arg-type]
                                     self.default_temperature if temperature is None else temperature,
                                     self.default_temperature_decay if temperature_decay is None
                                     else temperature_decay, hard_sampling)
        self.penalty = LatencyPenalty(loss, 0.0, loss_scale)  # type: ignore[arg-type]
        self.config = SearchConfig(epochs=epochs, warmup_epochs=warmup_epochs, batch_size=batch_size,
                                   weight_lr=weight_lr, alpha_lr=alpha_lr, relaxation=self.relaxation,
                                   penalty=self.penalty, penalty_growth=penalty_growth)
        self.archs_per_weight = archs_per_weight
        self.device_param, self.hard_limit, self.limit_param = device, hard_limit, latency_limit_ms
        self.dataset_param = dataset
        self.width, self.cells, self.width_multiplier = width, cells_per_stage, width_multiplier
        self.torch_device = torch_device
        self.seed = seed
        #: sweep points finished; architectures derived but not handed out yet; one line per point
        self.point = 0
        self.pending: list[str] = []
        self.history: list[dict[str, Any]] = []
        self.search: SupernetSearch | None = None
        self._resume_search: dict[str, Any] | None = None
        if problem.spec is not None:
            self._check_job(problem.spec)

    # ---- what the job must provide -------------------------------------------------------
    def _check_job(self, spec: JobSpec) -> None:
        if not self.space.has_hook("build_supernet"):
            raise SpecError("space", f"strategy {self.name!r} trains a supernet, and search space {spec.space!r} "
                            "has no build_supernet hook")
        devices = _latency_devices(spec)
        if not devices:
            raise SpecError("objectives", f"strategy {self.name!r} optimises expected latency from a device "
                            "table: add a latency_ms objective (or constraint) with a device")
        if self.device_param is not None and self.device_param not in devices:
            raise SpecError("strategy.params.device", f"device {self.device_param!r} is not one the job's "
                            "latency objectives or constraints name", devices)
        limit = self._limit(spec)
        if self.hard_limit and limit is None:
            raise SpecError("strategy.params.hard_limit", f"hard_limit needs a latency limit on "
                            f"{self._device(spec)!r}: a constraint with 'max', or latency_limit_ms")
        most = len(self.latency_weights) * self.archs_per_weight
        if spec.budget.evaluations > most:
            raise SpecError("budget.evaluations", f"strategy {self.name!r} derives {most} architectures "
                            f"({len(self.latency_weights)} latency weights x {self.archs_per_weight}); "
                            f"set budget.evaluations to at most {most}")
        if self.dataset_param is not None:
            from nas.differentiable.data import check_dataset_name
            from nas.evaluators import DatasetError

            try:
                check_dataset_name(self.dataset_param)
            except DatasetError as exc:
                raise SpecError("strategy.params.dataset", str(exc)) from None

    def _device(self, spec: JobSpec) -> str:
        return self.device_param or _latency_devices(spec)[0]

    def _limit(self, spec: JobSpec) -> float | None:
        if self.limit_param is not None:
            return float(self.limit_param)
        device = self._device(spec) if _latency_devices(spec) else None
        limits = [c.max for c in spec.constraints
                  if c.metric == "latency_ms" and c.device == device and c.max is not None]
        return min(limits) if limits else None

    def _dataset(self, spec: JobSpec) -> str:
        if self.dataset_param is not None:
            return self.dataset_param
        return getattr(spec.evaluator, "dataset", None) or "digits"

    # ---- ask / tell ---------------------------------------------------------------------
    def ask(self, n: int) -> list[str]:
        out: list[str] = []
        while len(out) < n:
            if not self.pending:
                if self.point >= len(self.latency_weights) or not self._run_point():
                    break
            out.append(self.pending.pop(0))
        return out

    def _propose(self) -> str:  # ask is overridden; the base's fallback sampling is not used
        raise NotImplementedError

    def _run_point(self) -> bool:
        """Train (or finish training) the current sweep point; False when the job must stop first."""
        spec = self.problem.spec
        if spec is None:
            raise RuntimeError(f"strategy {self.name!r} needs the job spec (build it with nas.resolve.build_search)")
        search = self._search(spec)
        weight = self.latency_weights[self.point]
        while not search.finished:
            report = search.run_epoch()
            phase = {"strategy": self.name, "sweep_point": self.point + 1, "sweep_points": len(self.latency_weights),
                     "latency_weight": weight, "epoch": report.epoch, "epochs": self.config.epochs,
                     "temperature": round(report.temperature, 4), "penalty_weight": report.latency_weight,
                     "expected_latency_ms": round(report.expected_latency_ms, 4),
                     "derived_arch": self.space.decode(report.derived_codes),
                     "derived_latency_ms": round(report.derived_latency_ms, 4),
                     "search_accuracy": round(report.alpha_accuracy if report.alpha_accuracy is not None
                                              else report.weights_accuracy, 2)}
            if self.checkpoint_hook is not None and self.checkpoint_hook(phase):
                return False
        derived = self._derive(search)
        last = search.last
        self.history.append({"latency_weight": weight, "epochs": search.epoch, "archs": derived,
                             "penalty_weight": search.latency_weight,
                             "derived_latency_ms": None if last is None else last.derived_latency_ms})
        self.pending.extend(derived)
        self.point += 1
        self.search = None
        return True

    def _search(self, spec: JobSpec) -> SupernetSearch:
        if self.search is not None:
            return self.search
        import dataclasses

        import torch

        from nas.differentiable.data import load_search_data
        from nas.differentiable.latency_loss import ExpectedLatency
        from nas.differentiable.trainer import SupernetSearch

        device_name = self._device(spec)
        estimator = self.problem.estimators.get(device_name)
        if estimator is None:
            raise RuntimeError(f"no latency estimator for device {device_name!r} in the problem")
        torch_device = _torch_device(self.torch_device)
        latency = ExpectedLatency(estimator, torch_device)
        limit = self._limit(spec) if self.hard_limit else None
        weight = self.latency_weights[self.point]
        config = dataclasses.replace(
            self.config, latency_limit_ms=limit,
            penalty=dataclasses.replace(self.penalty, weight=weight, reference_ms=max(latency.highest_ms, 1e-9)))
        data = load_search_data(self._dataset(spec), spec.seed)
        point_seed = self.seed * 1_000 + self.point
        torch.manual_seed(point_seed)
        net = self.space.build_supernet(num_classes=data.num_classes, in_channels=data.in_channels,
                                        width=self.width, cells_per_stage=self.cells,
                                        width_multiplier=self.width_multiplier)
        self.search = SupernetSearch(net, latency, data, config, seed=point_seed, device=torch_device)
        if self._resume_search is not None:
            self.search.load_state_dict(self._resume_search)
            self._resume_search = None
            log.info("%s: resuming sweep point %d of %d (latency weight %g) after epoch %d", self.name,
                     self.point + 1, len(self.latency_weights), weight, self.search.epoch)
        return self.search

    def _derive(self, search: SupernetSearch) -> list[str]:
        out: list[str] = []
        for codes in self._ranked(np.log(np.maximum(search.probabilities(), 1e-30))):
            arch = self.space.decode(codes)
            if self.space.is_degenerate(arch):
                continue
            if self._accept(arch):
                out.append(arch)
                if len(out) == self.archs_per_weight:
                    break
        return out

    def _ranked(self, log_prob: np.ndarray) -> Iterator[list[int]]:
        """Architectures from most to less probable under the per-position distributions."""
        dims = self.space.dims
        best = log_prob.argmax(axis=1)
        if self.space.size <= EXACT_RANKING_LIMIT:
            every = np.stack(np.unravel_index(np.arange(self.space.size), tuple(dims)), axis=1)
            score = log_prob[np.arange(len(dims)), every].sum(axis=1)
            for i in np.argsort(-score, kind="stable"):
                yield every[i].tolist()
            return
        yield best.tolist()
        swaps = sorted(((log_prob[p, best[p]] - log_prob[p, c], p, c) for p in range(len(dims))
                        for c in range(dims[p]) if c != best[p]))
        for _, p, c in swaps:
            codes = best.copy()
            codes[p] = c
            yield codes.tolist()
        prob = np.exp(log_prob - log_prob.max(axis=1, keepdims=True))
        prob /= prob.sum(axis=1, keepdims=True)
        for _ in itertools.repeat(None, 10_000):
            yield [int(self.rng.choice(dims[p], p=prob[p, :dims[p]])) for p in range(len(dims))]

    # ---- checkpoint ---------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        search = self.search.state_dict() if self.search is not None else self._resume_search
        return {"point": self.point, "pending": list(self.pending), "history": self.history, "search": search}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.point = int(state["point"])
        self.pending = list(state["pending"])
        self.history = list(state["history"])
        self.search = None
        self._resume_search = state.get("search")


def _latency_devices(spec: JobSpec) -> list[str]:
    """Devices with a latency objective first (in objective order), then those only constrained."""
    ordered = [o.device for o in spec.objectives if o.metric == "latency_ms" and o.device]
    ordered += [c.device for c in spec.constraints if c.metric == "latency_ms" and c.device]
    return list(dict.fromkeys(d for d in ordered if d))


def _torch_device(name: str):  # -> torch.device
    import torch

    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"torch_device {name!r}: CUDA is not available on this machine "
                           f"(torch {torch.__version__}); use 'cpu'")
    return torch.device(name)


@STRATEGIES.register
class DartsStrategy(DifferentiableStrategy):
    name = "darts"
    description = ("DARTS: softmax-relaxed supernet, first-order bilevel training, CE + weight x expected "
                   "table latency; one derived architecture per latency weight of the sweep")
    default_relaxation = "softmax"
    default_loss = "linear"
    default_weights = (0.01, 0.03, 0.1, 0.3)


@STRATEGIES.register
class FBNetStrategy(DifferentiableStrategy):
    name = "fbnet"
    description = ("FBNet: Gumbel-softmax supernet, CE x scale x log(LAT)^weight from the device table; one "
                   "derived architecture per latency weight of the sweep")
    default_relaxation = "gumbel"
    default_loss = "multiplicative"
    default_weights = (0.5, 2.0, 8.0, 16.0)
    default_temperature = 5.0
    default_temperature_decay = 0.7
