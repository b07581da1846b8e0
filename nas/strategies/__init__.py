"""Strategies by name; one conformance suite (tests/nas/test_strategy_conformance.py) runs them all.

Each strategy module registers its classes with ``@STRATEGIES.register``
(``nas.registry``); importing this package registers the built-in ones.
"""

from typing import cast

from nas import registry
from nas.registry import Registry
from nas.strategies import default, differentiable, evolution, nsga2, optuna_backed, random_search, rl  # noqa: F401
from nas.strategies.base import Strategy

STRATEGIES = cast(Registry[type[Strategy]], registry.STRATEGIES)

__all__ = ["STRATEGIES", "Strategy"]
