"""NSGA-II (Deb et al., 2002) on the space's choice encoding, steady in ask/tell.

Parents come from binary tournaments on (Pareto rank, crowding distance) among
the survivors; a child is a uniform crossover of two parents plus per-position
mutation. Once ``population_size`` children have been told, survivors and
children are merged and the best ``population_size`` by rank then crowding
survive (the generational step), so batch sizes do not change the algorithm.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pydantic import Field

from nas.pareto import pareto_ranks
from nas.problem import Problem, TrialResult
from nas.registry import STRATEGIES
from nas.strategies.base import Strategy, StrategyParams

Member = tuple[str, list[float]]


def crowding_distance(points: np.ndarray) -> np.ndarray:
    """Per point, the sum over objectives of the normalised gap between its neighbours."""
    n, d = points.shape
    distance = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for j in range(d):
        order = np.argsort(points[:, j], kind="stable")
        span = points[order[-1], j] - points[order[0], j]
        distance[order[0]] = distance[order[-1]] = np.inf
        if span > 0:
            distance[order[1:-1]] += (points[order[2:], j] - points[order[:-2], j]) / span
    return distance


def select(members: list[Member], k: int) -> list[Member]:
    """The best ``k`` by non-dominated rank, ties in the last front broken by crowding."""
    if len(members) <= k:
        return list(members)
    points = np.array([u for _, u in members])
    ranks = pareto_ranks(points)
    chosen: list[int] = []
    for rank in range(int(ranks.max()) + 1):
        front = np.flatnonzero(ranks == rank)
        if len(chosen) + len(front) <= k:
            chosen += front.tolist()
            continue
        crowd = crowding_distance(points[front])
        order = np.argsort(-crowd, kind="stable")
        chosen += front[order[: k - len(chosen)]].tolist()
        break
    return [members[i] for i in sorted(chosen)]


@STRATEGIES.register
class NSGA2(Strategy):
    name = "nsga2"
    description = "NSGA-II: rank + crowding selection, uniform crossover, per-position mutation"

    class Params(StrategyParams):
        population_size: int = Field(20, ge=2, le=10_000, description="architectures per generation")
        crossover_prob: float = Field(0.9, ge=0, le=1, description="probability of uniform crossover")
        mutation_prob: float | None = Field(None, ge=0, le=1, description="per position; default 1/positions")

    def __init__(self, problem: Problem, seed: int = 0, population_size: int = 20,
                 crossover_prob: float = 0.9, mutation_prob: float | None = None):
        super().__init__(problem, seed)
        if population_size < 2:
            raise ValueError("population_size must be >= 2")
        if not 0 <= crossover_prob <= 1 or (mutation_prob is not None and not 0 <= mutation_prob <= 1):
            raise ValueError("probabilities must be within [0, 1]")
        self.population_size = population_size
        self.crossover_prob = crossover_prob
        self.mutation_prob = 1.0 / len(self.space.dims) if mutation_prob is None else mutation_prob
        self.survivors: list[Member] = []
        self.offspring: list[Member] = []

    def _propose(self) -> str:
        if self.asked < self.population_size or len(self.survivors) < 2:
            return self.space.sample(self.rng)
        a, b = self._tournament(), self._tournament()
        x, y = self.space.encode(a), self.space.encode(b)
        child = np.where(self.rng.random(len(x)) < 0.5, x, y) if self.rng.random() < self.crossover_prob else x
        for p, dim in enumerate(self.space.dims):
            if self.rng.random() < self.mutation_prob:
                child[p] = self.rng.integers(dim)
        return self.space.decode(child.tolist())

    def _tournament(self) -> str:
        i, j = self.rng.choice(len(self.survivors), size=2, replace=False)
        points = np.array([u for _, u in self.survivors])
        ranks = pareto_ranks(points)
        crowd = np.zeros(len(points))
        for r in np.unique(ranks):
            members = np.flatnonzero(ranks == r)
            crowd[members] = crowding_distance(points[members])
        better = i if (ranks[i], -crowd[i]) <= (ranks[j], -crowd[j]) else j
        return self.survivors[better][0]

    def tell(self, results: Sequence[TrialResult]) -> None:
        for r in results:
            u = r.utility(self.problem.objectives)
            if u is None:
                continue
            if len(self.survivors) < self.population_size and not self.offspring:
                self.survivors.append((r.arch, u.tolist()))  # the initial random population
            else:
                self.offspring.append((r.arch, u.tolist()))
            if len(self.offspring) >= self.population_size:
                self.survivors = select(self.survivors + self.offspring, self.population_size)
                self.offspring = []

    def _state(self) -> dict[str, Any]:
        return {"survivors": [[a, u] for a, u in self.survivors],
                "offspring": [[a, u] for a, u in self.offspring]}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.survivors = [(a, list(u)) for a, u in state["survivors"]]
        self.offspring = [(a, list(u)) for a, u in state["offspring"]]
