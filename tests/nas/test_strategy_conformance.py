"""The suite every registered strategy runs (Optuna's pytest_samplers, NNI's test_sanity in spirit).

A toy space small enough to enumerate: 3 positions x 4 choices, where positions
0 and 1 commute (so 40 distinct functions among 64 spellings), a latency that is
free and an accuracy that costs an evaluation.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pytest

from nas.pareto import Objective, non_dominated_mask
from nas.problem import Problem, TrialResult
from nas.strategies import STRATEGIES, Strategy
from search_spaces.base import InvalidArchitecture, SearchSpace

ACC, LAT = "accuracy", "latency_ms@toy"


class ToySpace(SearchSpace):
    name = "toy"
    description = "3 positions x 4 choices; positions 0 and 1 commute"
    choices = (("a", "b", "c", "d"),) * 3

    def encode(self, arch: str) -> np.ndarray:
        if len(arch) != 3 or any(ch not in "abcd" for ch in arch):
            raise InvalidArchitecture(arch)
        return np.array(["abcd".index(ch) for ch in arch])

    def decode(self, codes: Sequence[int]) -> str:
        return "".join("abcd"[int(c)] for c in codes)

    def canonical_hash(self, arch: str) -> str:
        return "".join(sorted(arch[:2])) + arch[2]

    def op_signatures(self, arch: str) -> list[str]:
        return list(arch)

    def build_model(self, arch: str, **kwargs: object) -> None:
        raise NotImplementedError


SPACE = ToySpace()
DISTINCT = len({SPACE.canonical_hash(SPACE.decode(c)) for c in np.ndindex(4, 4, 4)})


def accuracy(arch: str) -> float:
    c = SPACE.encode(arch)
    return float(50 + 10 * c[2] + 5 * max(c[0], c[1]) - 3 * min(c[0], c[1]))


def latency(archs: Sequence[str]) -> np.ndarray:
    return np.array([1.0 + SPACE.encode(a).sum() for a in archs])


def problem(max_latency: float | None = None) -> Problem:
    def feasible(archs: Sequence[str]) -> np.ndarray:
        return np.ones(len(archs), bool) if max_latency is None else latency(archs) <= max_latency

    return Problem(SPACE, [Objective(ACC, True), Objective(LAT, False)],
                   lambda archs: {LAT: latency(archs)}, feasible)


def drive(strategy: Strategy, budget: int, batch: int = 1, evaluated: list[str] | None = None) -> list[str]:
    """The engine's loop in miniature: ask for at most what the budget has left, evaluate, tell."""
    evaluated = [] if evaluated is None else evaluated
    while len(evaluated) < budget:
        archs = strategy.ask(min(batch, budget - len(evaluated)))
        if not archs:
            break
        assert len(archs) <= min(batch, budget - len(evaluated))
        lat = latency(archs)
        strategy.tell([TrialResult(a, {ACC: accuracy(a), LAT: float(v)}) for a, v in zip(archs, lat)])
        evaluated += archs
    return evaluated


# differentiable strategies train supernets of real spaces: tests/nas/test_differentiable*.py
NAMES = sorted(n for n, s in STRATEGIES.items() if not s.differentiable)


@pytest.fixture(params=NAMES)
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_registry_names_match(name: str) -> None:
    assert STRATEGIES[name].name == name and STRATEGIES[name].description


@pytest.mark.parametrize("batch", [1, 3])
def test_spends_exactly_the_budget(name: str, batch: int) -> None:
    assert len(drive(STRATEGIES[name](problem(), seed=1), budget=17, batch=batch)) == 17


def test_finds_the_optimum_and_the_whole_front(name: str) -> None:
    evaluated = drive(STRATEGIES[name](problem(), seed=2), budget=DISTINCT)
    assert len(evaluated) == DISTINCT
    assert max(map(accuracy, evaluated)) == 50 + 10 * 3 + 5 * 3 - 3 * 0
    every = [SPACE.decode(c) for c in np.ndindex(4, 4, 4)]
    points = np.stack([[accuracy(a) for a in every], -latency(every)], axis=1)
    front = {tuple(p) for p in points[non_dominated_mask(points)]}
    found = {(accuracy(a), -float(latency([a])[0])) for a in evaluated}
    assert front <= found


def test_never_evaluates_an_isomorph_and_stops_when_the_space_is_spent(name: str) -> None:
    strategy = STRATEGIES[name](problem(), seed=3)
    evaluated = drive(strategy, budget=DISTINCT + 10, batch=2)
    keys = [SPACE.canonical_hash(a) for a in evaluated]
    assert len(keys) == len(set(keys)) == DISTINCT
    assert strategy.ask(1) == []


def test_never_evaluates_an_infeasible_architecture(name: str) -> None:
    limit = 5.0
    evaluated = drive(STRATEGIES[name](problem(max_latency=limit), seed=4), budget=DISTINCT, batch=2)
    assert evaluated and all(latency([a])[0] <= limit for a in evaluated)
    every = {SPACE.canonical_hash(SPACE.decode(c)) for c in np.ndindex(4, 4, 4)
             if latency([SPACE.decode(c)])[0] <= limit}
    assert {SPACE.canonical_hash(a) for a in evaluated} == every  # and it did reach all feasible ones


@pytest.mark.parametrize("batch", [1, 2])
def test_checkpoint_restore_continue_equals_uninterrupted(name: str, batch: int) -> None:
    uninterrupted = drive(STRATEGIES[name](problem(), seed=5), budget=24, batch=batch)

    first = STRATEGIES[name](problem(), seed=5)
    evaluated = drive(first, budget=10, batch=batch)
    state = json.loads(json.dumps(first.state_dict()))  # what a database would hand back
    resumed = STRATEGIES[name](problem(), seed=5)
    resumed.load_state_dict(state)
    resumed.mark_seen(SPACE.canonical_hash(a) for a in evaluated)  # the engine's resume: hashes of stored trials
    assert drive(resumed, budget=24, batch=batch, evaluated=evaluated) == uninterrupted


def test_same_seed_same_run_other_seed_other_run(name: str) -> None:
    a = drive(STRATEGIES[name](problem(), seed=6), budget=12)
    b = drive(STRATEGIES[name](problem(), seed=6), budget=12)
    c = drive(STRATEGIES[name](problem(), seed=7), budget=12)
    assert a == b
    assert a != c


def test_failed_evaluations_are_tolerated(name: str) -> None:
    strategy = STRATEGIES[name](problem(), seed=8)
    seen: list[str] = []
    while len(seen) < 15:
        archs = strategy.ask(2)
        strategy.tell([TrialResult(a, {LAT: float(latency([a])[0])}, ok=i % 2 == 0) if i % 2
                       else TrialResult(a, {ACC: accuracy(a), LAT: float(latency([a])[0])})
                       for i, a in enumerate(archs)])
        seen += archs
    assert len({SPACE.canonical_hash(a) for a in seen}) == len(seen)
