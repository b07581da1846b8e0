"""Feature vectors for surrogate models: the space's ``features`` hook.

A surrogate learns faster from features that say what the network computes than from
raw choice indices; each space decides what those are (``SearchSpace.features``: one-hot
choices plus op counts by default, dead edges folded away where a space has them).
"""

from __future__ import annotations

import numpy as np

from search_spaces.base import SearchSpace


def features(space: SearchSpace, codes: np.ndarray) -> np.ndarray:
    """(n, positions) codes -> (n, features) floats."""
    return space.features(np.asarray(codes))
