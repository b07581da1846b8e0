"""The RL controller's reward and learning, and NSGA-II's selection."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nas.pareto import Objective
from nas.problem import Problem, TrialResult
from nas.strategies.nsga2 import crowding_distance, select
from nas.strategies.rl import Reinforce
from search_spaces import get_space

NB201 = get_space("nb201")


def _problem() -> Problem:
    return Problem(NB201, [Objective("accuracy", True), Objective("lat", False)],
                   lambda archs: {"lat": np.array([1.0 + NB201.encode(a).sum() for a in archs])})


@pytest.mark.parametrize("kind,latency,want", [
    ("soft", 20.0, 90 * 2.0 ** -0.07), ("soft", 5.0, 90 * 0.5 ** -0.07),
    ("hard", 20.0, 90 * 2.0 ** -1.0), ("hard", 5.0, 90.0)])
def test_mnasnet_reward(kind: str, latency: float, want: float) -> None:
    rl = Reinforce(_problem(), reward=kind, pareto=False, target_ms={"lat": 10.0})
    assert math.exp(rl.log_reward({"accuracy": 90.0, "lat": latency}, rl.weights[0])) == pytest.approx(want)


def test_pareto_mode_sweeps_the_latency_weight() -> None:
    rl = Reinforce(_problem(), seed=0)
    assert len(rl.weights) > 1
    asked = rl.ask(len(rl.weights))
    assert sorted(rl.pending[a] for a in asked) == list(range(len(rl.weights)))


def test_controller_learns_what_the_reward_favours() -> None:
    """Accuracy rises with the number of conv3x3 (code 3): their probability must grow."""
    rl = Reinforce(_problem(), seed=0, pareto=False, w=0.0, learning_rate=0.2)
    before = rl._probs(0.0)[:, 3].mean()
    for _ in range(30):
        archs = rl.ask(4)
        rl.tell([TrialResult(a, {"accuracy": 50.0 + 10 * float(np.sum(NB201.encode(a) == 3)), "lat": 1.0})
                 for a in archs])
    assert rl._probs(0.0)[:, 3].mean() > before + 0.2


def test_crowding_distance_favours_the_extremes_and_sparse_points() -> None:
    points = np.array([[0.0, 10.0], [1.0, 9.0], [1.1, 8.9], [5.0, 5.0], [10.0, 0.0]])
    d = crowding_distance(points)
    assert np.isinf(d[0]) and np.isinf(d[4])
    assert d[3] > d[1] and d[3] > d[2]


def test_select_keeps_whole_fronts_then_the_least_crowded() -> None:
    members = [("a", [0.0, 10.0]), ("b", [10.0, 0.0]), ("c", [5.0, 5.0]), ("d", [5.1, 4.9]),
               ("e", [1.0, 1.0])]  # e is dominated
    chosen = [a for a, _ in select(members, 3)]
    assert set(chosen) == {"a", "b"} | ({"c"} if "c" in chosen else {"d"})
    assert "e" not in [a for a, _ in select(members, 4)]
