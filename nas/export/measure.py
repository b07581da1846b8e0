"""Time an export end to end on this machine, with the profiler's timing helper.

The exported artefact itself is timed: ``model.py`` (+ ``weights.pt``) in torch
eager, ``model.onnx`` in onnxruntime, and for a ``json`` export the network hwnas
builds from it. Threads are pinned as ``hwnas tables profile`` pins them, so the
number is comparable with a table profiled on the same machine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from latency_tables.profile import Timer
from nas.export.codegen import ExportError, load_module_file
from nas.export.core import FILES, WEIGHTS, read_manifest, resolve


@dataclass
class Measurement:
    manifest: dict[str, Any]
    runtime: str
    latency_ms: float
    rounds: int
    threads: int


def manifest_space(manifest: dict[str, Any]) -> Any:
    """The manifest's own definition when it carries one (a space from a file), else its name."""
    definition = manifest.get("space_definition")
    if definition is None:
        return manifest["space"]
    from search_spaces import SpaceDefinitionError, parse_space_definition

    try:
        return parse_space_definition(definition)
    except SpaceDefinitionError as exc:
        raise ExportError(f"the manifest's space_definition is invalid: {exc}") from None


def _runner(out_dir: Path, manifest: dict[str, Any], threads: int) -> tuple[str, Callable[[], object]]:
    import torch

    shape = tuple(manifest["model"]["input_shape"])
    fmt = manifest["export_format"]
    path = out_dir / FILES.get(fmt, "")
    if fmt in FILES and not path.is_file():
        raise ExportError(f"{path} is missing: the manifest says this is a {fmt} export")
    if fmt == "onnx":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        options.add_session_config_entry("session.set_denormal_as_zero", "1")  # as tables profile times
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        feed = {session.get_inputs()[0].name: torch.randn(*shape).numpy()}
        return f"onnxruntime {ort.__version__}", lambda: session.run(None, feed)
    if fmt == "torch":
        weights = out_dir / WEIGHTS
        model = load_module_file(path).load_model(str(weights) if weights.is_file() else None)
    elif fmt == "json":
        space, arch = resolve(manifest_space(manifest), manifest["arch"])
        kwargs = {k: v for k, v in manifest["model"].items() if k != "input_shape"}
        model = space.build_model(arch, **kwargs).eval()
    else:
        raise ExportError(f"unknown export format {fmt!r} in the manifest")
    x = torch.randn(*shape)

    def call() -> object:
        with torch.inference_mode():
            return model(x)

    return f"pytorch {torch.__version__} eager", call


def measure_export(out_dir: Path, *, threads: int = 1, rounds: int = 20, seed: int = 0) -> Measurement:
    """Latency (ms per forward pass) of the export in ``out_dir``."""
    import torch

    manifest = read_manifest(out_dir)
    torch.set_num_threads(threads)
    runtime, call = _runner(out_dir, manifest, threads)
    timer = Timer("cpu", seed)
    torch.set_flush_denormal(True)  # as tables profile times: untrained weights make denormals
    try:
        latency = timer.measure({"model": call}, rounds=rounds, repeats=3, warmup=3)["model"]
    finally:
        torch.set_flush_denormal(False)
    return Measurement(manifest, runtime, latency, rounds, threads)
