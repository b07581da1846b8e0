"""Evaluator base: scores a batch of architectures; failures are per-trial, not per-job."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass
class Evaluation:
    metrics: dict[str, float] | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.metrics is not None


class Evaluator(ABC):
    """``evaluate`` runs once per batch the strategy asked for, returning one result per arch."""

    @abstractmethod
    def evaluate(self, archs: Sequence[str]) -> list[Evaluation]: ...
