"""Energy entries in the table format, and ``hwnas tables fit|predict|validate --metric energy_mj``."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from hwnas.cli.main import app
from latency_tables import LatencyEstimator, load_table, shipped_tables
from latency_tables.table import LatencyTable, MissingEntry, TableError
from search_spaces import get_space
from search_spaces.metrics import static_metrics_of

runner = CliRunner()


def _eyeriss() -> LatencyTable:
    return next(t for t in shipped_tables("nb201") if t.device_name == "eyeriss")


def _energy(archs: list[str]) -> np.ndarray:
    """Synthetic but op-additive: 5 mJ per GMAC plus 0.5 mJ per ms of eyeriss latency."""
    space = get_space("nb201")
    return 5e-9 * static_metrics_of(space, archs, ["macs"])["macs"] + 0.5 * LatencyEstimator(_eyeriss(), space).predict(archs)


def _write(path: Path, archs: list[str], values: np.ndarray | None) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["arch"] if values is None else ["arch", "energy_mj"])
        w.writerows([a] if values is None else [a, f"{v:.6f}"] for a, v in zip(archs, values if values is not None else archs))
    return path


def test_energy_round_trips_and_is_validated() -> None:
    data = _eyeriss().to_dict()
    first = next(iter(data["entries"]))
    data["entries"][first]["energy_mj"] = 0.25
    table = LatencyTable.from_dict(json.loads(json.dumps(data)))
    assert table.entries[first].energy_mj == 0.25
    assert not table.has_metric("energy_mj")  # only one entry has energy
    with pytest.raises(MissingEntry):
        LatencyEstimator(table, get_space("nb201"), "energy_mj")
    data["entries"][first]["energy_mj"] = -1
    with pytest.raises(TableError) as err:
        LatencyTable.from_dict(data)
    assert err.value.entry == f"entries.{first}.energy_mj"


def test_fit_predict_validate_energy(tmp_path: Path) -> None:
    space = get_space("nb201")
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(260)]
    energy = _energy(archs)
    fit_csv = _write(tmp_path / "fit.csv", archs[:60], energy[:60])
    check_csv = _write(tmp_path / "check.csv", archs[60:], energy[60:])
    out = tmp_path / "eyeriss.json"
    result = runner.invoke(app, ["tables", "fit", "--space", "nb201", "--device", "eyeriss", "--measurements",
                                 str(fit_csv), "--out", str(out), "--metric", "energy_mj"])
    assert result.exit_code == 0, result.output
    table = load_table(out)
    assert table.has_metric("energy_mj")
    # the latency entries of the shipped table are kept
    assert {k: e.mean for k, e in table.entries.items()} == {k: e.mean for k, e in _eyeriss().entries.items()}
    predicted = LatencyEstimator(table, space, "energy_mj").predict(archs[60:])
    assert np.median(np.abs(predicted - energy[60:]) / energy[60:]) < 0.05
    archs_csv = _write(tmp_path / "archs.csv", archs[60:70], None)
    result = runner.invoke(app, ["tables", "predict", "--table", str(out), "--archs", str(archs_csv),
                                 "--out", str(tmp_path / "p.csv"), "--metric", "energy_mj"])
    assert result.exit_code == 0, result.output
    with open(tmp_path / "p.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 10 and float(rows[0]["energy_mj"]) == pytest.approx(predicted[0], rel=1e-4)
    result = runner.invoke(app, ["tables", "validate", "--table", str(out), "--measurements", str(check_csv),
                                 "--metric", "energy_mj"])
    assert result.exit_code == 0, result.output
    assert "kendall_tau" in result.output


def test_energy_of_a_table_without_it_is_a_clean_error(tmp_path: Path) -> None:
    archs_csv = _write(tmp_path / "archs.csv", [get_space("nb201").sample(np.random.default_rng(0))], None)
    result = runner.invoke(app, ["tables", "predict", "--table", "nb201:eyeriss", "--archs", str(archs_csv),
                                 "--out", str(tmp_path / "p.csv"), "--metric", "energy_mj"])
    assert result.exit_code == 1 and "energy_mj" in result.output
    result = runner.invoke(app, ["tables", "predict", "--table", "nb201:eyeriss", "--archs", str(archs_csv),
                                 "--out", str(tmp_path / "p.csv"), "--metric", "power"])
    assert result.exit_code == 1 and "unknown --metric" in result.output
