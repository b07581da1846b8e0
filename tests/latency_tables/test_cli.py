"""``hwnas tables`` end to end on files: fit, predict, validate, list, show, and clean errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from hwnas.cli.main import app
from latency_tables.measurements import read_shared
from search_spaces import get_space

runner = CliRunner()


@pytest.fixture(scope="module")
def measured(nb201_csv: Path, tmp_path_factory) -> tuple[Path, Path]:
    """30 rows of raspi4 to fit on, 200 others to validate against."""
    space = get_space("nb201")
    archs, columns = read_shared(space, nb201_csv)
    order = np.random.default_rng(7).permutation(len(archs))
    folder = tmp_path_factory.mktemp("m")
    paths = []
    for name, rows in (("fit.csv", order[:30]), ("check.csv", order[30:230])):
        with open(folder / name, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["arch", "latency_ms"])
            w.writerows((archs[i], columns["raspi4"][i]) for i in rows)
        paths.append(folder / name)
    return paths[0], paths[1]


def test_fit_predict_validate(measured: tuple[Path, Path], tmp_path: Path) -> None:
    fit_csv, check_csv = measured
    out = tmp_path / "t.json"
    result = runner.invoke(app, ["tables", "fit", "--space", "nb201", "--device", "my_pi",
                                 "--measurements", str(fit_csv), "--out", str(out)], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "115 entries for 'my_pi' (nb201) from 30 rows" in result.output
    assert json.loads(out.read_text())["device"]["name"] == "my_pi"

    pred = tmp_path / "p.csv"
    result = runner.invoke(app, ["tables", "predict", "--table", str(out), "--archs", str(check_csv),
                                 "--out", str(pred)], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(pred.open()))
    assert len(rows) == 200 and set(rows[0]) == {"arch", "latency_ms"} and float(rows[0]["latency_ms"]) > 0

    result = runner.invoke(app, ["tables", "validate", "--table", str(out), "--measurements", str(check_csv)],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    n, _, within_10, _, tau, rho = result.output.strip().splitlines()[-2].strip("│ ").split("│")
    assert int(n) == 200 and float(tau) > 0.75 and float(rho) > 0.9


def test_list_and_show_shipped(tmp_path: Path) -> None:
    result = runner.invoke(app, ["tables", "list", "--space", "fbnet"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and result.output.count("fbnet") == 14
    result = runner.invoke(app, ["tables", "show", "nb201:pixel3"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and '"runtime": "tflite"' in result.output and "kendall_tau" in result.output


@pytest.mark.parametrize(("args", "message"), [
    (["fit", "--space", "darts", "--device", "d", "--measurements", "m.csv", "--out", "t.json"], "unknown search space"),
    (["fit", "--space", "nb201", "--device", "d", "--measurements", "missing.csv", "--out", "t.json"], "cannot read"),
    (["validate", "--table", "no-such-device", "--measurements", "m.csv"], "no such file or shipped device"),
    (["show", "raspi4"], "shipped for several spaces"),
])
def test_errors_are_one_clean_line(args: list[str], message: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.csv").write_text("arch,latency_ms\nnot-an-arch,1\n")
    result = runner.invoke(app, ["tables", *args], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output


def test_bad_measurement_row_is_named(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_text("arch,latency_ms\n" + "-".join(["skip"] * 22) + ",fast\n")
    result = runner.invoke(app, ["tables", "fit", "--space", "fbnet", "--device", "d", "--measurements",
                                 str(tmp_path / "m.csv"), "--out", str(tmp_path / "t.json")], env={"COLUMNS": "200"})
    assert result.exit_code == 1 and "line 2: latency_ms 'fast' is not a number" in result.output
