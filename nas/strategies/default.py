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

Why it stays cheap at thousands of evaluations: up to ``WINDOW`` evaluations the GP is
exact and its hyperparameters are searched at every ask (the behaviour the regret
figures were measured with); past that it is fitted on a window of ``WINDOW`` of them
(the best of each latency bin, which is what shapes the front, plus the most recent),
and the hyperparameter grid is searched again only every ``REFIT_EVERY`` evaluations
(the last ones are reused in between and checkpointed, so a resumed job asks the same).
A fit is then one Cholesky factorisation of a ``WINDOW``-sized matrix, whatever the job's size.
Past ``WINDOW`` the pool-sized work is cached too: each observation's kernel and calibration
columns over the pool are computed once while it stays in the window (the window moves by one
or two a step), the posterior variance is one float32 matrix product, and EHVI is evaluated by
prefix sums over the front (``ehvi_2d_sorted``). BLAS runs single-threaded inside ``ask``: these
matrices are too small to gain from threads, and on a busy machine threads made a 160 x 160
Cholesky ~80x slower (38 ms against 0.5), which was most of what the strategy cost.
``benchmarks/default_scaling.py --budget 2000`` prints the cost per evaluation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import Field
from threadpoolctl import ThreadpoolController

from nas.pareto import hypervolume, non_dominated_mask
from nas.problem import Problem, TrialResult
from nas.registry import STRATEGIES
from nas.strategies.base import Strategy, StrategyParams
from nas.strategies.features import features
from nas.strategies.gp import GP, kernel_column
from nas.strategies.pool import Pool, build_pool

QUAD_NODES, QUAD_WEIGHTS = np.polynomial.hermite_e.hermegauss(12)
QUAD_WEIGHTS = QUAD_WEIGHTS / QUAD_WEIGHTS.sum()
#: Candidates scored exactly when the objectives are not (one expensive, one free).
GENERAL_SHORTLIST = 32
GENERAL_SAMPLES = 8
#: Evaluations the GP is fitted on at most (see the module docstring).
WINDOW = 160
#: Past ``WINDOW`` evaluations, the hyperparameter grid is searched again this often.
REFIT_EVERY = 40
#: Width of the latency neighbourhood of ``_local_calibration``, as a fraction of the pool's range.
CALIBRATION_BANDWIDTH = 0.05
_THREADS = ThreadpoolController()


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
        #: pool row of each observed architecture (-1: not in the pool), parallel to ``observed``
        self._rows: list[int] = []
        self._index: dict[str, int] | None = None
        #: per expensive objective: (length, noise ratio, observations when searched)
        self.hyper: dict[int, tuple[float, float, int]] = {}
        #: pool rows still to ask (feasible, not isomorphic to one asked or recorded), kept by
        #: ``_accept`` and ``mark_seen`` rather than rebuilt from ``seen`` at every ask
        self._available: np.ndarray | None = None
        #: pool-sized columns of the window's observations (see ``_columns``); derived, not checkpointed
        self._cache: dict[tuple[Any, ...], dict[int, np.ndarray]] = {}
        self._points: np.ndarray | None = None
        #: rows of the observed front and how many observations it covers (see ``_front_rows``)
        self._front: tuple[np.ndarray, int] | None = None

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
        # The GP's matrices are a few hundred wide: BLAS threads only contend for the cores,
        # and on a busy machine (other jobs, workers) a threaded Cholesky is ~80x slower.
        with _THREADS.limit(limits=1, user_api="blas"):
            return self._ask(n)

    def _ask(self, n: int) -> list[str]:
        pool = self.pool
        free, expensive = self._split()
        available = self._available_rows().copy()
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

    def _available_rows(self) -> np.ndarray:
        if self._available is None:
            pool = self.pool
            self._available = pool.feasible & np.array([k not in self.seen for k in pool.keys], dtype=bool)
        return self._available

    def _accept(self, arch: str) -> bool:
        if not super()._accept(arch):
            return False
        self._take([self.space.canonical_hash(arch)])
        return True

    def mark_seen(self, hashes: Iterable[str]) -> None:
        hashes = list(hashes)
        super().mark_seen(hashes)
        self._take(hashes)

    def _take(self, hashes: Iterable[str]) -> None:
        """Strike the pool rows of newly seen architectures (a no-op before the first ask)."""
        if self._available is None:
            return
        index = self._pool_index()
        for key in hashes:
            row = index.get(key)
            if row is not None:
                self._available[row] = False

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
        observed = self._observed_points()
        points = np.vstack([observed, np.reshape(fantasies, (-1, observed.shape[1]))])
        known = self._free_oriented(free)
        reference = self._reference(known, points)
        if len(expensive) == 1 and len(free) == 1:
            cols = [expensive[0], free[0]]
            if len(self.observed) <= WINDOW:  # the summed form over every point, as the regret figures were measured
                scores = ehvi_2d(points[:, cols], reference[cols], model.values[candidates, 0], known[candidates, 0])
            else:  # only the front shapes the improvement: the observed one, kept as points come
                front = np.vstack([observed[self._front_rows()], points[len(observed):]])
                scores = ehvi_2d_sorted(front[:, cols], reference[cols], model.values[candidates, 0],
                                        known[candidates, 0])
        else:
            scores = self._ehvi_general(candidates, points, reference, model, known, free, expensive)
        best = np.flatnonzero(scores >= scores.max() - 1e-12)
        return int(candidates[best[self.rng.integers(len(best))]])

    def _observed_points(self) -> np.ndarray:
        """(observations, objectives) oriented values, extended as observations come."""
        if self._points is None or len(self._points) > len(self.observed):
            self._points = np.zeros((0, len(self.problem.objectives)))
        if len(self._points) < len(self.observed):
            new = np.array([u for _, u in self.observed[len(self._points):]], dtype=float)
            self._points = np.vstack([self._points, new])
        return self._points

    def _front_rows(self) -> np.ndarray:
        """Ascending rows of the observed points' front, updated from the last front and the new
        points (the same rows, in the same order, as from all points: a resumed job agrees)."""
        points = self._observed_points()
        rows, count = self._front if self._front is not None and self._front[1] <= len(points) else (
            np.zeros(0, dtype=np.int64), 0)
        if count < len(points):
            rows = np.concatenate([rows, np.arange(count, len(points))])
            rows = rows[non_dominated_mask(points[rows])]
            self._front = (rows, len(points))
        return rows

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
        rows = self._pool_rows()
        x_all = self._features()
        free, _ = self._split()
        keep = self._window([j for j, r in enumerate(rows) if r >= 0], free, expensive)
        x = x_all[[rows[j] for j in keep]]
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
            gp = self._fit(i, x, target)
            if len(self.observed) <= WINDOW:  # exact, as the regret figures were measured
                mu, sigma = gp.predict(x_all)
                if near is not None:
                    sigma = sigma * _local_calibration(near, near[[rows[j] for j in keep]], gp.loo_z)
            else:  # the same from columns cached per observation (the window moves by one or two)
                mu, sigma = gp.predict_columns(self._columns(("kernel", i, gp.length), [rows[j] for j in keep],
                                                            lambda r: kernel_column(x_all, x_all[r], gp.length)))
                if near is not None:
                    width = CALIBRATION_BANDWIDTH * (np.ptp(near) or 1.0)
                    weights = self._columns(("calibration",), [rows[j] for j in keep],
                                            lambda r: np.exp(-0.5 * ((near - near[r]) / width) ** 2) + 1e-12)
                    ratio = (gp.loo_z.astype(np.float32) ** 2 @ weights).astype(float) / weights.sum(0)
                    sigma = sigma * np.sqrt(np.clip(ratio, 0.25, 100.0))
            z = mu[:, None] + sigma[:, None] * QUAD_NODES[None]
            values[:, col] = 100 / (1 + np.exp(-z)) if percent else z
            median[:, col] = 100 / (1 + np.exp(-mu)) if percent else mu
        return Model(values, median)

    def _columns(self, name: tuple[Any, ...], rows: list[int],
                 compute: Callable[[int], np.ndarray]) -> np.ndarray:
        """(len(rows), pool) matrix of per-pool-row columns (as rows), each computed once while its row stays
        in the window (``name`` says which kind and for which hyperparameters; other kinds' and
        rows' columns are dropped, so the cache holds one window's worth)."""
        cache = self._cache.setdefault(name, {})
        for stale in [key for key in self._cache if key[0] == name[0] and key != name]:
            del self._cache[stale]
        wanted = set(rows)
        for r in [r for r in cache if r not in wanted]:
            del cache[r]
        for r in rows:
            if r not in cache:
                cache[r] = compute(r).astype(np.float32)  # half the memory and matrix products
        return np.stack([cache[r] for r in rows])

    def _pool_index(self) -> dict[str, int]:
        if self._index is None:
            self._index = {k: i for i, k in enumerate(self.pool.keys)}
        return self._index

    def _pool_rows(self) -> list[int]:
        """Pool rows of the observed architectures, hashed once each (not at every ask)."""
        index = self._pool_index()
        for a, _ in self.observed[len(self._rows):]:
            self._rows.append(index.get(self.space.canonical_hash(a), -1))
        return self._rows

    def _window(self, keep: list[int], free: list[int], expensive: list[int]) -> list[int]:
        """At most ``WINDOW`` observations: the best (first expensive objective) of ``WINDOW // 2``
        equal-count bins of the first free objective, then the most recent ones."""
        if len(keep) <= WINDOW:
            return keep
        chosen: set[int] = set()
        if free and expensive:
            at = np.array([self.observed[j][1][free[0]] for j in keep])
            value = np.array([self.observed[j][1][expensive[0]] for j in keep])
            order = np.argsort(at, kind="stable")
            for members in np.array_split(order, WINDOW // 2):
                if len(members):
                    chosen.add(keep[int(members[np.argmax(value[members])])])
        for j in reversed(keep):
            if len(chosen) >= WINDOW:
                break
            chosen.add(j)
        return sorted(chosen)

    def _fit(self, objective: int, x: np.ndarray, target: np.ndarray) -> GP:
        """The GP of one expensive objective: full hyperparameter search up to ``WINDOW``
        observations and every ``REFIT_EVERY`` after, the last hyperparameters in between."""
        n = len(self.observed)
        last = self.hyper.get(objective)
        if n <= WINDOW or last is None or n - last[2] >= REFIT_EVERY:
            gp = GP.fit(x, target)
            self.hyper[objective] = (gp.length, gp.noise, n)
            return gp
        # the reused length with the reused noise ratio or, should the window's kernel no longer
        # factorise with it, the larger ones of the grid (5 factorisations at most, not 55)
        from nas.strategies.gp import NOISE_RATIOS

        return GP.fit(x, target, length_scales=(last[0],),
                      noise_ratios=tuple(r for r in NOISE_RATIOS if r >= last[1]))

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
        return {"observed": [[a, u] for a, u in self.observed],
                "hyper": {str(i): list(h) for i, h in self.hyper.items()}}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.observed = [(a, list(u)) for a, u in state["observed"]]
        self._rows = []
        self._available = None
        self._points, self._front = None, None
        self.hyper = {int(i): (float(h[0]), float(h[1]), int(h[2])) for i, h in state.get("hyper", {}).items()}


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


def ehvi_2d_sorted(points: np.ndarray, reference: np.ndarray, values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """``ehvi_2d`` in O(candidates x nodes x log front) instead of x front: equal to rounding.

    With the front's intervals in order, a candidate's level ``e`` lies in interval c (counted
    from the top; the ones above it do not overlap, the ones below it fully) and its free value
    ``f`` beats the best of the first g of them, so its improvement is the partial overlap of
    interval c plus prefix sums of len_k and best_k len_k over c+1 .. g-1.
    """
    front = points[non_dominated_mask(points)]
    front = front[np.all(front > reference, axis=1)]
    order = np.argsort(-front[:, 0])
    e_sorted, f_sorted = front[order, 0], front[order, 1]
    lowers = np.concatenate([e_sorted, [reference[0]]])
    best = np.concatenate([[reference[1]], np.maximum.accumulate(f_sorted)])
    length = np.concatenate([[0.0], -np.diff(lowers)])  # interval k's width (k >= 1; the top one is open)
    sum_len = np.concatenate([[0.0], np.cumsum(length)])
    sum_best = np.concatenate([[0.0], np.cumsum(best * length)])
    above = len(e_sorted) - np.searchsorted(e_sorted[::-1], values, side="left")  # interval c of each value
    beaten = np.searchsorted(best, known, side="left")[:, None]  # g: intervals whose best f beats
    f = known[:, None]
    partial = np.where((values > reference[0]) & (above < beaten),
                       (f - best[above]) * (values - lowers[above]), 0.0)
    start = np.minimum(above + 1, beaten)
    full = f * (sum_len[beaten] - sum_len[start]) - (sum_best[beaten] - sum_best[start])
    improvement = partial + np.where((values > reference[0]) & (beaten > above + 1), full, 0.0)
    return improvement @ QUAD_WEIGHTS


@dataclass
class Model:
    values: np.ndarray  # (pool, expensive objectives, quadrature nodes), oriented units
    median: np.ndarray  # (pool, expensive objectives)



def _local_calibration(at: np.ndarray, observed_at: np.ndarray, loo_z: np.ndarray,
                       bandwidth: float = CALIBRATION_BANDWIDTH) -> np.ndarray:
    """sqrt of the kernel-weighted mean squared LOO z-score around each point (1 = calibrated)."""
    width = bandwidth * (np.ptp(at) or 1.0)
    weights = np.exp(-0.5 * ((at[:, None] - observed_at[None]) / width) ** 2) + 1e-12
    ratio = (weights * loo_z[None] ** 2).sum(1) / weights.sum(1)
    return np.sqrt(np.clip(ratio, 0.25, 100.0))
