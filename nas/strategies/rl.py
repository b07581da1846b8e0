"""REINFORCE controller with MnasNet's latency-aware reward (Tan et al., 2019).

Policy: a factorised categorical, one softmax per position, whose logits depend
linearly on the latency weight w: ``logits = A + w * B``. Reward:
``ACC * prod_d (LAT_d / T_d) ** w_d`` where, per device,

- soft: ``w_d = w`` on both sides of the target T (MnasNet: alpha = beta = w = -0.07),
- hard: ``w_d = 0`` under the target and ``w`` over it (MnasNet: alpha = 0, beta = w = -1).

Pareto mode (the default) cycles w through ``weights`` so one controller learns
the whole trade-off: each w is a different point on the front, and the shared A
carries what is good about a cell regardless of its cost. The update uses
log-reward advantages over a per-w moving baseline, scaled by a running spread,
with Adam on (A, B). The latency targets default to each device's median latency
over the space (the tables make that free).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from pydantic import Field, field_validator

from nas.problem import Problem, TrialResult
from nas.registry import STRATEGIES
from nas.strategies.base import Strategy, StrategyParams

SOFT_WEIGHTS = (0.0, -0.07, -0.2, -0.5, -1.0)


@STRATEGIES.register
class Reinforce(Strategy):
    name = "rl"
    description = "REINFORCE controller, MnasNet reward ACC*(LAT/T)^w (soft/hard), Pareto mode sweeps w"

    class Params(StrategyParams):
        reward: Literal["soft", "hard"] = Field("soft", description="soft: w on both sides of T; hard: only over T")
        pareto: bool = Field(True, description="cycle w through weights (one controller for the whole front)")
        w: float | None = Field(None, ge=-10, le=0, description="latency exponent when pareto is false")
        weights: list[float] = Field(list(SOFT_WEIGHTS), min_length=1, max_length=64,
                                     description="latency exponents of pareto mode, each in [-10, 0]")
        target_ms: dict[str, float] | None = Field(None, max_length=64,
                                                   description="latency target per device (default: its median)")
        learning_rate: float = Field(0.1, gt=0, le=10)
        entropy: float = Field(0.01, ge=0, le=10)
        baseline_decay: float = Field(0.8, ge=0, le=1)

        @field_validator("weights")
        @classmethod
        def _bounded(cls, weights: list[float]) -> list[float]:
            if any(not -10 <= x <= 0 for x in weights):
                raise ValueError("each weight must be within [-10, 0]")
            return weights

        @field_validator("target_ms")
        @classmethod
        def _positive(cls, targets: dict[str, float] | None) -> dict[str, float] | None:
            if targets and any(not 0 < v <= 1e6 for v in targets.values()):
                raise ValueError("each target must be within (0, 1e6] ms")
            return targets

    def __init__(self, problem: Problem, seed: int = 0, reward: str = "soft", pareto: bool = True,
                 w: float | None = None, weights: Sequence[float] = SOFT_WEIGHTS,
                 target_ms: dict[str, float] | None = None, learning_rate: float = 0.1,
                 entropy: float = 0.01, baseline_decay: float = 0.8):
        super().__init__(problem, seed)
        if reward not in ("soft", "hard"):
            raise ValueError("reward must be 'soft' or 'hard'")
        if w is None:
            w = -0.07 if reward == "soft" else -1.0
        if not weights or any(x > 0 for x in weights) or w > 0:
            raise ValueError("latency weights must be <= 0")
        self.reward_kind = reward
        self.weights = [float(x) for x in (weights if pareto else [w])]
        self._metric_keys: tuple[str | None, list[str]] | None = None
        self.target_ms = dict(target_ms or {})
        self.lr, self.entropy, self.decay = learning_rate, entropy, baseline_decay
        width = max(self.space.dims)
        self.mask = np.array([[c < d for c in range(width)] for d in self.space.dims])
        self.params = np.zeros((2, len(self.space.dims), width))  # A, B
        self.adam_m = np.zeros_like(self.params)
        self.adam_v = np.zeros_like(self.params)
        self.steps = 0
        self.baseline: dict[int, float] = {}
        self.spread = 1.0
        self.pending: dict[str, int] = {}  # arch -> index of its w

    # -- policy ---------------------------------------------------------------------------
    def _probs(self, w: float) -> np.ndarray:
        logits = np.where(self.mask, self.params[0] + w * self.params[1], -np.inf)
        logits = logits - logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def ask(self, n: int) -> list[str]:
        out: list[str] = []
        for _ in range(n):
            k = self.asked % len(self.weights)
            probs = self._probs(self.weights[k])
            arch = self._draw_fresh(lambda: self.space.decode(
                [int(self.rng.choice(len(row), p=row)) for row in probs]))
            if arch is None:
                break
            self.pending[arch] = k
            out.append(arch)
        return out

    def _propose(self) -> str:  # ask is overridden; kept for the interface
        return self.space.sample(self.rng)

    # -- reward ---------------------------------------------------------------------------
    def _keys(self) -> tuple[str | None, list[str]]:
        """The accuracy objective (maximised, from the evaluator) and the latency ones (free)."""
        if self._metric_keys is None:
            free = self.problem.free_metrics([self.space.sample(np.random.default_rng(0))])
            latency = [o.key for o in self.problem.objectives if not o.maximize and o.key in free]
            accuracy = next((o.key for o in self.problem.objectives if o.maximize and o.key not in free), None)
            self._metric_keys = accuracy, latency
        return self._metric_keys

    def _targets(self, keys: list[str]) -> dict[str, float]:
        missing = [k for k in keys if k not in self.target_ms]
        if missing:
            rng = np.random.default_rng(0)  # fixed: targets must not depend on the run's state
            sample = [self.space.sample(rng) for _ in range(2000)]
            values = self.problem.free_metrics(sample)
            for k in missing:
                self.target_ms[k] = float(np.median(values[k]))
        return self.target_ms

    def log_reward(self, metrics: dict[str, float], w: float) -> float | None:
        """log(ACC * prod_d (LAT_d / T_d) ** w_d); None when the accuracy is missing or not positive."""
        accuracy, latency = self._keys()
        if accuracy is None or metrics.get(accuracy, 0.0) <= 0:
            return None
        value = float(np.log(metrics[accuracy]))
        for key, target in self._targets(latency).items():
            if key not in metrics or key not in latency:
                continue
            ratio = max(metrics[key], 1e-9) / target
            exponent = w if self.reward_kind == "soft" or ratio > 1 else 0.0
            value += exponent * float(np.log(ratio))
        return value

    def tell(self, results: Sequence[TrialResult]) -> None:
        grad = np.zeros_like(self.params)
        count = 0
        for r in results:
            k = self.pending.pop(r.arch, None)
            if k is None or not r.ok:
                continue
            w = self.weights[k]
            reward = self.log_reward(r.metrics, w)
            if reward is None:
                continue
            base = self.baseline.get(k, reward)
            advantage = (reward - base) / self.spread
            self.spread = max(1e-3, 0.9 * self.spread + 0.1 * abs(reward - base))
            self.baseline[k] = self.decay * base + (1 - self.decay) * reward
            probs = self._probs(w)
            onehot = np.zeros_like(probs)
            onehot[np.arange(len(probs)), self.space.encode(r.arch)] = 1.0
            g = advantage * (onehot - probs)
            # entropy bonus keeps the controller exploring: d(-sum p log p)/dlogits
            logp = np.log(np.where(probs > 0, probs, 1.0))
            g -= self.entropy * probs * (logp - (probs * logp).sum(axis=1, keepdims=True))
            grad[0] += g
            grad[1] += w * g
            count += 1
        if count:
            self._adam(np.where(self.mask, grad / count, 0.0))

    def _adam(self, grad: np.ndarray, beta1: float = 0.9, beta2: float = 0.999) -> None:
        """Gradient ascent step."""
        self.steps += 1
        self.adam_m = beta1 * self.adam_m + (1 - beta1) * grad
        self.adam_v = beta2 * self.adam_v + (1 - beta2) * grad * grad
        m_hat = self.adam_m / (1 - beta1 ** self.steps)
        v_hat = self.adam_v / (1 - beta2 ** self.steps)
        self.params += self.lr * m_hat / (np.sqrt(v_hat) + 1e-8)

    # -- checkpoint -----------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return {"params": self.params.tolist(), "adam_m": self.adam_m.tolist(), "adam_v": self.adam_v.tolist(),
                "steps": self.steps, "baseline": {str(k): v for k, v in self.baseline.items()},
                "spread": self.spread, "pending": dict(self.pending),
                "target_ms": dict(self.target_ms)}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.params = np.array(state["params"])
        self.adam_m, self.adam_v = np.array(state["adam_m"]), np.array(state["adam_v"])
        self.steps = int(state["steps"])
        self.baseline = {int(k): float(v) for k, v in state["baseline"].items()}
        self.spread = float(state["spread"])
        self.pending = {a: int(k) for a, k in state["pending"].items()}
        self.target_ms = {k: float(v) for k, v in state["target_ms"].items()}
