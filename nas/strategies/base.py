"""Strategy base: ask/tell with a seeded generator, dedup by canonical hash, checkpointable.

When each hook runs:
- ``ask(n)`` before an evaluation batch; returns up to ``n`` new architectures
  (fewer only when the feasible space is exhausted). Never an architecture
  isomorphic to one asked before.
- ``tell(results)`` after the batch, with one result per asked architecture.
- ``state_dict()`` after every ``tell``; on resume ``load_state_dict()`` once, then
  ``mark_seen()`` with the canonical hashes of every trial recorded so far (the
  trials are stored anyway, so the checkpoint does not grow with them); the
  run then continues exactly as if never interrupted.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from nas.problem import Problem, TrialResult

MAX_DRAWS = 200


class StrategyParams(BaseModel):
    """A strategy's ``params``: declared with ranges, so no job can ask for unbounded work.

    Each strategy sets ``Params`` to a subclass; the spec's params are validated against it
    (unknown names and out-of-range values are a 422 naming ``strategy.params.X``) and
    ``GET /v1/strategies`` lists its fields. Defaults mirror the constructor's.
    """

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class Strategy(ABC):
    name: ClassVar[str]
    description: ClassVar[str]
    #: The params this strategy takes (none by default).
    Params: ClassVar[type[StrategyParams]] = StrategyParams
    #: Trains a supernet inside ``ask`` (darts, fbnet): needs a supported space and the job's
    #: tables, so the generic conformance suite (toy space) leaves it out.
    differentiable: ClassVar[bool] = False
    #: Set by the engine before the run. A strategy whose ``ask`` works long (epochs of supernet
    #: training) calls it after each unit of work with a progress note (JSON-safe dict); it saves
    #: ``state_dict()`` as the job's checkpoint and returns a stop reason (cancel, time limit) when
    #: the job must stop, in which case ``ask`` returns what it has (possibly nothing).
    checkpoint_hook: Callable[[dict[str, Any]], str | None] | None = None

    def __init__(self, problem: Problem, seed: int = 0, **params: Any):
        if params:
            raise ValueError(f"strategy {self.name!r} takes no params {sorted(params)}")
        self.problem = problem
        self.space = problem.space
        self.rng = np.random.default_rng(seed)
        self.seen: set[str] = set()
        self.exhausted = False
        #: architectures handed out so far (every one passes through ``_accept``)
        self.asked = 0

    def ask(self, n: int) -> list[str]:
        out: list[str] = []
        for _ in range(n):
            arch = self._draw_fresh(self._propose)
            if arch is None:
                break
            out.append(arch)
        return out

    @abstractmethod
    def _propose(self) -> str:
        """One candidate (may repeat or be infeasible: ``ask`` filters)."""

    def tell(self, results: Sequence[TrialResult]) -> None:
        """Default: nothing to learn (random search)."""

    def _accept(self, arch: str) -> bool:
        """True (and remembered) when ``arch`` is feasible and not isomorphic to one asked before.

        Strategies that override ``ask`` must pass every architecture they return
        through here: it is what keeps the no-repeat and never-infeasible guarantees.
        """
        key = self.space.canonical_hash(arch)
        if key in self.seen or not self.problem.feasible([arch])[0]:
            return False
        self.seen.add(key)
        self.asked += 1
        return True

    def _draw_fresh(self, propose: Callable[[], str]) -> str | None:
        """Draw from ``propose`` until a new feasible architecture comes; fall back to sampling."""
        for source in (propose, lambda: self.space.sample(self.rng)):
            for _ in range(MAX_DRAWS):
                arch = source()
                if self._accept(arch):
                    return arch
        self.exhausted = True
        return None

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state, "exhausted": self.exhausted, "asked": self.asked,
                **self._state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.exhausted = bool(state.get("exhausted", False))
        self.asked = int(state["asked"])
        self._load_state(state)

    def mark_seen(self, hashes: Iterable[str]) -> None:
        self.seen.update(hashes)

    def _state(self) -> dict[str, Any]:
        return {}

    def _load_state(self, state: dict[str, Any]) -> None:
        pass
