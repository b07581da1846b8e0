"""The default strategy: a Gaussian-process surrogate of what costs (accuracy) plus the exact,
free latency of every architecture in the space, choosing by expected hypervolume improvement.

Why it wins with few evaluations: a general optimiser has to *learn* the latency
axis of the front from evaluations; here latency is known for every distinct nb201
cell (~5,800 functions, each in its cheapest feasible spelling, see ``pool``)
before the first evaluation, so every evaluation goes where the accuracy model
says the front can still move. The model is a GP on the logit of accuracy with
latency-local recalibration of its uncertainty (see ``_predict``); EHVI is
integrated over Gauss-Hermite nodes, exactly and vectorised over the whole pool
for one expensive and one free objective, by Monte Carlo on a shortlist otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pydantic import Field

from nas.pareto import hypervolume, non_dominated_mask
from nas.problem import Problem, TrialResult
from nas.registry import STRATEGIES
from nas.strategies.base import Strategy, StrategyParams
from nas.strategies.features import features
from nas.strategies.gp import GP
from nas.strategies.pool import Pool, build_pool

QUAD_NODES, QUAD_WEIGHTS = np.polynomial.hermite_e.hermegauss(12)
QUAD_WEIGHTS = QUAD_WEIGHTS / QUAD_WEIGHTS.sum()
#: Candidates scored exactly when the objectives are not (one expensive, one free).
GENERAL_SHORTLIST = 32
GENERAL_SAMPLES = 8


@STRATEGIES.register
class DefaultStrategy(Strategy):
    name = "default"
    description = "GP surrogate of accuracy + exact table latency for the whole space; picks by EHVI"

    class Params(StrategyParams):
        initial: int = Field(10, ge=2, le=1000, description="random architectures before the surrogate is used")

    def __init__(self, problem: Problem, seed: int = 0, initial: int = 10):
        super().__init__(problem, seed)
        if initial < 2:
            raise ValueError("initial must be >= 2")
        self.seed = seed
        self.initial = initial
        self.observed: list[tuple[str, list[float]]] = []  # arch, oriented objective values
        self._pool: Pool | None = None
        self._x: np.ndarray | None = None

    # -- pool and objectives ------------------------------------------------------------
    @property
    def pool(self) -> Pool:
        if self._pool is None:
            self._pool = build_pool(self.problem, self.seed)
        return self._pool

    def _split(self) -> tuple[list[int], list[int]]:
        """Indices of the objectives the pool knows for free, and of those an evaluation gives."""
        free = [i for i, o in enumerate(self.problem.objectives) if o.key in self.pool.free]
        return free, [i for i in range(len(self.problem.objectives)) if i not in free]

    def _free_oriented(self, free: list[int]) -> np.ndarray:
        cols = []
        for i in free:
            o = self.problem.objectives[i]
            cols.append(self.pool.free[o.key] if o.maximize else -self.pool.free[o.key])
        return np.stack(cols, axis=1) if cols else np.zeros((len(self.pool.archs), 0))

    # -- ask / tell -----------------------------------------------------------------------
    def ask(self, n: int) -> list[str]:
        if not self.problem.objectives:
            return super().ask(n)
        pool = self.pool
        free, expensive = self._split()
        available = pool.feasible & np.array([k not in self.seen for k in pool.keys])
        fantasies: list[list[float]] = []
        out: list[str] = []
        model = self._predict(expensive) if len(self.observed) >= self.initial else None
        while len(out) < n and available.any():
            idx = self._choose(available, free, expensive, fantasies, model)
            available[idx] = False
            if not self._accept(pool.archs[idx]):
                continue
            out.append(pool.archs[idx])
            fantasies.append(self._fantasy(idx, free, expensive, model))
        if len(out) < n:  # the pool is spent (sampled pools of big spaces): sample the space
            out += super().ask(n - len(out))
        return out

    def _propose(self) -> str:
        return self.space.sample(self.rng)

    def tell(self, results: Sequence[TrialResult]) -> None:
        for r in results:
            u = r.utility(self.problem.objectives)
            if u is not None:
                self.observed.append((r.arch, u.tolist()))

    # -- choosing -------------------------------------------------------------------------
    def _choose(self, available: np.ndarray, free: list[int], expensive: list[int],
                fantasies: list[list[float]], model: Model | None) -> int:
        candidates = np.flatnonzero(available)
        if model is None or len(self.observed) + len(fantasies) < self.initial:
            return self._space_filling(candidates, free, len(self.observed) + len(fantasies))
        points = np.array([u for _, u in self.observed] + fantasies)
        known = self._free_oriented(free)
        reference = self._reference(known, points)
        if len(expensive) == 1 and len(free) == 1:
            scores = ehvi_2d(points[:, [expensive[0], free[0]]], reference[[expensive[0], free[0]]],
                             model.values[candidates, 0], known[candidates, 0])
        else:
            scores = self._ehvi_general(candidates, points, reference, model, known, free, expensive)
        best = np.flatnonzero(scores >= scores.max() - 1e-12)
        return int(candidates[best[self.rng.integers(len(best))]])

    def _space_filling(self, candidates: np.ndarray, free: list[int], count: int) -> int:
        """Initial design: a random candidate from the next of ``initial`` equal-width bins of the
        first free objective (latency), so the first evaluations span the whole front's range."""
        if not free:
            return int(candidates[self.rng.integers(len(candidates))])
        values = self._free_oriented(free)[candidates, 0]
        edges = np.linspace(values.min(), values.max(), self.initial + 1)
        bins = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, self.initial - 1)
        for step in range(self.initial):  # the next non-empty bin
            members = candidates[bins == (count + step) % self.initial]
            if len(members):
                return int(members[self.rng.integers(len(members))])
        raise AssertionError("unreachable: candidates is not empty")

    def _reference(self, known: np.ndarray, points: np.ndarray) -> np.ndarray:
        """Oriented reference point: a bit beyond the worst of the pool (free) or of what was seen."""
        free, expensive = self._split()
        ref = np.zeros(points.shape[1])
        for j, i in enumerate(free):
            lo, hi = known[:, j].min(), known[:, j].max()
            ref[i] = lo - 0.01 * (hi - lo + 1e-12)
        for i in expensive:
            lo, hi = points[:, i].min(), points[:, i].max()
            ref[i] = lo - 0.01 * (hi - lo + 1e-12)
        return ref

    def _features(self) -> np.ndarray:
        if self._x is None:
            pool = self.pool
            free = [(v - v.mean()) / (v.std() + 1e-12) for v in pool.free.values()]
            x = features(self.space, pool.codes)
            self._x = np.hstack([x, np.stack(free, axis=1)]) if free else x
        return self._x

    def _predict(self, expensive: list[int]) -> Model:
        """Posterior of each expensive objective (oriented) over the pool, at the quadrature nodes.

        Two corrections make the GP's uncertainty usable for EHVI on architectures:
        percentages are modelled on the logit scale (a few broken cells near 10%,
        most within a few points of the best), and the standard deviation is
        rescaled per candidate by the leave-one-out calibration of the evaluated
        points near it in latency: errors are much larger among the cheap, sparse
        cells than in the crowded middle, and a single GP variance hides that.
        """
        pool = self.pool
        index = {k: i for i, k in enumerate(pool.keys)}
        rows = [index.get(self.space.canonical_hash(a), -1) for a, _ in self.observed]
        x_all = self._features()
        keep = [j for j, r in enumerate(rows) if r >= 0]
        x = x_all[[rows[j] for j in keep]]
        free, _ = self._split()
        near = self._free_oriented(free)[:, 0] if free else None
        values = np.zeros((len(pool.archs), len(expensive), len(QUAD_NODES)))
        median = np.zeros((len(pool.archs), len(expensive)))
        for col, i in enumerate(expensive):
            y = np.array([self.observed[j][1][i] for j in keep])
            if len(y) < 3 or np.ptp(y) == 0:
                values[:, col] = y.mean() if len(y) else 0.0
                median[:, col] = values[:, col, 0]
                continue
            percent = bool(np.all((y > 0) & (y < 100)))
            target = np.log(y / (100 - y)) if percent else y
            gp = GP.fit(x, target)
            mu, sigma = gp.predict(x_all)
            if near is not None:
                sigma = sigma * _local_calibration(near, near[[rows[j] for j in keep]], gp.loo_z)
            z = mu[:, None] + sigma[:, None] * QUAD_NODES[None]
            values[:, col] = 100 / (1 + np.exp(-z)) if percent else z
            median[:, col] = 100 / (1 + np.exp(-mu)) if percent else mu
        return Model(values, median)

    def _fantasy(self, idx: int, free: list[int], expensive: list[int],
                 model: Model | None) -> list[float]:
        """Kriging believer for batch asks: pretend the chosen one scores its predicted mean."""
        point = np.zeros(len(self.problem.objectives))
        known = self._free_oriented(free)
        for j, i in enumerate(free):
            point[i] = known[idx, j]
        if expensive and model is not None:
            point[expensive] = model.median[idx]
        return point.tolist()

    def _ehvi_general(self, candidates: np.ndarray, points: np.ndarray, reference: np.ndarray,
                      model: Model, known: np.ndarray, free: list[int], expensive: list[int]) -> np.ndarray:
        """Monte-Carlo EHVI on a shortlist (by optimistic box volume) for any number of objectives."""
        front = points[non_dominated_mask(points)]
        optimistic = np.zeros((len(candidates), len(reference)))
        optimistic[:, free] = known[candidates]
        optimistic[:, expensive] = model.values[candidates].max(axis=2)
        dominated = np.any(np.all(front[None] >= optimistic[:, None], axis=2), axis=1)
        volume = np.prod(np.clip(optimistic - reference, 0, None), axis=1)
        volume[dominated] = -1.0
        shortlist = np.argsort(-volume, kind="stable")[:GENERAL_SHORTLIST]
        base = hypervolume(front, reference)
        draws = np.random.default_rng(len(self.observed)).integers(
            len(QUAD_NODES), size=(GENERAL_SAMPLES, len(expensive)))
        scores = np.full(len(candidates), -1.0)
        for c in shortlist:
            if volume[c] < 0:
                continue
            total = 0.0
            for nodes in draws:  # independent draws of each expensive objective
                p = optimistic[c].copy()
                p[expensive] = model.values[candidates[c], np.arange(len(expensive)), nodes]
                weight = np.prod(QUAD_WEIGHTS[nodes]) * len(QUAD_NODES) ** len(expensive)
                total += weight * (hypervolume(np.vstack([front, p]), reference) - base)
            scores[c] = total / len(draws)
        return scores

    # -- checkpoint -----------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return {"observed": [[a, u] for a, u in self.observed]}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.observed = [(a, list(u)) for a, u in state["observed"]]


def ehvi_2d(points: np.ndarray, reference: np.ndarray, values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Expected hypervolume improvement, exact in the free objective, quadrature in the other.

    ``points`` (m, 2) oriented [expensive, free]; a candidate's expensive value
    takes ``values[:, q]`` with probability QUAD_WEIGHTS[q], its free value is
    ``known``. Adding (e, f) improves the front by the integral over levels y in
    (ref_e, e] of max(0, f - M(y)), where M(y) is the best free value among
    front points with expensive value >= y: a step function, so the improvement
    is piecewise linear in e.
    """
    front = points[non_dominated_mask(points)]
    front = front[np.all(front > reference, axis=1)]
    order = np.argsort(-front[:, 0])
    e_sorted, f_sorted = front[order, 0], front[order, 1]
    # intervals (lower_k, upper_k] with best free value M_k
    uppers = np.concatenate([[np.inf], e_sorted])
    lowers = np.concatenate([e_sorted, [reference[0]]])
    best = np.concatenate([[reference[1]], np.maximum.accumulate(f_sorted)])
    gain = np.clip(known[:, None] - best[None], 0, None)  # (n, K)
    overlap = np.clip(np.minimum(values[:, :, None], uppers[None, None]) - lowers[None, None], 0, None)
    improvement = (overlap * gain[:, None, :]).sum(axis=2)  # (n, Q)
    return improvement @ QUAD_WEIGHTS


@dataclass
class Model:
    values: np.ndarray  # (pool, expensive objectives, quadrature nodes), oriented units
    median: np.ndarray  # (pool, expensive objectives)



def _local_calibration(at: np.ndarray, observed_at: np.ndarray, loo_z: np.ndarray,
                       bandwidth: float = 0.05) -> np.ndarray:
    """sqrt of the kernel-weighted mean squared LOO z-score around each point (1 = calibrated)."""
    width = bandwidth * (np.ptp(at) or 1.0)
    weights = np.exp(-0.5 * ((at[:, None] - observed_at[None]) / width) ** 2) + 1e-12
    ratio = (weights * loo_z[None] ** 2).sum(1) / weights.sum(1)
    return np.sqrt(np.clip(ratio, 0.25, 100.0))
