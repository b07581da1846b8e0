from __future__ import annotations

from nas.registry import STRATEGIES
from nas.strategies.base import Strategy


@STRATEGIES.register
class RandomSearch(Strategy):
    name = "random"
    description = "Uniform samples of the feasible space, never repeating an isomorphic cell."

    def _propose(self) -> str:
        return self.space.sample(self.rng)
