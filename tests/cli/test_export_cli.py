"""`hwnas export` against a server and locally, and `hwnas tables measure-export`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import torch
from hwnas_client import Client
from typer.testing import CliRunner

from hwnas.cli.main import app

from nas.export.codegen import config_for
from search_spaces import get_space
from tests.conftest import ROOT, Service, hwnas_cmd

FBNET = "-".join(["k3_e1_g2", "skip", "k5_e6", "k3_e3"] * 5 + ["skip", "k5_e1"])
NB201 = "|nor_conv_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|none~0|nor_conv_1x1~1|nor_conv_3x3~2|"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(hwnas_cmd(*args), cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**(env or {}), "COLUMNS": "200"} if env else None)


def test_local_export_with_weights_then_measure_it(tmp_path: Path) -> None:
    weights = tmp_path / "trained.pt"
    torch.save(get_space("fbnet").build_model(FBNET, **config_for(get_space("fbnet")).kwargs).state_dict(), weights)
    out = tmp_path / "fbnet-torch"
    done = run("export", "--space", "fbnet", "--arch", FBNET, "--format", "torch", "--out", str(out),
               "--weights", str(weights), "--seed", "4")
    assert done.returncode == 0, done.stderr
    assert f"wrote {out}: model.py, weights.pt, manifest.json" in done.stdout
    assert "weights: trained" in done.stdout and "pixel3" in done.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 4 and manifest["space"] == "fbnet"

    measured = run("tables", "measure-export", str(out), "--rounds", "3", "--table", "pixel3")
    assert measured.returncode == 0, measured.stderr
    assert "measured" in measured.stdout and "pytorch" in measured.stdout
    pixel3 = next(d for d in manifest["latency"]["devices"] if d["name"] == "pixel3")
    assert "pixel3 (--table)" in measured.stdout and f"{pixel3['predicted_latency_ms']:.3f}" in measured.stdout


def test_local_export_refusals_are_messages_not_tracebacks(tmp_path: Path) -> None:
    cases = [
        (("--space", "nb201", "--arch", "|nope~0|"), "not a nb201 architecture"),
        (("--space", "nb201", "--arch", NB201, "--format", "tflite"), "--format must be one of"),
        (("--space", "mnas", "--arch", NB201), "unknown search space 'mnas'"),
        (("--space", "nb201"), "needs both --space and --arch"),
        (("job-1", "3", "--space", "nb201", "--arch", NB201), "give either JOB TRIAL"),
        (("--space", "fbnet", "--arch", FBNET, "--weights", str(tmp_path / "missing.pt")), "cannot read a state_dict"),
    ]
    runner = CliRunner()  # in-process: the same code path as the console script, without 7 interpreter starts
    for args, message in cases:
        done = runner.invoke(app, ["export", *args, "--out", str(tmp_path / "x")])
        assert done.exit_code == 1, (args, done.output)
        assert message in done.stderr, (args, done.stderr)
        assert done.exception is None or isinstance(done.exception, SystemExit), (args, done.exception)
    done = runner.invoke(app, ["tables", "measure-export", str(tmp_path)])
    assert done.exit_code == 1 and "not an hwnas export manifest" in done.stderr


def test_export_from_a_server(embedded_server: Service, tmp_path: Path) -> None:
    spec = {"space": "nb201", "budget": {"evaluations": 2}, "seed": 9,
            "objectives": [{"metric": "accuracy", "goal": "maximize"},
                           {"metric": "latency_ms", "device": "raspi4", "goal": "minimize"}],
            "evaluator": {"type": "command", "command": "echo '{\"accuracy\": 1}'"}}
    with Client(embedded_server.url) as client:
        job = client.wait(client.submit(spec).id, timeout=60, poll=0.2)
        trial = client.trials(job.id)[0]
    out = tmp_path / "from-server"
    done = run("export", job.id, str(trial.id), "--format", "onnx", "--out", str(out), "--url", embedded_server.url,
               env=embedded_server.env)
    assert done.returncode == 0, done.stderr
    assert "max abs diff" in done.stdout and "raspi4 *" in done.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "model.onnx"]
    assert manifest["arch"] == trial.arch and manifest["seed"] == 9 and manifest["job"]["id"] == job.id
    assert manifest["onnx"]["max_abs_diff"] <= 1e-4

    missing = run("export", job.id, "999999", "--out", str(tmp_path / "y"), "--url", embedded_server.url,
                  env=embedded_server.env)
    assert missing.returncode == 1 and "404" in missing.stderr and "no trial 999999" in missing.stderr
