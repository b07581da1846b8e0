"""`hwnas bench` end to end on the measured nb201 table, tiny: one device, one seed, a few evaluations."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from hwnas.cli.main import app
from nas.bench import BASELINES


def test_bench_tiny_run_prints_both_tables_and_writes_every_run(nb201_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(app, ["bench", "--benchmark", str(nb201_csv), "--device", "pixel3",
                                      "--strategy", "default", "--strategy", "rl", "--seeds", "2",
                                      "--budget", "12", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "hypervolume regret" in result.output and "best accuracy under latency limits" in result.output
    for label in ("default", "rl", "Optuna TPE", "Optuna NSGA-II", "random", "engine ms/eval"):
        assert label in result.output
    payload = json.loads(out.read_text())
    runs = payload["runs"]
    assert {r["strategy"] for r in runs} == {"default", "rl", *BASELINES}
    assert len(runs) == (2 + len(BASELINES)) * 2
    assert all(r["evaluated"] == 12 and 0.0 <= r["regret"] < 1.0 for r in runs)
    truth = payload["truths"]["pixel3"]
    assert truth["best_under"] == sorted(truth["best_under"])  # looser limits never lose accuracy
    for r in runs:  # nothing found can beat the space's best under the same limit
        assert all(f != f or f <= b for f, b in zip(r["best_under"], truth["best_under"]))


def test_bench_rejects_unknown_strategy(nb201_csv: Path) -> None:
    result = CliRunner().invoke(app, ["bench", "--benchmark", str(nb201_csv), "--strategy", "nope"])
    assert result.exit_code == 1
    assert "unknown strategy nope" in result.output
