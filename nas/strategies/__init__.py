"""Strategies by name; one conformance suite (tests/nas/test_strategy_conformance.py) runs them all."""

from nas.strategies.base import Strategy
from nas.strategies.default import DefaultStrategy
from nas.strategies.evolution import AgingEvolution
from nas.strategies.random_search import RandomSearch

STRATEGIES: dict[str, type[Strategy]] = {s.name: s for s in (RandomSearch, AgingEvolution, DefaultStrategy)}

__all__ = ["STRATEGIES", "Strategy"]
