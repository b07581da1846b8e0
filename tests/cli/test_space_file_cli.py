"""`--space FILE.json` on `hwnas tables fit|predict|validate|profile` and `hwnas export`: a definition
file nobody registered goes from a table to an ONNX export measured on this machine."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from hwnas.cli.main import app
from search_spaces import SPACES, load_space_file
from search_spaces.metrics import static_metrics_of

DEFINITION = Path(__file__).parents[1] / "search_spaces" / "data" / "mbv2-160.json"


@pytest.fixture(autouse=True)
def one_thread():
    """In-process commands on small networks: more threads only contend on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def invoke(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def test_a_definition_file_through_fit_predict_validate_export_and_measure(tmp_path: Path) -> None:
    assert "mbv2-160" not in SPACES
    space = load_space_file(DEFINITION)
    archs = [space.sample(np.random.default_rng(i)) for i in range(12)]
    # a stand-in device whose latency is its MAC count in millions (what the fit must recover)
    ms = static_metrics_of(space, archs, ["macs"])["macs"] / 1e6
    rows = tmp_path / "m.csv"
    with open(rows, "w", newline="") as fh:
        csv.writer(fh).writerows([["arch", "latency_ms"], *zip(archs, ms)])
    table = tmp_path / "t.json"
    done = invoke("tables", "fit", "--space", str(DEFINITION), "--device", "macs-dev", "--measurements", str(rows),
                  "--out", str(table))
    assert done.exit_code == 0, done.output
    assert json.loads(table.read_text())["space"] == "mbv2-160"
    done = invoke("tables", "validate", "--table", str(table), "--space", str(DEFINITION),
                  "--measurements", str(rows))
    assert done.exit_code == 0, done.output
    out = tmp_path / "p.csv"
    done = invoke("tables", "predict", "--table", str(table), "--space", str(DEFINITION), "--archs", str(rows),
                  "--out", str(out))
    assert done.exit_code == 0, done.output
    with open(out) as fh:
        predicted = [float(r["latency_ms"]) for r in csv.DictReader(fh)]
    assert np.allclose(predicted, ms, rtol=0.05)

    export = tmp_path / "onnx"
    done = invoke("export", "--space", str(DEFINITION), "--arch", archs[0], "--format", "onnx", "--out", str(export),
                  "--latency-table", str(table))
    assert done.exit_code == 0, done.output
    manifest = json.loads((export / "manifest.json").read_text())
    assert manifest["space_content_hash"] == space.content_hash
    assert manifest["model"]["input_shape"] == [1, 3, 160, 160]
    assert abs(manifest["latency"]["devices"][0]["predicted_latency_ms"] - predicted[0]) <= 1e-5 * predicted[0]
    done = invoke("tables", "measure-export", str(export), "--rounds", "2", "--table", str(table))
    assert done.exit_code == 0, done.output
    assert "measured" in done.output and "macs-dev (--table)" in done.output
    assert "mbv2-160" not in SPACES  # nothing registered behind the user's back


def test_a_bad_file_is_each_error_with_its_path_not_a_traceback(tmp_path: Path) -> None:
    bad = json.loads(DEFINITION.read_text())
    bad["stages"][1]["stride"] = 3
    bad["input"]["resolution"] = "160px"
    bad["stages"][0]["choices"].append("k9")
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    for args in (("tables", "profile", "--space", str(path), "--out", str(tmp_path / "t.json")),
                 ("export", "--space", str(path), "--arch", "x", "--format", "json", "--out", str(tmp_path / "e"))):
        done = invoke(*args)
        assert done.exit_code == 1
        assert "$.stages[1].stride: must be 1 or 2" in done.output
        assert "$.input.resolution: must be an integer" in done.output
        assert "$.stages[0].choices[3]: 'k9' is not in blocks" in done.output
        assert "Traceback" not in done.output
