"""Every registered device runtime measures a real exported model, and reports a broken one's reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nas.devices.models import model_for
from nas.devices.runtimes import RUNTIMES, ModelRef, RuntimeConfigError, make_runtime
from nas.devices.runtimes.command import parse_output
from search_spaces import get_space

ARCH = get_space("nb201").sample(np.random.default_rng(7))


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.mark.parametrize("name", sorted(RUNTIMES))
def test_runtime_conformance(name: str, cache: Path, tmp_path: Path) -> None:
    runtime = make_runtime(name, threads=1, rounds=3, timeout_s=120, **RUNTIMES[name].example_options(tmp_path))
    model = model_for("nb201", ARCH, runtime.export_format, cache)
    if runtime.export_format:
        assert model.path is not None and model.path.is_file()
    again = model_for("nb201", ARCH, runtime.export_format, cache)  # cached by canonical hash
    assert again.path == model.path
    broken = ModelRef("nb201", ARCH, tmp_path / "missing" / "model.onnx", model.input_shape)
    if runtime.export_format:
        (tmp_path / "missing").mkdir()
        (tmp_path / "missing" / "model.onnx").write_bytes(b"")
    first, second = runtime.measure([model, broken])
    assert first.ok and first.latency_ms is not None and 0 < first.latency_ms < 10_000
    if runtime.export_format:  # an empty model file is an error with its reason, never a silent 0
        assert not second.ok and second.latency_ms is None and second.error
    env = runtime.environment()
    for key in ("runtime", "runtime_version", "threads", "cpu_model", "host"):
        assert env.get(key) not in (None, ""), key
    assert env["runtime"] == name and env["threads"] == 1


def test_runtime_options_are_checked() -> None:
    with pytest.raises(RuntimeConfigError, match="needs --command"):
        make_runtime("command")
    with pytest.raises(RuntimeConfigError, match="only for --runtime command"):
        make_runtime("onnxruntime", command="tool {model}")
    with pytest.raises(RuntimeConfigError, match="unknown runtime 'tflite'; valid: command, onnxruntime, torch"):
        make_runtime("tflite")


@pytest.mark.parametrize(("stdout", "error"), [
    ("", "no output"),
    ("hello", "not JSON"),
    ('{"energy_mj": 1}', "with latency_ms"),
    ('{"latency_ms": 0}', "positive"),
    ('{"latency_ms": "fast"}', "positive"),
    ('{"latency_ms": 2, "peak_memory_kb": -1}', "non-negative"),
])
def test_command_output_must_carry_a_latency(stdout: str, error: str) -> None:
    result = parse_output(stdout)
    assert not result.ok and result.latency_ms is None and error in (result.error or "")


def test_command_output_with_optional_metrics() -> None:
    result = parse_output('log line\n{"latency_ms": 12.5, "energy_mj": 3, "peak_memory_kb": 200}\n')
    assert result.ok and (result.latency_ms, result.energy_mj, result.peak_memory_kb) == (12.5, 3.0, 200.0)
