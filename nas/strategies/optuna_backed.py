"""Optuna's multi-objective samplers (TPE, NSGA-II) behind the Strategy interface.

Optuna keeps its state in a study and in its sampler's random generator; neither
is a plain value. The checkpoint is therefore the log of everything the study
was told, in order; ``load_state_dict`` replays it into a fresh study whose
sampler has the same seed, which puts both the trials and the sampler's
generator exactly where they were.

Optuna knows nothing of isomorphism or constraints. A proposal isomorphic to an
evaluated architecture is told that architecture's values at once (free
information, no evaluation spent); one isomorphic to a pending architecture, or
infeasible by the latency tables, is told as failed and Optuna is asked again.
After ``MAX_REJECTS`` such proposals in a row a uniform sample is taken instead
and added to the study when its result arrives.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState

from nas.problem import Problem, TrialResult
from nas.registry import STRATEGIES
from nas.strategies.base import Strategy

MAX_REJECTS = 50
optuna.logging.set_verbosity(optuna.logging.WARNING)


class OptunaStrategy(Strategy):
    """Base for strategies that wrap one Optuna sampler; subclasses give ``make_sampler``."""

    name: ClassVar[str]

    def __init__(self, problem: Problem, seed: int = 0):
        super().__init__(problem, seed)
        self.seed = seed
        self.log: list[list[Any]] = []  # ["ask"] | ["tell", number, values | None] | ["add", codes, values]
        self.pending: dict[str, int | None] = {}  # arch -> Optuna trial number (None: not Optuna's)
        self.known: dict[str, list[float] | None] = {}  # canonical hash -> objective values (None: failed)
        self._study: optuna.Study | None = None

    def make_sampler(self, seed: int) -> optuna.samplers.BaseSampler:
        raise NotImplementedError

    # -- the study ---------------------------------------------------------------------
    @property
    def study(self) -> optuna.Study:
        if self._study is None:
            directions = ["maximize" if o.maximize else "minimize" for o in self.problem.objectives]
            self._study = optuna.create_study(directions=directions or ["maximize"],
                                              sampler=self.make_sampler(self.seed))
            for event in self.log:  # replay (empty for a new strategy)
                self._apply(event)
        return self._study

    def _distributions(self) -> dict[str, CategoricalDistribution]:
        return {f"x{p}": CategoricalDistribution(list(range(d))) for p, d in enumerate(self.space.dims)}

    def _apply(self, event: list[Any]) -> Any:
        """Perform one logged interaction with the study; the same code runs live and on replay."""
        assert self._study is not None
        kind = event[0]
        if kind == "ask":
            trial = self._study.ask()
            return trial, [trial.suggest_categorical(k, d.choices) for k, d in self._distributions().items()]
        if kind == "tell":
            _, number, values = event
            if values is None:
                self._study.tell(number, state=TrialState.FAIL)
            else:
                self._study.tell(number, values)
            return None
        _, codes, values = event
        params = {f"x{p}": int(c) for p, c in enumerate(codes)}
        self._study.add_trial(optuna.trial.create_trial(
            params=params, distributions=self._distributions(),
            values=values, state=TrialState.COMPLETE if values is not None else TrialState.FAIL))
        return None

    def _do(self, event: list[Any]) -> Any:
        _ = self.study
        self.log.append(event)
        return self._apply(event)

    # -- ask / tell -------------------------------------------------------------------------
    def ask(self, n: int) -> list[str]:
        out: list[str] = []
        if not self.problem.objectives:
            return super().ask(n)
        while len(out) < n:
            arch = self._ask_optuna()
            if arch is None:
                arch = self._draw_fresh(lambda: self.space.sample(self.rng))
                if arch is None:
                    break
                self.pending[arch] = None
            out.append(arch)
        return out

    def _ask_optuna(self) -> str | None:
        for _ in range(MAX_REJECTS):
            trial, codes = self._do(["ask"])
            arch = self.space.decode(codes)
            key = self.space.canonical_hash(arch)
            if key in self.known:
                self._do(["tell", trial.number, self.known[key]])
            elif self._accept(arch):
                self.pending[arch] = trial.number
                return arch
            else:  # pending isomorph or infeasible
                self._do(["tell", trial.number, None])
        return None

    def _propose(self) -> str:
        return self.space.sample(self.rng)

    def tell(self, results: Sequence[TrialResult]) -> None:
        for r in results:
            values = None
            if r.utility(self.problem.objectives) is not None:
                values = [float(r.metrics[o.key]) for o in self.problem.objectives]
            self.known[self.space.canonical_hash(r.arch)] = values
            number = self.pending.pop(r.arch, None)
            if number is not None:
                self._do(["tell", number, values])
            elif self.problem.objectives:
                self._do(["add", self.space.encode(r.arch).tolist(), values])

    # -- checkpoint ---------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return {"log": [list(e) for e in self.log], "pending": dict(self.pending), "known": dict(self.known)}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.log = [list(e) for e in state["log"]]
        self.pending = dict(state["pending"])
        self.known = dict(state["known"])
        self._study = None  # rebuilt by replaying the log on first use


@STRATEGIES.register
class OptunaTPE(OptunaStrategy):
    name = "tpe"
    description = "Optuna's multi-objective TPE sampler (defaults), seeded and checkpointable"

    def make_sampler(self, seed: int) -> optuna.samplers.BaseSampler:
        return optuna.samplers.TPESampler(seed=seed)


@STRATEGIES.register
class OptunaNSGA2(OptunaStrategy):
    name = "optuna-nsga2"
    description = "Optuna's NSGA-II sampler (defaults), seeded and checkpointable; a baseline for nsga2"

    def make_sampler(self, seed: int) -> optuna.samplers.BaseSampler:
        return optuna.samplers.NSGAIISampler(seed=seed)
