"""``"source": "measured"``: every candidate the evaluator scored is also measured on the device's agent."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from nas.devices.measure import DeviceMeasurer, OnProgress
from nas.evaluators.base import Evaluation, Evaluator


class MeasuringEvaluator(Evaluator):
    """Wraps the job's evaluator; adds ``measured_<metric>@<device>`` for each measured objective/constraint.

    A measurement that fails fails the trial with the agent's reason. ``owner``,
    ``on_progress`` and ``stop`` are set by the service once the job runs (its id, its
    phase, its cancel flag).
    """

    def __init__(self, inner: Evaluator, measurers: dict[str, DeviceMeasurer], keys: dict[str, dict[str, str]]):
        self.inner, self.measurers, self.keys = inner, measurers, keys  # keys: device -> {metric: trial key}
        self.owner: str | None = None
        self.on_progress: OnProgress | None = None
        self.stop: Callable[[], bool] | None = None

    def evaluate(self, archs: Sequence[str]) -> list[Evaluation]:
        evaluations = self.inner.evaluate(archs)
        todo = [i for i, e in enumerate(evaluations) if e.ok]
        for device, measurer in sorted(self.measurers.items()):
            if not todo:
                break
            results = measurer.measure([archs[i] for i in todo], purpose="objective", owner=self.owner,
                                       on_progress=self.on_progress, stop=self.stop)
            still = []
            for i, result in zip(todo, results, strict=True):
                missing = [m for m in self.keys[device] if result.value(m) is None]
                if not result.ok or missing:
                    reason = result.error or f"the agent reported no {', '.join(missing)}"
                    evaluations[i] = Evaluation(None, f"measurement on {device} failed: {reason}")
                    continue
                evaluations[i].metrics.update(  # type: ignore[union-attr]
                    {key: float(result.value(metric)) for metric, key in self.keys[device].items()})  # type: ignore[arg-type]
                still.append(i)
            todo = still
        return evaluations
