"""Strategies by name; one conformance suite (tests/nas/test_strategies.py) runs them all."""

from nas.strategies.base import Strategy
from nas.strategies.evolution import AgingEvolution
from nas.strategies.random_search import RandomSearch

STRATEGIES: dict[str, type[Strategy]] = {s.name: s for s in (RandomSearch, AgingEvolution)}

__all__ = ["STRATEGIES", "Strategy"]
