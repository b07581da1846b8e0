"""Schemathesis against the live OpenAPI spec: every phase, stateful links, every check.

One check is left out: `positive_data_acceptance` expects any schema-valid body to
be accepted, but which devices and benchmark tables exist is data in the database,
not schema, so a well-formed spec naming an unknown device is rightly a 422.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.conftest import ROOT, PrivateRedis, Stack, hwnas_cmd


def test_schemathesis_finds_nothing(make_stack: Callable[..., Stack], migrated_pg_url: str,
                                    private_redis: PrivateRedis, nb201_csv: Path, tmp_path: Path) -> None:
    stack = make_stack(migrated_pg_url, private_redis.url, HWNAS_ALLOW_COMMAND_EVALUATOR="false")
    stack.start_worker()
    small = tmp_path / "nb201_small.csv"
    small.write_text("\n".join(nb201_csv.read_text().splitlines()[:2001]) + "\n")
    subprocess.run(hwnas_cmd("benchmarks", "import", str(small), "--name", "nb201", "--space", "nb201"),
                   env=stack.env, cwd=ROOT, check=True, capture_output=True)
    st = shutil.which("st", path=str(Path(sys.executable).parent))
    assert st, "schemathesis is installed with the test extra"
    result = subprocess.run(
        [st, "run", f"{stack.url}/openapi.json", "--phases", "examples,coverage,fuzzing,stateful",
         "--checks", "all", "--exclude-checks", "positive_data_acceptance", "--max-examples", "25",
         "--generation-deterministic", "-H", f"Authorization: Bearer {stack.api_key}", "--no-color",
         # an ONNX export (torch.onnx + an onnxruntime check, imports on first use) takes seconds,
         # 17 s on a loaded 2-core machine: allow it, and keep the response-time check at that bound
         "--request-timeout", "60", "--max-response-time", "60"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)
    report = result.stdout[-6000:]
    assert result.returncode == 0, report + stack.logs()
    assert "passed" in report and "Stateful" in report
