"""``torch``: the exported standalone ``model.py`` in eager torch, ``inference_mode``, threads pinned."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nas.devices.runtimes.base import DeviceRuntime, ModelRef, RuntimeResult
from nas.devices.runtimes.inprocess import time_interleaved


class TorchRuntime(DeviceRuntime):
    name = "torch"
    interleaved = True
    description = "the exported model.py in eager PyTorch (CPU), intra-op threads pinned, in the agent's process"

    @property
    def export_format(self) -> str | None:
        return "torch"

    def environment(self) -> dict[str, Any]:
        import torch

        return {**super().environment(), "runtime_version": f"pytorch {torch.__version__} eager"}

    def _call(self, model: ModelRef) -> Callable[[], object] | str:
        import torch

        from nas.export.codegen import load_module_file

        if model.path is None or not model.path.is_file():
            return f"no model.py for {model.arch!r}"
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                network = load_module_file(model.path).build_model().eval()
        except Exception as exc:  # user-visible: the exported code did not build
            return f"the exported model does not build: {type(exc).__name__}: {str(exc)[:500]}"
        x = torch.randn(*model.input_shape, generator=torch.Generator().manual_seed(self.seed))

        def call() -> object:
            with torch.inference_mode():
                return network(x)

        return call

    def measure(self, models: list[ModelRef]) -> list[RuntimeResult]:
        import torch

        torch.set_num_threads(self.threads)
        results, self.reference_drift = time_interleaved([self._call(m) for m in models], rounds=self.rounds,
                                                         seed=self.seed)
        return results
