"""``command``: the user's benchmark tool, run once per model (e.g. an adb + TFLite ``benchmark_model`` wrapper).

``--command 'CMD ... {model} ...'`` is split like a shell would (``shlex``) but run without
one: ``{model}`` becomes the exported ONNX file, ``{arch}`` the architecture string (both
also in the environment as ``HWNAS_MODEL``, ``HWNAS_ARCH``, with ``HWNAS_SPACE``). The last
stdout line must be a JSON object with a positive ``latency_ms`` and may carry ``energy_mj``
and ``peak_memory_kb``. A non-zero exit, a timeout or other output is that model's error.
A command without ``{model}`` is given no ONNX file (no export is made for it).
"""

from __future__ import annotations

import json
import math
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from nas.devices.runtimes.base import DeviceRuntime, ModelRef, RuntimeConfigError, RuntimeResult

STDERR_TAIL = 1000
OPTIONAL = ("energy_mj", "peak_memory_kb")


class CommandRuntime(DeviceRuntime):
    name = "command"
    takes_command = True
    description = "the user's benchmark tool, once per model: {model} = the exported ONNX file; JSON on its last line"

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        if not self.command or not self.command.strip():
            raise RuntimeConfigError("--runtime command needs --command 'TOOL ... {model}'")
        try:
            self.argv = shlex.split(self.command)
        except ValueError as exc:
            raise RuntimeConfigError(f"--command cannot be split into arguments: {exc}") from None
        if not self.argv:
            raise RuntimeConfigError("--command is empty")

    @property
    def export_format(self) -> str | None:
        return "onnx" if "{model}" in self.command else None  # type: ignore[operator]

    def environment(self) -> dict[str, Any]:
        return {**super().environment(), "runtime_version": f"command: {self.command}"}

    def measure(self, models: list[ModelRef]) -> list[RuntimeResult]:
        return [self._one(m) for m in models]

    def _one(self, model: ModelRef) -> RuntimeResult:
        path = str(model.path) if model.path else ""
        argv = [a.replace("{model}", path).replace("{arch}", model.arch) for a in self.argv]
        env = {**os.environ, "HWNAS_MODEL": path, "HWNAS_ARCH": model.arch, "HWNAS_SPACE": model.space,
               "HWNAS_THREADS": str(self.threads)}
        try:
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                    start_new_session=True)
        except OSError as exc:
            return RuntimeResult(error=f"cannot run {argv[0]!r}: {exc}")
        try:
            stdout, stderr = proc.communicate(timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            _, stderr = proc.communicate()
            return RuntimeResult(error=f"timed out after {self.timeout_s:g}s\n{stderr[-STDERR_TAIL:]}".strip())
        if proc.returncode != 0:
            return RuntimeResult(error=f"exit status {proc.returncode}\n{stderr[-STDERR_TAIL:]}".strip())
        return parse_output(stdout, stderr)

    @classmethod
    def example_options(cls, workdir: Path) -> dict[str, Any]:
        """A stand-in device tool: reports 1 ms per 100 kB of model file."""
        script = workdir / "fake_tool.py"
        script.write_text("import json, os, sys\n"
                          "size = os.path.getsize(sys.argv[1])\n"
                          "print(json.dumps({'latency_ms': size / 1e5, 'peak_memory_kb': size / 1024}))\n")
        return {"command": f"{shlex.quote(sys.executable)} {shlex.quote(str(script))} {{model}}"}


def parse_output(stdout: str, stderr: str = "") -> RuntimeResult:
    lines = [ln for ln in stdout.strip().splitlines() if ln.strip()]
    if not lines:
        return RuntimeResult(error=f"no output; the last stdout line must be a JSON object with latency_ms\n"
                                   f"{stderr[-STDERR_TAIL:]}".strip())
    try:
        data = json.loads(lines[-1])
    except json.JSONDecodeError:
        return RuntimeResult(error=f"last stdout line is not JSON: {lines[-1][:200]!r}")
    if not isinstance(data, dict) or "latency_ms" not in data:
        return RuntimeResult(error=f"last stdout line must be a JSON object with latency_ms, got {lines[-1][:200]!r}")
    values: dict[str, float | None] = {}
    for key in ("latency_ms", *OPTIONAL):
        value = data.get(key)
        if value is None and key != "latency_ms":
            values[key] = None
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0 \
                or (key == "latency_ms" and value <= 0):
            return RuntimeResult(error=f"{key} must be a {'positive' if key == 'latency_ms' else 'non-negative'} "
                                       f"finite number, got {value!r}")
        values[key] = float(value)
    return RuntimeResult(latency_ms=values["latency_ms"], energy_mj=values["energy_mj"],
                         peak_memory_kb=values["peak_memory_kb"])
