"""Evaluator kinds: how a job spec's ``evaluator`` block is checked and turned into an ``Evaluator``.

One ``EvaluatorKind`` per spec ``type``, registered in ``nas.registry.EVALUATORS``;
``nas.resolve`` looks the kind up by ``spec.evaluator.type`` (no ``isinstance`` chain).
A new kind adds its spec model to ``nas.spec.EvaluatorSpec`` and a kind here (or in
its own module, registered the same way).
"""

from __future__ import annotations

from typing import Any, ClassVar, cast

from nas import registry
from nas.catalog import Catalog, SpecError
from nas.evaluators.base import Evaluator
from nas.evaluators.benchmark import BenchmarkEvaluator
from nas.evaluators.command import CommandEvaluator, CommandPolicy
from nas.evaluators.proxy import ProxyEvaluator
from nas.evaluators.train import DatasetError, ImageDataset, TrainEvaluator, load_dataset
from nas.registry import Registry
from nas.spec import JobSpec
from search_spaces.base import SearchSpace


class EvaluatorKind:
    """One evaluator ``type``: spec checks against the catalog, and the evaluator it builds.

    ``command_policy`` is how a command evaluator runs (``nas.evaluators.command``); other kinds ignore it.
    """

    name: ClassVar[str]
    #: May run on several threads of one process (training seeds torch globally, so it may not).
    threads_safe: ClassVar[bool] = False

    @classmethod
    def check(cls, spec: JobSpec, catalog: Catalog) -> None:
        """Raise ``SpecError`` (naming the field) for what the catalog cannot provide."""

    @classmethod
    def build(cls, spec: JobSpec, space: SearchSpace, catalog: Catalog, cwd: str | None,
              command_policy: CommandPolicy | None = None) -> Evaluator:
        raise NotImplementedError


EVALUATORS = cast(Registry[type[EvaluatorKind]], registry.EVALUATORS)


def evaluator_kind(spec: JobSpec) -> type[EvaluatorKind]:
    return EVALUATORS[spec.evaluator.type]


@EVALUATORS.register
class BenchmarkKind(EvaluatorKind):
    name = "benchmark"
    threads_safe = True

    @classmethod
    def check(cls, spec: JobSpec, catalog: Catalog) -> None:
        ev: Any = spec.evaluator
        info = catalog.benchmark_info(ev.table)
        if info is None:
            raise SpecError("evaluator.table", f"unknown benchmark table {ev.table!r}", catalog.benchmark_names())
        if info.space != spec.space:
            raise SpecError("evaluator.table", f"benchmark {ev.table!r} is for space {info.space!r}, "
                            f"not {spec.space!r}")
        if ev.metric not in info.columns:
            raise SpecError("evaluator.metric", f"benchmark {ev.table!r} has no column {ev.metric!r}",
                            info.columns)

    @classmethod
    def build(cls, spec: JobSpec, space: SearchSpace, catalog: Catalog, cwd: str | None,
              command_policy: CommandPolicy | None = None) -> Evaluator:
        ev: Any = spec.evaluator
        data = catalog.benchmark(ev.table)
        if data is None:
            raise SpecError("evaluator.table", f"unknown benchmark table {ev.table!r}", catalog.benchmark_names())
        return BenchmarkEvaluator(data, ev.metric, space)


@EVALUATORS.register
class CommandKind(EvaluatorKind):
    name = "command"
    threads_safe = True

    @classmethod
    def build(cls, spec: JobSpec, space: SearchSpace, catalog: Catalog, cwd: str | None,
              command_policy: CommandPolicy | None = None) -> Evaluator:
        ev: Any = spec.evaluator
        try:
            return CommandEvaluator(ev.command, ev.timeout_s, ev.retries, cwd=cwd, policy=command_policy)
        except ValueError as exc:
            raise SpecError("evaluator.command", str(exc)) from None


class _DatasetKind(EvaluatorKind):
    """Kinds that score on an image dataset: ``digits`` or an .npz file."""

    @classmethod
    def check(cls, spec: JobSpec, catalog: Catalog) -> None:
        dataset = getattr(spec.evaluator, "dataset")
        if dataset != "digits" and not dataset.endswith(".npz"):
            raise SpecError("evaluator.dataset", "dataset must be 'digits' or a path to an .npz file")

    @staticmethod
    def dataset(spec: JobSpec) -> ImageDataset:
        try:
            return load_dataset(getattr(spec.evaluator, "dataset"), seed=spec.seed)
        except DatasetError as exc:
            raise SpecError("evaluator.dataset", str(exc)) from None


@EVALUATORS.register
class TrainKind(_DatasetKind):
    name = "train"

    @classmethod
    def build(cls, spec: JobSpec, space: SearchSpace, catalog: Catalog, cwd: str | None,
              command_policy: CommandPolicy | None = None) -> Evaluator:
        ev: Any = spec.evaluator
        return TrainEvaluator(space, cls.dataset(spec), seed=spec.seed, epochs=ev.epochs, width=ev.width,
                              cells_per_stage=ev.cells_per_stage, batch_size=ev.batch_size,
                              learning_rate=ev.learning_rate, resolution=ev.resolution)


@EVALUATORS.register
class ProxyKind(_DatasetKind):
    name = "proxy"

    @classmethod
    def build(cls, spec: JobSpec, space: SearchSpace, catalog: Catalog, cwd: str | None,
              command_policy: CommandPolicy | None = None) -> Evaluator:
        ev: Any = spec.evaluator
        return ProxyEvaluator(space, cls.dataset(spec), proxy=ev.proxy, seed=spec.seed, batch_size=ev.batch_size,
                              width=ev.width, cells_per_stage=ev.cells_per_stage, resolution=ev.resolution)
