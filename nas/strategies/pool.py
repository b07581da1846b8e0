"""The candidate pool: one representative per distinct function, with its free metrics.

Latency comes from tables at no evaluation cost, so a strategy can afford to
know it for every architecture in the space (small spaces are enumerated in
full) and spend evaluations only on what it cannot compute: accuracy.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from nas.problem import Problem

#: Spaces up to this size are enumerated; larger ones are sampled.
ENUMERATE_LIMIT = 100_000
SAMPLE_SIZE = 20_000


@dataclass
class Pool:
    archs: list[str]
    keys: list[str]  # canonical hashes
    codes: np.ndarray  # (n, positions) int
    free: dict[str, np.ndarray]  # metric key -> (n,) values
    feasible: np.ndarray  # (n,) bool


def build_pool(problem: Problem, seed: int = 0) -> Pool:
    """Every distinct function of the space (or of a seeded sample of a large space).

    Isomorphic spellings compute the same function but a table may price them
    differently (a dead edge still costs what its op costs), so each function is
    represented by its best spelling: feasible first, then best on the free
    objectives (standardised and summed).
    """
    space = problem.space
    if space.size <= ENUMERATE_LIMIT:
        codes = np.array(list(itertools.product(*(range(d) for d in space.dims))), dtype=np.int64)
    else:
        rng = np.random.default_rng(seed)
        codes = np.stack([rng.integers(d, size=SAMPLE_SIZE) for d in space.dims], axis=1)
    archs = [space.decode(c) for c in codes]
    keys = [space.canonical_hash(a) for a in archs]
    free = {k: np.asarray(v, dtype=float) for k, v in problem.free_metrics(archs).items()}
    feasible = np.asarray(problem.feasible(archs), dtype=bool)
    score = np.zeros(len(archs))
    for o in problem.objectives:
        if o.key in free:
            v = free[o.key]
            score += (v if o.maximize else -v) / (v.std() or 1.0)
    best: dict[str, int] = {}
    for i, key in enumerate(keys):
        j = best.get(key)
        if j is None or (feasible[i], score[i]) > (feasible[j], score[j]):
            best[key] = i
    rows = np.array(sorted(best.values()))
    return Pool([archs[i] for i in rows], [keys[i] for i in rows], codes[rows],
                {k: v[rows] for k, v in free.items()}, feasible[rows])
