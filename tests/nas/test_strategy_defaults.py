"""Which strategy a job gets when it names none, and evolution under a small budget."""

from __future__ import annotations

from typing import Any

from hwnas.cli.search import MemoryRecorder
from nas.catalog import MemoryCatalog
from nas.engine import run_search
from nas.resolve import build_search
from nas.spec import JobSpec
from nas.strategies.default import DefaultStrategy
from nas.strategies.evolution import AgingEvolution


def spec(**extra: Any) -> dict[str, Any]:
    return {"space": "nb201", "budget": {"evaluations": 30}, "seed": 2,
            "objectives": [{"metric": "params", "goal": "minimize"},
                           {"metric": "latency_ms", "device": "pixel3", "goal": "minimize"}],
            "evaluator": {"type": "command", "command": "true"}, **extra}


def test_default_is_chosen_when_strategy_is_omitted() -> None:
    job = JobSpec.model_validate(spec())
    assert job.strategy.name == "default"
    assert isinstance(build_search(job, MemoryCatalog()).strategy, DefaultStrategy)
    # the CLI's --strategy defaults to the same
    import inspect

    from hwnas.cli.search import search

    assert inspect.signature(search).parameters["strategy"].default == "default"


def archs(strategy: dict[str, Any], budget: int) -> list[str]:
    """What a strategy asks for, with free metrics only (the tell uses params and latency)."""
    job = JobSpec.model_validate({**spec(), "strategy": strategy, "budget": {"evaluations": budget}})
    search = build_search(job, MemoryCatalog())
    asked: list[str] = []
    while len(asked) < budget:
        batch = search.strategy.ask(1)
        metrics = search.problem.free_metrics(batch)
        from nas.problem import TrialResult

        search.strategy.tell([TrialResult(a, {k: float(v[i]) for k, v in metrics.items()}, True)
                              for i, a in enumerate(batch)])
        asked += batch
    return asked


def test_evolution_with_a_budget_below_its_population_is_not_random_search() -> None:
    budget = 30  # below the default population of 50
    evolved = archs({"name": "evolution"}, budget)
    random = archs({"name": "random"}, budget)
    job = JobSpec.model_validate({**spec(), "strategy": {"name": "evolution"}})
    strategy = build_search(job, MemoryCatalog()).strategy
    assert isinstance(strategy, AgingEvolution) and strategy.population_size == budget // 2
    # same seed, same sampler: the first population_size are the same random draws, the rest are mutations
    assert evolved[:budget // 2] == random[:budget // 2]
    assert evolved[budget // 2:] != random[budget // 2:]
    space = build_search(job, MemoryCatalog()).space

    def edits(a: str, b: str) -> int:
        return int(sum(x != y for x, y in zip(space.encode(a), space.encode(b))))

    # each of the second half is a mutation: one edit away from something asked before it
    mutated = [i for i in range(budget // 2, budget) if min(edits(evolved[i], p) for p in evolved[:i]) <= 2]
    sampled = [i for i in range(budget // 2, budget) if min(edits(random[i], p) for p in random[:i]) <= 2]
    assert len(mutated) >= budget // 3 > len(sampled), (len(mutated), len(sampled))


def test_a_job_naming_evolution_and_a_large_budget_keeps_its_population() -> None:
    job = JobSpec.model_validate({**spec(), "strategy": {"name": "evolution"}, "budget": {"evaluations": 500}})
    assert build_search(job, MemoryCatalog()).strategy.population_size == 50


def test_the_default_strategy_resumes_with_the_hyperparameters_it_reused() -> None:
    job = JobSpec.model_validate(spec())
    search = build_search(job, MemoryCatalog())
    recorder = MemoryRecorder()
    run_search(search, recorder)
    state = search.strategy.state_dict()
    assert "hyper" in state
