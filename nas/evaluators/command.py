"""Run the user's command once per candidate (see DESIGN.md, "Command evaluator")."""

from __future__ import annotations

import json
import math
import os
import shlex
import signal
import subprocess
from collections.abc import Sequence

from nas.evaluators.base import Evaluation, Evaluator

STDERR_TAIL = 2000


class CommandEvaluator(Evaluator):
    def __init__(self, command: str, timeout_s: float = 600.0, retries: int = 0, cwd: str | None = None):
        self.command, self.timeout_s, self.retries, self.cwd = command, timeout_s, retries, cwd

    def evaluate(self, archs: Sequence[str]) -> list[Evaluation]:
        return [self._evaluate_one(a) for a in archs]

    def _evaluate_one(self, arch: str) -> Evaluation:
        result = Evaluation(None, "not run")
        for _ in range(self.retries + 1):
            result = self._attempt(arch)
            if result.ok:
                break
        return result

    def _attempt(self, arch: str) -> Evaluation:
        cmd = self.command.replace("{arch}", shlex.quote(arch))
        env = {**os.environ, "HWNAS_ARCH": arch}
        proc = subprocess.Popen(cmd, shell=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env, cwd=self.cwd, start_new_session=True)
        try:
            stdout, stderr = proc.communicate(timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            # kill the whole process group: the shell's children hold the pipes open
            os.killpg(proc.pid, signal.SIGKILL)
            _, stderr = proc.communicate()
            return Evaluation(None, f"timed out after {self.timeout_s:g}s\n{stderr[-STDERR_TAIL:]}".strip())
        stderr = stderr[-STDERR_TAIL:]
        if proc.returncode != 0:
            return Evaluation(None, f"exit status {proc.returncode}\n{stderr}".strip())
        lines = [ln for ln in stdout.strip().splitlines() if ln.strip()]
        if not lines:
            return Evaluation(None, f"no output; the last stdout line must be a JSON object\n{stderr}".strip())
        try:
            data = json.loads(lines[-1])
        except json.JSONDecodeError:
            return Evaluation(None, f"last stdout line is not JSON: {lines[-1][:200]!r}")
        if not isinstance(data, dict):
            return Evaluation(None, f"last stdout line must be a JSON object, got {lines[-1][:200]!r}")
        metrics: dict[str, float] = {}
        for key, value in data.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                return Evaluation(None, f"metric {key!r} is not a finite number: {value!r}")
            metrics[str(key)] = float(value)
        return Evaluation(metrics)
