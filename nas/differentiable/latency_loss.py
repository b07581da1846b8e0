"""Expected table latency of a relaxed architecture, and the penalties that trade it against accuracy.

The expectation uses the very numbers ``LatencyEstimator`` predicts with, so at a one-hot
architecture it equals that architecture's table latency exactly:

- additive spaces (fbnet): base + sum over layers of weights[layer] . costs[layer], i.e. per
  layer the mixing weights times the table entries of that layer's candidate blocks;
- nb201, whose table is not additive (an op on a dead or zero-input edge, node sums and a
  pruned network have their own entries): the expectation of the table latency over the
  product distribution of the six edges, contracted edge by edge from the estimator's
  latency of every cell (5^6 values). It is multilinear in the weights, so it too equals the
  table latency at one-hot weights, and its gradient is exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from latency_tables import LatencyEstimator

PenaltyMode = Literal["linear", "multiplicative"]
PENALTY_MODES: tuple[str, ...] = ("linear", "multiplicative")


class ExpectedLatency:
    """weights (positions, choices) -> expected latency in ms, differentiable."""

    def __init__(self, estimator: LatencyEstimator, device: torch.device | str = "cpu"):
        self.estimator = estimator
        dims = [int(d) for d in estimator.space.dims]
        if estimator.lookup is not None:
            self.table: torch.Tensor | None = torch.as_tensor(
                np.asarray(estimator.lookup).reshape(dims), dtype=torch.float32, device=device)
            self.costs: torch.Tensor | None = None
            self.base = 0.0
        else:
            self.table = None
            self.costs = torch.as_tensor(estimator.costs, dtype=torch.float32, device=device)
            self.base = float(estimator.base)
        self.lowest_ms, self.highest_ms = estimator.bounds()

    def __call__(self, weights: torch.Tensor) -> torch.Tensor:
        if self.costs is not None:
            return self.base + (weights * self.costs[:, :weights.shape[1]]).sum()
        assert self.table is not None
        expected = self.table
        for row in weights:  # contract the leading position each time
            expected = torch.tensordot(row, expected, dims=([0], [0]))
        return expected

    def of_codes(self, codes: np.ndarray) -> float:
        """Table latency of one architecture (the estimator's own prediction)."""
        return float(self.estimator.predict_codes(np.asarray(codes)[None, :])[0])


@dataclass(frozen=True)
class LatencyPenalty:
    """How cross-entropy and expected latency combine, for a latency weight ``weight``.

    - ``linear``: CE + weight * LAT / LAT_max, LAT_max the slowest architecture of the space on
      the device, so one weight means the same on every table;
    - ``multiplicative`` (FBNet): CE * scale * log(e + LAT_us) ** weight, i.e. FBNet's
      CE * alpha * log(LAT) ** beta with beta = weight and alpha = scale. LAT is taken in
      microseconds plus e so that the logarithm is at least 1 on every table (FBNet's own
      tables are in microseconds); the power is then defined and grows with LAT.

    Weight 0 is the unconstrained search in both modes.
    """

    mode: PenaltyMode = "linear"
    weight: float = 0.0
    scale: float = 1.0
    reference_ms: float = 1.0

    def __post_init__(self) -> None:
        if self.mode not in PENALTY_MODES:
            raise ValueError(f"loss must be one of {', '.join(PENALTY_MODES)}, got {self.mode!r}")
        if self.weight < 0 or self.scale <= 0 or self.reference_ms <= 0:
            raise ValueError("latency weight must be >= 0, scale and reference latency > 0")

    def loss(self, cross_entropy: torch.Tensor, latency_ms: torch.Tensor, weight: float | None = None
             ) -> torch.Tensor:
        w = self.weight if weight is None else weight
        if self.mode == "linear":
            return cross_entropy + w * latency_ms / self.reference_ms
        return cross_entropy * self.scale * torch.log(math.e + latency_ms * 1000.0) ** w
