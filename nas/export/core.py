"""Export one architecture as ``torch`` code, ``onnx`` or ``json``, with a manifest beside it.

Every export writes ``manifest.json``: what was exported, from which seed, the
latency tables it was predicted with (device metadata, table version) and the
predicted latency on each of those devices, so a model travels with its numbers.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hwnas_settings.version import __version__
from latency_tables import estimator_for, LatencyTable, TableError
from latency_tables.table import FORMAT as TABLE_FORMAT
from nas.export.codegen import ExportError, ModelConfig, config_for, load_module, standalone_source
from search_spaces import SearchSpace, get_space
from search_spaces.base import InvalidArchitecture

FORMATS = ("torch", "onnx", "json")
MANIFEST = "manifest.json"
MANIFEST_FORMAT = "hwnas.export/1"
ONNX_TOLERANCE = 1e-4
ONNX_OPSET = 17
FILES = {"torch": "model.py", "onnx": "model.onnx", "json": "architecture.json"}
WEIGHTS = "weights.pt"


@dataclass
class ExportResult:
    out_dir: Path
    files: list[str]  # names inside out_dir, the manifest last
    manifest: dict[str, Any]


def resolve(space_name: str | SearchSpace, arch: str) -> tuple[SearchSpace, str]:
    """(space, normalised architecture); unknown names and unparsable strings raise ExportError.

    ``space_name`` may be a space already (one read from a definition file, a job's pinned one)."""
    if isinstance(space_name, SearchSpace):
        space = space_name
    else:
        try:
            space = get_space(space_name)
        except KeyError as exc:
            raise ExportError(str(exc.args[0])) from None
    try:
        return space, space.normalize(arch)
    except InvalidArchitecture as exc:
        raise ExportError(f"not a {space.name} architecture: {exc}") from None


def device_predictions(space: SearchSpace, arch: str, tables: Sequence[LatencyTable],
                       used: Sequence[str] = ()) -> list[dict[str, Any]]:
    """One entry per table: its device metadata and version, and the estimator's prediction.

    A table that cannot predict (an entry missing, another space) is reported with its
    error instead of failing the whole export.
    """
    out = []
    for table in sorted(tables, key=lambda t: t.device_name):
        entry: dict[str, Any] = {
            "name": table.device_name, "table_format": TABLE_FORMAT, "table_version": table.version,
            "device": table.device, "used_by_job": table.device_name in used,
            "provenance": {k: table.provenance[k] for k in ("source", "date") if k in table.provenance},
            "validation": {k: table.validation[k] for k in ("n", "within_10pct", "kendall_tau")
                           if k in table.validation}}
        try:
            entry["predicted_latency_ms"] = float(estimator_for(table, space).predict([arch])[0])
        except (TableError, ValueError) as exc:
            entry["predicted_latency_ms"] = None
            entry["error"] = str(exc)
        out.append(entry)
    return out


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def calibrate_batchnorm(model: Any, input_shape: tuple[int, ...], seed: int, batches: int = 1) -> None:
    """Set BatchNorm running statistics from random inputs (cumulative average, train mode).

    A freshly initialised network in eval mode normalises nothing (mean 0, var 1), so
    its signal fades through a deep stack of cells and the output no longer depends on the
    input; an ONNX check on such a network would prove nothing.
    """
    import torch

    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    generator = torch.Generator().manual_seed(seed)
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    with torch.no_grad():
        for _ in range(batches):
            model(torch.randn(4, *input_shape[1:], generator=generator))
    for m in norms:
        m.momentum = 0.1
    model.eval()


def _build(source: str, config: ModelConfig, seed: int, weights: Mapping[str, Any] | None) -> Any:
    """The exported network, initialised from ``seed`` without disturbing the caller's torch RNG.

    Under the thread policy from the start (threads and deterministic kernels change the
    BatchNorm calibration's last bits): a process's first build and its later ones agree.
    """
    import torch

    from nas import threads

    threads.apply()
    module = load_module(source)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = module.build_model()
    if weights is None:
        calibrate_batchnorm(model, config.input_shape, seed)
    else:
        try:
            model.load_state_dict(dict(weights))
        except (RuntimeError, TypeError) as exc:
            raise ExportError(f"the weights do not fit this architecture: {str(exc).splitlines()[0]}") from None
    return model.eval()


def write_onnx(model: Any, config: ModelConfig, path: Path, seed: int) -> dict[str, Any]:
    """torch.onnx export (batch axis dynamic), then onnxruntime must agree with torch.

    Checked at batch 1 and 2 on seeded random inputs; the largest absolute difference
    goes into the manifest and anything above ``ONNX_TOLERANCE`` is refused.
    Uses the TorchScript exporter: the dynamo one takes 3-5x longer here and needs onnxscript.
    """
    import onnxruntime as ort
    import torch

    from nas import threads

    threads.apply()
    generator = torch.Generator().manual_seed(seed)
    example = torch.randn(*config.input_shape, generator=generator)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), str(path), dynamo=False, opset_version=ONNX_OPSET,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    session = ort.InferenceSession(str(path), threads.session_options(), providers=["CPUExecutionProvider"])
    diff = 0.0
    for batch in (1, 2):
        x = torch.randn(batch, *config.input_shape[1:], generator=generator)
        with torch.inference_mode():
            want = model(x).numpy()
        got = session.run(None, {"input": x.numpy()})[0]
        diff = max(diff, float(np.abs(got - want).max()))
    if not diff <= ONNX_TOLERANCE:
        raise ExportError(f"onnxruntime differs from torch by {diff:.3g} (tolerance {ONNX_TOLERANCE})")
    return {"opset": ONNX_OPSET, "exporter": f"torch.onnx (TorchScript) {torch.__version__}",
            "onnxruntime": ort.__version__, "checked_batches": [1, 2], "max_abs_diff": diff,
            "tolerance": ONNX_TOLERANCE, "input": "input", "output": "logits"}


@dataclass
class ModelFiles:
    """The model part of an export (file name -> bytes, and what the manifest says of it)."""

    files: dict[str, bytes]
    extra: dict[str, Any]


def write_model_files(space_name: str | SearchSpace, arch: str, fmt: str, out_dir: Path, *, seed: int = 0,
                      weights: Mapping[str, Any] | None = None) -> tuple[list[str], dict[str, Any]]:
    """Write the model file(s) of ``arch`` in ``fmt`` into ``out_dir``: the costly part of an
    export, and the only one that uses torch (ONNX, weights). Returns (names, manifest extras)."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; valid: {', '.join(FORMATS)}")
    space, arch = resolve(space_name, arch)
    config = config_for(space)
    out_dir.mkdir(parents=True, exist_ok=True)
    canonical_hash = space.canonical_hash(arch)
    main = out_dir / FILES[fmt]
    files = [main.name]
    extra: dict[str, Any] = {}
    if fmt == "json":
        main.write_text(json.dumps({"space": space.name, "arch": arch, "canonical_hash": canonical_hash,
                                    "codes": space.encode(arch).tolist()}, indent=1) + "\n")
    else:
        source = standalone_source(space, arch, version=__version__)
        if fmt == "torch":
            main.write_text(source)
            if weights is not None:  # loaded into the network first, so weights that do not fit are refused
                import torch

                torch.save(_build(source, config, seed, weights).state_dict(), out_dir / WEIGHTS)
                files.append(WEIGHTS)
        else:
            extra["onnx"] = write_onnx(_build(source, config, seed, weights), config, main, seed)
    return files, extra


def export_architecture(space_name: str | SearchSpace, arch: str, fmt: str, out_dir: Path, *,
                        tables: Sequence[LatencyTable], tables_source: str, seed: int = 0,
                        weights: Mapping[str, Any] | None = None, used_devices: Sequence[str] = (),
                        job: dict[str, Any] | None = None, model: ModelFiles | None = None) -> ExportResult:
    """Write the export of ``arch`` in ``fmt`` into ``out_dir`` (created) and return its manifest.

    ``tables``: every registered table of the space (shipped ones locally, the
    database's in the service); ``used_devices``: those the job optimised for.
    ``weights``: a state_dict, written only for ``torch`` (``onnx`` embeds it).
    ``model``: the model files built already (write_model_files elsewhere); then only
    the manifest is made here.
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; valid: {', '.join(FORMATS)}")
    space, arch = resolve(space_name, arch)
    config = config_for(space)
    canonical_hash = space.canonical_hash(arch)
    if model is None:
        files, extra = write_model_files(space, arch, fmt, out_dir, seed=seed, weights=weights)
    else:  # built elsewhere (the service's export process, or its cache)
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, content in model.files.items():
            (out_dir / name).write_bytes(content)
        files, extra = list(model.files), dict(model.extra)
    manifest: dict[str, Any] = {
        "format": MANIFEST_FORMAT, "export_format": fmt,
        "files": {name: {"sha256": _sha256(out_dir / name), "bytes": (out_dir / name).stat().st_size}
                  for name in files},
        "space": space.name, "space_content_hash": space.content_hash, "arch": arch,
        "canonical_hash": canonical_hash, "seed": seed,
        **({"space_definition": space.definition()} if space.definition().get("type") != "code" else {}),
        "model": {**config.kwargs, "input_shape": list(config.input_shape)},
        "weights": _weights_note(fmt, seed, trained=weights is not None),
        **extra,
        "latency": {"tables": tables_source, "devices": device_predictions(space, arch, tables, used_devices)},
        "job": job, "hwnas_version": __version__,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return ExportResult(out_dir, [*files, MANIFEST], manifest)


def _weights_note(fmt: str, seed: int, *, trained: bool) -> dict[str, Any] | None:
    if fmt == "json":
        return None
    if trained:
        return {"trained": True, "file": WEIGHTS if fmt == "torch" else FILES[fmt]}
    if fmt == "torch":
        return {"trained": False, "note": "untrained: no trained weights were kept, so no weights.pt; "
                                          "build_model() initialises the network"}
    return {"trained": False, "note": f"untrained: initialised from seed {seed}, BatchNorm statistics from "
                                      "random inputs (no trained weights were kept)"}


def read_manifest(out_dir: Path) -> dict[str, Any]:
    path = out_dir / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ExportError(f"{path}: not an hwnas export manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise ExportError(f"{path}: format must be {MANIFEST_FORMAT!r}")
    return manifest
