"""The contract other tools rely on: with --evaluator-cmd, every evaluation counted against the
budget is exactly one call of the command, and `pareto` lists only evaluated architectures."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hwnas.cli.main import app
from latency_tables.table import SHIPPED_DIR
from nas.strategies import STRATEGIES

EVALUATOR = """
import json, sys, zlib
arch = sys.argv[1]
with open(sys.argv[2], "a") as fh:
    fh.write(arch + "\\n")
h = zlib.crc32(arch.encode())
if h % 5 == 0:
    sys.exit("deliberate failure")  # some calls fail: they still count, once each
print(json.dumps({"accuracy": 50 + h % 4000 / 100}))
"""


# (differentiable strategies derive one architecture per latency weight: tests/nas/test_differentiable*.py)
@pytest.mark.parametrize("strategy", sorted(n for n, s in STRATEGIES.items() if not s.differentiable))
def test_one_command_call_per_counted_evaluation(strategy: str, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "evaluate.py").write_text(EVALUATOR)
    calls, out, budget = tmp_path / "calls.txt", tmp_path / "out.json", 13
    result = CliRunner().invoke(app, [
        "search", "--space", "nb201", "--latency-table", str(SHIPPED_DIR / "nb201__pixel3.json"),
        "--evaluator-cmd", f"{sys.executable} evaluate.py {{arch}} {calls}", "--budget", str(budget),
        "--seed", "3", "--strategy", strategy, "--json", str(out)])
    assert result.exit_code == 0, result.output
    payload = json.loads(out.read_text())
    called = calls.read_text().splitlines()
    evaluated = [t["arch"] for t in payload["evaluated"]]
    assert payload["job"]["evaluated"] == budget == len(evaluated) == len(called)
    assert sorted(called) == sorted(evaluated)
    assert any(t["status"] == "failed" for t in payload["evaluated"])
    ok = {t["arch"] for t in payload["evaluated"] if t["status"] == "completed"}
    assert payload["pareto"] and {p["arch"] for p in payload["pareto"]} <= ok
