"""``onnxruntime``: the exported ONNX file in onnxruntime's CPU provider, threads pinned, in this process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from nas.devices.runtimes.base import DeviceRuntime, ModelRef, RuntimeResult
from nas.devices.runtimes.inprocess import time_interleaved


class OnnxRuntime(DeviceRuntime):
    name = "onnxruntime"
    interleaved = True
    description = "ONNX in onnxruntime (CPU provider), intra-op threads pinned, measured in the agent's process"

    @property
    def export_format(self) -> str | None:
        return "onnx"

    def environment(self) -> dict[str, Any]:
        import onnxruntime as ort

        return {**super().environment(), "runtime_version": f"onnxruntime {ort.__version__}",
                "provider": "CPUExecutionProvider"}

    def _session_call(self, model: ModelRef) -> Callable[[], object] | str:
        import onnxruntime as ort

        if model.path is None or not model.path.is_file():
            return f"no ONNX file for {model.arch!r}"
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = self.threads, 1
        try:
            session = ort.InferenceSession(str(model.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            return f"onnxruntime cannot load the model: {str(exc)[:500]}"
        feed = {session.get_inputs()[0].name: np.random.default_rng(self.seed)
                .standard_normal(model.input_shape).astype(np.float32)}
        return lambda: session.run(None, feed)

    def measure(self, models: list[ModelRef]) -> list[RuntimeResult]:
        import torch

        torch.set_num_threads(self.threads)  # the drift reference kernel runs in torch
        results, self.reference_drift = time_interleaved([self._session_call(m) for m in models],
                                                         rounds=self.rounds, seed=self.seed)
        return results
