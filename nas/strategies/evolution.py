from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pydantic import Field

from nas.pareto import pareto_ranks
from nas.problem import Problem, TrialResult
from nas.registry import STRATEGIES
from nas.strategies.base import Strategy, StrategyParams


@STRATEGIES.register
class AgingEvolution(Strategy):
    """Aging evolution (Real et al., 2019), multi-objective.

    A tournament picks the parent among ``sample_size`` random members of the
    population: lowest Pareto rank within the sample wins, ties broken by a
    random weighting of the objectives, so the whole front keeps evolving.
    The oldest member dies when the population exceeds ``population_size``.
    """

    name = "evolution"
    description = "Aging evolution with Pareto-rank tournaments (Real et al. 2019)"

    class Params(StrategyParams):
        population_size: int = Field(50, ge=2, le=10_000, description="members kept (the oldest dies)")
        sample_size: int = Field(10, ge=1, le=10_000, description="tournament size (<= population_size)")

    def __init__(self, problem: Problem, seed: int = 0, population_size: int = 50,
                 sample_size: int = 10):
        super().__init__(problem, seed)
        if population_size < 2 or not 1 <= sample_size <= population_size:
            raise ValueError("need population_size >= 2 and 1 <= sample_size <= population_size")
        self.population_size = population_size
        self.sample_size = sample_size
        self.population: list[tuple[str, list[float]]] = []

    def _propose(self) -> str:
        if self.asked < self.population_size or not self.population:
            return self.space.sample(self.rng)
        return self.space.mutate(self._tournament(), self.rng)

    def _tournament(self) -> str:
        size = min(self.sample_size, len(self.population))
        picks = self.rng.choice(len(self.population), size=size, replace=False)
        values = np.array([self.population[i][1] for i in picks])
        ranks = pareto_ranks(values)
        weights = self.rng.dirichlet(np.ones(values.shape[1]))
        spread = values.max(axis=0) - values.min(axis=0)
        scaled = (values - values.min(axis=0)) / np.where(spread > 0, spread, 1.0)
        best = min(range(size), key=lambda i: (ranks[i], -float(scaled[i] @ weights)))
        return self.population[picks[best]][0]

    def tell(self, results: Sequence[TrialResult]) -> None:
        for result in results:
            utility = result.utility(self.problem.objectives)
            if utility is None:
                continue
            self.population.append((result.arch, utility.tolist()))
            if len(self.population) > self.population_size:
                self.population.pop(0)

    def _state(self) -> dict[str, Any]:
        return {"population": [[a, u] for a, u in self.population]}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.population = [(a, list(u)) for a, u in state["population"]]
