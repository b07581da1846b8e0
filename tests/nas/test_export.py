"""Exports of nb201 and fbnet architectures in every format, run where hwnas cannot be imported."""

from __future__ import annotations

import ast
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from latency_tables import LatencyEstimator, shipped_tables
from nas.export import ExportError, export_architecture
from nas.export.codegen import config_for, load_module_file
from nas.export.core import calibrate_batchnorm
from search_spaces import get_space
from tests.conftest import ROOT

ARCHS = {
    "nb201": "|nor_conv_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|none~0|nor_conv_1x1~1|nor_conv_3x3~2|",
    # every block kind: grouped (shuffle), depthwise k3/k5, expand 1/3/6, identity and projecting skips
    "fbnet": "-".join(["k3_e1", "k3_e1_g2", "skip", "k5_e3", "k3_e6", "skip", "k5_e1_g2", "k5_e6", "k3_e3",
                       "skip", "k5_e1", "k3_e6", "k5_e6", "skip", "k3_e1_g2", "k5_e3", "skip", "k3_e3",
                       "k5_e6", "k3_e1", "skip", "k5_e1"]),
}


def trained_like_state(space_name: str) -> dict[str, torch.Tensor]:
    """A state_dict from hwnas's own builder, standing in for weights a job trained."""
    space = get_space(space_name)
    torch.manual_seed(7)
    model = space.build_model(ARCHS[space_name], **config_for(get_space(space_name)).kwargs)
    calibrate_batchnorm(model, config_for(get_space(space_name)).input_shape, seed=7)
    return model.state_dict()


@pytest.fixture(scope="module", params=sorted(ARCHS))
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    name = request.param
    root = tmp_path_factory.mktemp(f"export-{name}")
    state = trained_like_state(name)
    results = {fmt: export_architecture(name, ARCHS[name], fmt, root / fmt, tables=shipped_tables(name),
                                        tables_source="shipped", seed=3, weights=state if fmt != "json" else None)
               for fmt in ("torch", "onnx", "json")}
    return {"space": name, "state": state, **results}


# Runs with -I in an empty directory, then also drops the editable-install finders, so
# nothing of hwnas can be imported; it proves that and then runs the exported module.
FRESH_SCRIPT = """
import importlib.util, json, os, sys
sys.path[:] = [p for p in sys.path if p and os.path.realpath(p) != {root!r}]
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
for name in ("hwnas", "search_spaces", "nas", "latency_tables"):
    assert importlib.util.find_spec(name) is None, name + " is importable"
import torch
sys.path.insert(0, {export_dir!r})
import model
net = model.load_model({weights!r})
x = torch.load({input!r})
with torch.inference_mode():
    torch.save(net(x), {output!r})
print(json.dumps({{"modules": sorted(m.split(".")[0] for m in sys.modules), "arch": model.ARCH}}))
"""


def run_fresh(export_dir: Path, tmp_path: Path, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
    torch.save(x, tmp_path / "x.pt")
    weights = export_dir / "weights.pt"
    script = FRESH_SCRIPT.format(root=str(ROOT.resolve()), export_dir=str(export_dir), input=str(tmp_path / "x.pt"),
                                 output=str(tmp_path / "y.pt"), weights=str(weights) if weights.exists() else None)
    clean = tmp_path / "cwd"
    clean.mkdir()
    done = subprocess.run([sys.executable, "-I", "-c", script], cwd=clean, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return torch.load(tmp_path / "y.pt"), json.loads(done.stdout.strip().splitlines()[-1])


def test_standalone_module_imports_only_torch(exported: dict[str, Any]) -> None:
    tree = ast.parse((exported["torch"].out_dir / "model.py").read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported == {"__future__", "torch", "os"}


def test_fresh_interpreter_torch_matches_onnxruntime(exported: dict[str, Any], tmp_path: Path) -> None:
    import onnxruntime as ort

    x = torch.randn(2, *config_for(get_space(exported["space"])).input_shape[1:], generator=torch.Generator().manual_seed(1))
    y, info = run_fresh(exported["torch"].out_dir, tmp_path, x)
    assert info["arch"] == get_space(exported["space"]).normalize(ARCHS[exported["space"]])
    assert not {"hwnas", "search_spaces", "nas", "latency_tables"} & set(info["modules"])
    assert y.shape == (2, config_for(get_space(exported["space"])).kwargs["num_classes"])
    assert (y[0] - y[1]).abs().max() > 1e-3  # the output depends on the input: the comparison means something
    session = ort.InferenceSession(str(exported["onnx"].out_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": x.numpy()})[0]
    assert np.abs(got - y.numpy()).max() <= 1e-4
    assert 0 <= exported["onnx"].manifest["onnx"]["max_abs_diff"] <= 1e-4


def test_standalone_network_is_the_search_space_network(exported: dict[str, Any]) -> None:
    """Same state_dict keys and shapes as hwnas's builder, and the same function with the same weights."""
    space = get_space(exported["space"])
    ours = space.build_model(ARCHS[space.name], **config_for(get_space(space.name)).kwargs).eval()
    ours.load_state_dict(exported["state"])
    theirs = load_module_file(exported["torch"].out_dir / "model.py").load_model(
        str(exported["torch"].out_dir / "weights.pt"))
    assert {k: v.shape for k, v in theirs.state_dict().items()} == {k: v.shape for k, v in ours.state_dict().items()}
    x = torch.randn(2, *config_for(get_space(space.name)).input_shape[1:])
    with torch.inference_mode():
        assert torch.allclose(theirs(x), ours(x), atol=1e-6)


def test_manifest_predictions_equal_the_estimator(exported: dict[str, Any]) -> None:
    space = get_space(exported["space"])
    arch = space.normalize(ARCHS[space.name])
    for fmt in ("torch", "onnx", "json"):
        manifest = exported[fmt].manifest
        assert manifest == json.loads((exported[fmt].out_dir / "manifest.json").read_text())
        assert (manifest["space"], manifest["arch"], manifest["seed"]) == (space.name, arch, 3)
        assert manifest["canonical_hash"] == space.canonical_hash(arch) and manifest["hwnas_version"]
        devices = {d["name"]: d for d in manifest["latency"]["devices"]}
        tables = shipped_tables(space.name)
        assert set(devices) == {t.device_name for t in tables} and len(devices) >= 10
        for table in tables:
            entry = devices[table.device_name]
            assert entry["predicted_latency_ms"] == float(LatencyEstimator(table, space).predict([arch])[0])
            assert entry["device"] == table.device and entry["table_version"] == table.version
        for name, info in manifest["files"].items():
            assert hashlib.sha256((exported[fmt].out_dir / name).read_bytes()).hexdigest() == info["sha256"]


def test_json_export_and_which_files_each_format_writes(exported: dict[str, Any]) -> None:
    space = get_space(exported["space"])
    data = json.loads((exported["json"].out_dir / "architecture.json").read_text())
    assert data == {"space": space.name, "arch": space.normalize(ARCHS[space.name]),
                    "canonical_hash": space.canonical_hash(ARCHS[space.name]),
                    "codes": space.encode(ARCHS[space.name]).tolist()}
    assert exported["torch"].files == ["model.py", "weights.pt", "manifest.json"]
    assert exported["onnx"].files == ["model.onnx", "manifest.json"]
    assert exported["json"].files == ["architecture.json", "manifest.json"]
    assert exported["torch"].manifest["weights"]["trained"] is True


def test_untrained_torch_export_writes_no_weights(tmp_path: Path) -> None:
    result = export_architecture("fbnet", ARCHS["fbnet"], "torch", tmp_path, tables=[], tables_source="none")
    assert result.files == ["model.py", "manifest.json"] and not (tmp_path / "weights.pt").exists()
    assert result.manifest["weights"]["trained"] is False and result.manifest["latency"]["devices"] == []


@pytest.mark.parametrize(("space", "arch", "fmt", "message"), [
    ("nb201", "|conv_9x9~0|+|none~0|none~1|+|none~0|none~1|none~2|", "torch", "unknown op 'conv_9x9'"),
    ("fbnet", "k3_e1-k3_e1", "onnx", "fbnet needs 22 blocks"),
    ("darts", "x", "json", "unknown search space 'darts'"),
    ("nb201", ARCHS["nb201"], "tflite", "unknown format 'tflite'"),
])
def test_invalid_requests_are_named_errors(space: str, arch: str, fmt: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=message):
        export_architecture(space, arch, fmt, tmp_path, tables=[], tables_source="none")


def test_weights_of_another_architecture_are_refused(tmp_path: Path) -> None:
    state = get_space("nb201").build_model(ARCHS["nb201"], **config_for(get_space("nb201")).kwargs).state_dict()
    other = "|nor_conv_1x1~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|none~1|nor_conv_1x1~2|"
    with pytest.raises(ExportError, match="weights do not fit"):
        export_architecture("nb201", other, "torch", tmp_path, tables=[], tables_source="none", weights=state)


REPEATED_BUILDS = """
import hashlib, sys
from nas.export.service import build_model
space, arch = sys.argv[1], sys.argv[2]
print(" ".join(hashlib.sha256(build_model(space, arch, "onnx", 5).files["model.onnx"]).hexdigest()
               for _ in range(2)))
"""


def test_a_processs_first_onnx_build_equals_its_later_ones() -> None:
    """The export cache stores whichever build lands first: a fresh process (an export worker)
    must build the same bytes the first time as every time after."""
    space = get_space("nb201")
    arch = space.sample(np.random.default_rng(3))
    run = subprocess.run([sys.executable, "-c", REPEATED_BUILDS, space.name, arch], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    first, second = run.stdout.split()
    assert first == second
