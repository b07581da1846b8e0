"""Vectorised latency estimation: table + space -> ms for many architectures at once."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from latency_tables.table import LatencyTable
from search_spaces.base import SearchSpace


class LatencyEstimator:
    """Precomputes the cost of each (position, choice) so a prediction is a gather and a sum."""

    def __init__(self, table: LatencyTable, space: SearchSpace):
        if table.space != space.name:
            raise ValueError(f"table {table.device_name!r} is for space {table.space!r}, not {space.name!r}")
        table.check_covers(space.all_op_signatures())
        self.table = table
        self.space = space
        width = max(space.dims)
        self.costs = np.zeros((len(space.dims), width))
        for p, dim in enumerate(space.dims):
            for c in range(dim):
                self.costs[p, c] = sum(table.entries[s].mean for s in space.position_signatures(p, c))
        self.base = table.intercept + sum(table.entries[s].mean for s in space.base_signatures())

    @property
    def device(self) -> str:
        return self.table.device_name

    def predict_codes(self, codes: np.ndarray) -> np.ndarray:
        """codes: (n, positions) int array -> (n,) latency in ms."""
        codes = np.asarray(codes)
        positions = np.arange(codes.shape[1])
        return self.base + self.costs[positions, codes].sum(axis=1)

    def predict(self, archs: Sequence[str]) -> np.ndarray:
        if not archs:
            return np.zeros(0)
        return self.predict_codes(np.stack([self.space.encode(a) for a in archs]))

    def bounds(self) -> tuple[float, float]:
        """Lowest and highest latency over the whole space."""
        lo = sum(self.costs[p, :d].min() for p, d in enumerate(self.space.dims))
        hi = sum(self.costs[p, :d].max() for p, d in enumerate(self.space.dims))
        return self.base + lo, self.base + hi
