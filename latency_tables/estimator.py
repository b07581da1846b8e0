"""Vectorised estimation: table + space -> latency (ms) or energy (mJ) for many architectures at once."""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict

from collections.abc import Sequence

import numpy as np

from latency_tables.table import LatencyTable
from search_spaces.base import SearchSpace

#: A non-additive space up to this size is enumerated once, then predicted by lookup.
ENUMERATION_LIMIT = 2_000_000


class LatencyEstimator:
    """Turns a table into arrays so a prediction is one gather (and a sum for additive spaces).

    Additive spaces (fbnet) precompute the cost of each (position, choice). Spaces whose
    graph depends on the choices together (nb201: dead edges, pruned cells) are small, so
    every architecture's latency is computed once from its signature counts and a
    prediction is a lookup by the mixed-radix index of its codes.
    """

    def __init__(self, table: LatencyTable, space: SearchSpace, metric: str = "latency_ms"):
        if table.space != space.name:
            raise ValueError(f"table {table.device_name!r} is for space {table.space!r}, not {space.name!r}")
        vocabulary = space.all_op_signatures()
        self.table = table
        self.space = space
        self.metric = metric
        self.weights = np.asarray(table.values(vocabulary, metric))
        intercept = table.intercept_of(metric)
        self.dims = np.asarray(space.dims)
        self.lookup: np.ndarray | None = None
        if space.additive:
            index = {s: j for j, s in enumerate(vocabulary)}
            self.costs = np.zeros((len(space.dims), int(self.dims.max())))
            for p, dim in enumerate(space.dims):
                for c in range(dim):
                    self.costs[p, c] = sum(self.weights[index[s]] for s in space.position_signatures(p, c))
            self.base = intercept + sum(self.weights[index[s]] for s in space.base_signatures())
        elif space.size <= ENUMERATION_LIMIT:
            self.radix = np.concatenate([np.cumprod(self.dims[::-1])[::-1][1:], [1]]).astype(np.int64)
            every = np.stack(np.unravel_index(np.arange(space.size), tuple(space.dims)), axis=1)
            self.lookup = intercept + space.signature_matrix(every) @ self.weights
        else:
            raise ValueError(f"space {space.name!r} is neither additive nor small enough to enumerate")

    @property
    def device(self) -> str:
        return self.table.device_name

    def predict_codes(self, codes: np.ndarray) -> np.ndarray:
        """codes: (n, positions) int array -> (n,) values of the metric (ms or mJ)."""
        codes = np.asarray(codes)
        if self.lookup is not None:
            return self.lookup[codes @ self.radix]
        return self.base + self.costs[np.arange(codes.shape[1]), codes].sum(axis=1)

    def predict(self, archs: Sequence[str]) -> np.ndarray:
        if not archs:
            return np.zeros(0)
        return self.predict_codes(np.stack([self.space.encode(a) for a in archs]))

    def bounds(self) -> tuple[float, float]:
        """Lowest and highest value over the whole space."""
        if self.lookup is not None:
            return float(self.lookup.min()), float(self.lookup.max())
        lo = sum(self.costs[p, :d].min() for p, d in enumerate(self.space.dims))
        hi = sum(self.costs[p, :d].max() for p, d in enumerate(self.space.dims))
        return float(self.base + lo), float(self.base + hi)


_CACHE: OrderedDict[tuple[str, str, str], LatencyEstimator] = OrderedDict()
_CACHE_SIZE = 128
_CACHE_LOCK = threading.Lock()


def estimator_for(table: LatencyTable, space: SearchSpace, metric: str = "latency_ms") -> LatencyEstimator:
    """A shared estimator per table content: building one enumerates a whole small space
    (tens of milliseconds for nb201), too slow to repeat on every request."""
    fingerprint = hashlib.sha1(json.dumps(table.to_dict(), sort_keys=True).encode()).hexdigest()
    key = (space.content_hash, metric, fingerprint)  # a re-registered definition is another space
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            _CACHE.move_to_end(key)
            return hit
    estimator = LatencyEstimator(table, space, metric)
    with _CACHE_LOCK:
        _CACHE[key] = estimator
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return estimator
