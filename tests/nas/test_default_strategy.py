"""The default strategy's parts: exact 2-D EHVI, the GP, the pool of cheapest spellings."""

from __future__ import annotations

import numpy as np

from latency_tables import LatencyEstimator, shipped_tables
from nas.pareto import Objective, hypervolume
from nas.problem import Problem, TrialResult
from nas.strategies.default import QUAD_WEIGHTS, DefaultStrategy, ehvi_2d, ehvi_2d_sorted
from nas.strategies.gp import GP
from nas.strategies.pool import build_pool
from search_spaces import get_space

NB201 = get_space("nb201")


def test_ehvi_2d_equals_hypervolume_differences() -> None:
    rng = np.random.default_rng(0)
    front = np.array([[90.0, -10.0], [85.0, -6.0], [70.0, -3.0], [60.0, -9.0]])  # last one dominated
    reference = np.array([10.0, -20.0])
    values = rng.uniform(50, 95, size=(25, len(QUAD_WEIGHTS)))
    known = rng.uniform(-15, -1, size=25)
    got = ehvi_2d(front, reference, values, known)
    base = hypervolume(front, reference)
    want = [sum(w * (hypervolume(np.vstack([front, [v, f]]), reference) - base) for v, w in zip(vals, QUAD_WEIGHTS))
            for vals, f in zip(values, known)]
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


def test_sorted_ehvi_2d_equals_the_summed_one() -> None:
    rng = np.random.default_rng(3)
    front = np.array([[90.0, -10.0], [85.0, -6.0], [70.0, -3.0], [60.0, -9.0], [50.0, -25.0]])
    reference = np.array([10.0, -20.0])  # the last point lies outside it
    values = rng.uniform(0, 99, size=(200, len(QUAD_WEIGHTS)))  # some below the reference
    known = rng.uniform(-22, -1, size=200)
    values[:5], known[5:10] = front[:5, :1], front[:5, 1]  # levels and free values on the front's
    np.testing.assert_allclose(ehvi_2d_sorted(front, reference, values, known),
                               ehvi_2d(front, reference, values, known), rtol=1e-9, atol=1e-9)


def test_gp_interpolates_and_is_unsure_far_away() -> None:
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, size=(40, 3))
    y = np.sin(3 * x[:, 0]) + x[:, 1] ** 2
    gp = GP.fit(x, y)
    mean, std = gp.predict(x)
    np.testing.assert_allclose(mean, y, atol=0.05)
    _, far = gp.predict(np.full((1, 3), 20.0))
    assert far[0] > 5 * std.max()
    assert len(gp.loo_z) == 40 and np.isfinite(gp.loo_z).all()


def test_pool_keeps_one_cheapest_feasible_spelling_per_function() -> None:
    table = next(t for t in shipped_tables() if t.device_name == "1080ti_1" and t.space == "nb201")
    est = LatencyEstimator(table, NB201)
    limit = float(np.median(est.predict([NB201.sample(np.random.default_rng(i)) for i in range(200)])))
    problem = Problem(NB201, [Objective("accuracy", True), Objective("lat", False)],
                      lambda archs: {"lat": est.predict(archs)}, lambda archs: est.predict(archs) <= limit)
    pool = build_pool(problem)
    assert len(pool.keys) == len(set(pool.keys))
    every = [NB201.decode(c) for c in np.ndindex(*NB201.dims)]
    keys = [NB201.canonical_hash(a) for a in every]
    assert set(keys) == set(pool.keys)
    lat = est.predict(every)
    cheapest: dict[str, float] = {}
    for k, v in zip(keys, lat):
        cheapest[k] = min(cheapest.get(k, np.inf), v)
    np.testing.assert_allclose(pool.free["lat"], [cheapest[k] for k in pool.keys])
    np.testing.assert_array_equal(pool.feasible, pool.free["lat"] <= limit)


def test_default_finds_the_front_of_a_smooth_nb201_problem_quickly() -> None:
    """Accuracy grows with the number of convolutions, latency with their cost: a front EHVI should
    trace with few evaluations, where random sampling of 15,625 cells would not."""
    table = next(t for t in shipped_tables() if t.device_name == "pixel3" and t.space == "nb201")
    est = LatencyEstimator(table, NB201)

    def accuracy(arch: str) -> float:
        codes = NB201.encode(arch)
        codes = np.where(NB201.live_edges(codes), codes, 0)  # isomorphic cells score the same
        return float(60 + 8 * np.sum(codes == 3) + 5 * np.sum(codes == 2) - 0.5 * np.sum(codes == 3) ** 2)

    problem = Problem(NB201, [Objective("accuracy", True), Objective("lat", False)],
                      lambda archs: {"lat": est.predict(archs)})
    every = [NB201.decode(c) for c in np.ndindex(*NB201.dims)]
    points = np.stack([[accuracy(a) for a in every], -est.predict(every)], axis=1)
    reference = np.array([points[:, 0].min(), points[:, 1].min() * 1.01])
    hv_star = hypervolume(points, reference)

    def regret(name: str) -> float:
        strategy = DefaultStrategy(problem, seed=0) if name == "default" else None
        rng = np.random.default_rng(0)
        found = []
        for _ in range(40):
            arch = strategy.ask(1)[0] if strategy else NB201.sample(rng)
            lat = float(est.predict([arch])[0])
            if strategy:
                strategy.tell([TrialResult(arch, {"accuracy": accuracy(arch), "lat": lat})])
            found.append([accuracy(arch), -lat])
        return 1 - hypervolume(np.array(found), reference) / hv_star

    assert regret("default") < 0.005
    assert regret("random") > 0.02


def test_resumed_past_the_window_asks_what_the_uninterrupted_run_asks() -> None:
    """Past WINDOW the strategy caches pool columns, the front and the available mask: a job
    restored from its checkpoint (caches empty) must still ask exactly the same."""
    from nas.strategies.default import WINDOW

    table = next(t for t in shipped_tables() if t.device_name == "pixel3" and t.space == "nb201")
    est = LatencyEstimator(table, NB201)

    def accuracy(arch: str) -> float:
        codes = NB201.encode(arch)
        codes = np.where(NB201.live_edges(codes), codes, 0)
        return float(60 + 8 * np.sum(codes == 3) + 5 * np.sum(codes == 2) - 0.7 * np.sum(codes == 3) ** 2
                     + 0.3 * np.sum(codes == 1))

    problem = Problem(NB201, [Objective("accuracy", True), Objective("lat", False)],
                      lambda archs: {"lat": est.predict(archs)})
    total, stop = WINDOW + 25, WINDOW + 10

    def run(resume_at: int | None) -> list[str]:
        strategy = DefaultStrategy(problem, seed=3)
        asked: list[str] = []
        for step in range(total):
            if step == resume_at:
                state = strategy.state_dict()
                strategy = DefaultStrategy(problem, seed=3)
                strategy.load_state_dict(state)
                strategy.mark_seen(NB201.canonical_hash(a) for a in asked)
            arch = strategy.ask(1)[0]
            asked.append(arch)
            strategy.tell([TrialResult(arch, {"accuracy": accuracy(arch), "lat": float(est.predict([arch])[0])})])
        return asked

    assert run(stop) == run(None)
