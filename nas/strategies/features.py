"""Feature vectors for surrogate models, per search space.

A surrogate learns faster from features that say what the network computes than
from raw choice indices. For nb201 that is the path encoding (White et al.,
BANANAS 2021): one bit per input-to-output path of live ops, so dead edges and
isomorphic spellings vanish, plus the one-hot ops of live edges. Spaces without
an entry here get the one-hot choice encoding.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np

from search_spaces.base import SearchSpace
from search_spaces.nb201 import EDGES, OPS, NB201Space


def onehot(space: SearchSpace, codes: np.ndarray) -> np.ndarray:
    return np.hstack([(codes[:, p:p + 1] == np.arange(d)).astype(float) for p, d in enumerate(space.dims)])


def _nb201_paths() -> list[list[int]]:
    """Edge indices of every path from node 0 to node 3."""
    paths = []
    for hops in ([0, 3], [0, 1, 3], [0, 2, 3], [0, 1, 2, 3]):
        paths.append([EDGES.index((a, b)) for a, b in itertools.pairwise(hops)])
    return paths


def nb201_features(space: SearchSpace, codes: np.ndarray) -> np.ndarray:
    assert isinstance(space, NB201Space)
    live_ops = [i for i, op in enumerate(OPS) if op != "none"]
    columns: list[np.ndarray] = []
    for path in _nb201_paths():
        for ops in itertools.product(live_ops, repeat=len(path)):
            columns.append(np.all(codes[:, path] == np.array(ops), axis=1).astype(float))
    live = np.array([space.live_edges(c) for c in codes])
    masked = np.where(live, codes, 0)  # ops on dead edges count as none
    return np.hstack([np.stack(columns, axis=1), onehot(space, masked)])


FEATURES: dict[str, Callable[[SearchSpace, np.ndarray], np.ndarray]] = {"nb201": nb201_features}


def features(space: SearchSpace, codes: np.ndarray) -> np.ndarray:
    """(n, positions) codes -> (n, features) floats."""
    return FEATURES.get(space.name, onehot)(space, np.asarray(codes))
