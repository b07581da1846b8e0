"""What a strategy may know about the problem besides the space: objectives and free metrics.

Latency (and any metric a table gives) costs nothing to compute for any
architecture, so strategies may ask for it before spending an evaluation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from nas.pareto import Objective
from search_spaces.base import SearchSpace

if TYPE_CHECKING:
    from latency_tables import LatencyEstimator
    from nas.spec import JobSpec

FreeMetrics = Callable[[Sequence[str]], dict[str, np.ndarray]]


@dataclass
class Problem:
    space: SearchSpace
    objectives: list[Objective]
    #: archs -> {metric key: values}, for metrics that cost no evaluation (table latency).
    free_metrics: FreeMetrics = field(default=lambda archs: {})
    #: archs -> mask of those whose free metrics satisfy every constraint on them.
    feasible: Callable[[Sequence[str]], np.ndarray] = field(
        default=lambda archs: np.ones(len(archs), dtype=bool))
    #: The job as submitted, for strategies that need more than the objectives (differentiable
    #: search reads its latency devices, limits and dataset); None outside a job.
    spec: JobSpec | None = None
    #: Per-device latency estimators behind the free metrics (differentiable search trains
    #: against their tables); filled by ``nas.resolve.build_search``.
    estimators: dict[str, LatencyEstimator] = field(default_factory=dict)


@dataclass
class TrialResult:
    """What ``Strategy.tell`` receives for each evaluated architecture."""

    arch: str
    metrics: dict[str, float]
    ok: bool = True

    def utility(self, objectives: Sequence[Objective]) -> np.ndarray | None:
        """Objective vector oriented so larger is better; None when a value is missing."""
        if not self.ok or any(o.key not in self.metrics for o in objectives):
            return None
        return np.array([self.metrics[o.key] if o.maximize else -self.metrics[o.key]
                         for o in objectives])
