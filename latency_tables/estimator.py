"""Vectorised estimation: table + space -> latency (ms) or energy (mJ) for many architectures at once."""

from __future__ import annotations

import functools
import hashlib
import json
import math
import threading
from collections import OrderedDict

from collections.abc import Sequence

import numpy as np

from latency_tables.table import TABLE_METRICS, LatencyTable, TableError
from search_spaces.base import SearchSpace

#: A non-additive space up to this size is enumerated once, then predicted by lookup.
ENUMERATION_LIMIT = 2_000_000


class LatencyEstimator:
    """Turns a table into arrays so a prediction is one gather (and a sum for additive spaces).

    Additive spaces (block spaces) precompute the cost of each (position, choice). Spaces whose
    graph depends on the choices together (a cell space's dead edges, pruned cells) are small, so
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


#: Largest prediction a table may make over its space (ms or mJ): beyond it a table is
#: refused, so no job, manifest or hypervolume ever sees an absurd or infinite value.
MAX_PREDICTION = 1e9


def check_predictions(table: LatencyTable, space: SearchSpace) -> None:
    """Raise TableError naming the entry unless every prediction over the space is finite,
    non-negative and at most ``MAX_PREDICTION``, for each metric the table predicts.

    Entries are non-negative already (LatencyTable.from_dict), so a negative prediction comes
    from a negative intercept; an overflowing one from the largest entry (or the intercept).
    """
    for metric, correction in TABLE_METRICS.items():
        if not table.has_metric(metric):
            continue
        try:
            with np.errstate(over="ignore", invalid="ignore"):
                lo, hi = LatencyEstimator(table, space, metric).bounds()
        except ValueError as exc:  # a space the estimator cannot cover: nothing to check against
            raise TableError(f"cannot check predictions over space {space.name!r}: {exc}", entry="space") from None
        intercept = table.intercept_of(metric)
        if not math.isfinite(lo) or lo < 0:
            if intercept < 0:
                raise TableError(f"corrections.{correction} = {intercept:g} makes {metric} negative "
                                 f"(lowest prediction over the space {lo:g})", entry=f"corrections.{correction}")
        if math.isfinite(lo) and lo >= 0 and math.isfinite(hi) and hi <= MAX_PREDICTION:
            continue
        field = "mean" if metric == "latency_ms" else "energy_mj"
        signatures = space.all_op_signatures()
        values = table.values(signatures, metric)
        worst = max(range(len(values)), key=lambda i: values[i])
        if abs(intercept) >= values[worst]:
            entry = f"corrections.{correction}"
        else:
            entry = f"entries.{signatures[worst]}.{field}"
        raise TableError(f"predictions of {metric} over the space reach {hi:g}, beyond the "
                         f"{MAX_PREDICTION:g} limit (from {entry})", entry=entry)


def _fingerprint(table: LatencyTable, metric: str) -> str:
    """The table's whole content, hashed (an estimator exposes its table, validation block included)."""
    return hashlib.sha256(json.dumps([metric, table.to_dict()], sort_keys=True).encode()).hexdigest()


@functools.lru_cache(maxsize=1)
def _shipped_fingerprints() -> frozenset[str]:
    from latency_tables.table import shipped_tables

    return frozenset(_fingerprint(t, m) for t in shipped_tables() for m in TABLE_METRICS if t.has_metric(m))


#: Uploaded tables' estimators, least recently used first; shipped ones live in _SHIPPED and are
#: never evicted, so no number of uploads can push other tenants' common tables out.
_CACHE: OrderedDict[tuple[str, str], LatencyEstimator] = OrderedDict()
_SHIPPED: dict[tuple[str, str], LatencyEstimator] = {}
_CACHE_SIZE = 128
_CACHE_LOCK = threading.Lock()


def estimator_for(table: LatencyTable, space: SearchSpace, metric: str = "latency_ms") -> LatencyEstimator:
    """A shared estimator per table content: building one enumerates a whole small space
    (tens of milliseconds for a 15,625-cell space), too slow to repeat on every request."""
    fingerprint = _fingerprint(table, metric)
    key = (space.content_hash, fingerprint)  # a re-registered definition is another space
    with _CACHE_LOCK:
        hit = _SHIPPED.get(key) or _CACHE.get(key)
        if hit is not None:
            if key in _CACHE:
                _CACHE.move_to_end(key)
            return hit
    estimator = LatencyEstimator(table, space, metric)
    shipped = fingerprint in _shipped_fingerprints()
    with _CACHE_LOCK:
        if shipped:
            _SHIPPED[key] = estimator
        else:
            _CACHE[key] = estimator
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
    return estimator
