"""`hwnas search`: the flags other tools call, with a benchmark CSV or a command evaluator."""

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, hwnas_cmd


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(hwnas_cmd(*args), cwd=cwd, capture_output=True, text=True, timeout=300)


def test_benchmark_search_writes_evaluated_and_front(nb201_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    result = run("search", "--space", "nb201", "--benchmark", str(nb201_csv), "--metric", "cifar10_acc",
                 "--device", "pixel3", "--strategy", "evolution", "--budget", "200", "--seed", "0",
                 "--json", str(out))
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    assert data["job"]["evaluated"] == len(data["evaluated"]) == 200
    evaluated = {e["arch"]: e for e in data["evaluated"]}
    assert data["pareto"] and all(p["arch"] in evaluated for p in data["pareto"])
    for p in data["pareto"]:
        assert set(p) >= {"arch", "accuracy", "latency_ms"}
        assert not any(e["accuracy"] >= p["accuracy"] and e["latency_ms"] <= p["latency_ms"]
                       and (e["accuracy"], e["latency_ms"]) != (p["accuracy"], p["latency_ms"])
                       for e in data["evaluated"])
    assert "Pareto front" in result.stdout


def test_command_evaluator_is_called_once_per_evaluation(tmp_path: Path) -> None:
    calls = tmp_path / "calls.txt"
    script = tmp_path / "my_eval.py"
    script.write_text("import json, sys, zlib\n"
                      f"open({str(calls)!r}, 'a').write(sys.argv[1] + '\\n')\n"
                      "print(json.dumps({'accuracy': zlib.crc32(sys.argv[1].encode()) % 1000 / 10}))\n")
    table = ROOT / "latency_tables" / "data" / "nb201__raspi4.json"
    out = tmp_path / "out.json"
    result = run("search", "--space", "nb201", "--latency-table", str(table),
                 "--evaluator-cmd", f"{sys.executable} my_eval.py {{arch}}", "--budget", "25", "--seed", "4",
                 "--strategy", "random", "--json", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    called = calls.read_text().split()
    assert len(called) == 25 == len(data["evaluated"])
    assert sorted(called) == sorted(e["arch"] for e in data["evaluated"])
    assert {p["arch"] for p in data["pareto"]} <= set(called)


def test_mistakes_get_a_message_not_a_traceback(tmp_path: Path) -> None:
    result = run("search", "--space", "nb201", "--device", "toaster", "--evaluator-cmd", "true")
    assert result.returncode == 1
    assert "toaster" in result.stderr and "pixel3" in result.stderr and "Traceback" not in result.stderr
    result = run("search", "--device", "pixel3")
    assert result.returncode == 1 and "--benchmark" in result.stderr
    result = run("search", "--device", "pixel3", "--benchmark", str(tmp_path / "missing.csv"))
    assert result.returncode == 1 and "no such file" in result.stderr and "Traceback" not in result.stderr
