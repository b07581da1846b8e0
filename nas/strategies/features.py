"""Feature vectors for surrogate models, per search space.

A surrogate learns faster from features that say what the network computes than
from raw choice indices. Every space gets the one-hot choices plus, for spaces
whose positions share one op vocabulary, how often each op occurs (standardised).
For nb201 the ops of dead edges (no path from input to output through them) are
first set to ``none``, so isomorphic spellings get one feature vector. The path
encoding of BANANAS was tried and ranked worse on nb201 with ~100 points.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from search_spaces.base import SearchSpace
from search_spaces.nb201 import NB201Space


def onehot(space: SearchSpace, codes: np.ndarray) -> np.ndarray:
    return np.hstack([(codes[:, p:p + 1] == np.arange(d)).astype(float) for p, d in enumerate(space.dims)])


def op_counts(space: SearchSpace, codes: np.ndarray) -> np.ndarray:
    if len({tuple(c) for c in space.choices}) != 1:
        return np.zeros((len(codes), 0))
    counts = np.stack([(codes == k).sum(1) for k in range(space.dims[0])], axis=1).astype(float)
    return (counts - counts.mean(0)) / (counts.std(0) + 1e-12)


def generic_features(space: SearchSpace, codes: np.ndarray) -> np.ndarray:
    return np.hstack([onehot(space, codes), op_counts(space, codes)])


def nb201_features(space: SearchSpace, codes: np.ndarray) -> np.ndarray:
    assert isinstance(space, NB201Space)
    live = np.array([space.live_edges(c) for c in codes])
    return generic_features(space, np.where(live, codes, 0))  # op 0 is none


FEATURES: dict[str, Callable[[SearchSpace, np.ndarray], np.ndarray]] = {"nb201": nb201_features}


def features(space: SearchSpace, codes: np.ndarray) -> np.ndarray:
    """(n, positions) codes -> (n, features) floats."""
    return FEATURES.get(space.name, generic_features)(space, np.asarray(codes))
