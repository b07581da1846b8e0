"""Strategies by name; one conformance suite (tests/nas/test_strategy_conformance.py) runs them all."""

from nas.strategies.base import Strategy
from nas.strategies.default import DefaultStrategy
from nas.strategies.differentiable import DartsStrategy, FBNetStrategy
from nas.strategies.evolution import AgingEvolution
from nas.strategies.nsga2 import NSGA2
from nas.strategies.optuna_backed import OptunaNSGA2, OptunaTPE
from nas.strategies.random_search import RandomSearch
from nas.strategies.rl import Reinforce

STRATEGIES: dict[str, type[Strategy]] = {
    s.name: s for s in (DefaultStrategy, RandomSearch, AgingEvolution, NSGA2, Reinforce, OptunaTPE, OptunaNSGA2,
                        DartsStrategy, FBNetStrategy)}

__all__ = ["STRATEGIES", "Strategy"]
