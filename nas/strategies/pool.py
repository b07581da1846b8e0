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
    """Every distinct function of the space (or a seeded sample of a large space), first spelling kept."""
    space = problem.space
    if space.size <= ENUMERATE_LIMIT:
        codes_iter: list[tuple[int, ...]] = list(itertools.product(*(range(d) for d in space.dims)))
    else:
        rng = np.random.default_rng(seed)
        codes_iter = [tuple(int(rng.integers(d)) for d in space.dims) for _ in range(SAMPLE_SIZE)]
    archs: list[str] = []
    keys: list[str] = []
    seen: set[str] = set()
    for codes in codes_iter:
        arch = space.decode(codes)
        key = space.canonical_hash(arch)
        if key not in seen:
            seen.add(key)
            archs.append(arch)
            keys.append(key)
    free = {k: np.asarray(v, dtype=float) for k, v in problem.free_metrics(archs).items()}
    return Pool(archs, keys, np.stack([space.encode(a) for a in archs]), free,
                np.asarray(problem.feasible(archs), dtype=bool))
