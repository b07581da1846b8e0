"""``hwnas spaces list|show|validate`` and ``hwnas search --space FILE.json`` (with and without --spec)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from hwnas.cli.main import app
from tests.spaces_helpers import BROKEN, MBV2, MBV2_SIZE, latency_table, space_of

runner = CliRunner()
#: A command evaluator scoring an architecture by its string (deterministic, no training).
EVAL = f"{sys.executable} -c \"import json, sys, zlib; print(json.dumps({{'accuracy': zlib.crc32(sys.argv[1].encode()) % 97}}))\" {{arch}}"


def write(path: Path, obj: Any) -> Path:
    path.write_text(json.dumps(obj))
    return path


def test_validate_prints_the_size_and_every_signature(tmp_path: Path) -> None:
    result = runner.invoke(app, ["spaces", "validate", str(write(tmp_path / "mbv2.json", MBV2))])
    assert result.exit_code == 0, result.output
    space = space_of(MBV2)
    assert f"architectures  {MBV2_SIZE:,}" in result.output
    assert f"op signatures  {len(space.all_op_signatures())}" in result.output
    assert all(sig in result.output for sig in space.all_op_signatures())
    assert space.content_hash in result.output


@pytest.mark.parametrize(("what", "definition", "path"), BROKEN, ids=[b[0] for b in BROKEN])
def test_validate_names_the_json_path_of_each_error(tmp_path: Path, what: str, definition: dict[str, Any],
                                                    path: str) -> None:
    result = runner.invoke(app, ["spaces", "validate", str(write(tmp_path / "bad.json", definition))])
    assert result.exit_code == 1
    assert f"{path}: " in result.output and "invalid search space definition" in result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)


def test_validate_an_unreadable_file(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text("{not json")
    result = runner.invoke(app, ["spaces", "validate", str(tmp_path / "x.json")])
    assert result.exit_code == 1 and "$: not valid JSON" in result.output


def test_list_and_show() -> None:
    listed = runner.invoke(app, ["spaces", "list"])
    assert listed.exit_code == 0 and "nb201" in listed.output and "15,625" in listed.output
    shown = runner.invoke(app, ["spaces", "show", "nb201"])
    assert shown.exit_code == 0 and "architectures  15,625" in shown.output
    unknown = runner.invoke(app, ["spaces", "show", "nope"])
    assert unknown.exit_code == 1 and "unknown search space 'nope'" in unknown.output


def test_search_on_a_definition_file(tmp_path: Path) -> None:
    space = space_of(MBV2)
    definition = write(tmp_path / "mbv2.json", MBV2)
    table = write(tmp_path / "t.json", latency_table(space))
    out = tmp_path / "out.json"
    result = runner.invoke(app, ["search", "--space", str(definition), "--latency-table", str(table),
                                 "--evaluator-cmd", EVAL, "--budget", "5", "--seed", "2", "--json", str(out)])
    assert result.exit_code == 0, result.output
    payload = json.loads(out.read_text())
    assert payload["job"]["spec"]["space"] == "mbv2-160"
    assert payload["job"]["spec"]["space_hash"] == space.content_hash
    assert len(payload["evaluated"]) == 5
    assert all(space.normalize(e["arch"]) == e["arch"] and len(e["arch"].split("-")) == 5
               for e in payload["evaluated"])

    # the same through --spec: the spec names the space, --space brings its definition
    spec = {"space": "mbv2-160", "budget": {"evaluations": 5}, "seed": 2,
            "objectives": [{"metric": "accuracy", "goal": "maximize"},
                           {"metric": "latency_ms", "device": "toyboard", "goal": "minimize"}],
            "evaluator": {"type": "command", "command": EVAL}}
    out2 = tmp_path / "out2.json"
    result = runner.invoke(app, ["search", "--spec", str(write(tmp_path / "job.json", spec)), "--space",
                                 str(definition), "--latency-table", str(table), "--json", str(out2)])
    assert result.exit_code == 0, result.output
    assert [e["arch"] for e in json.loads(out2.read_text())["evaluated"]] == [e["arch"] for e in payload["evaluated"]]

    # without the definition the spec's space is unknown: said, no traceback
    result = runner.invoke(app, ["search", "--spec", str(tmp_path / "job.json"), "--latency-table", str(table)])
    assert result.exit_code == 1 and "space: unknown search space 'mbv2-160'" in result.output


def test_search_on_a_broken_definition_file(tmp_path: Path) -> None:
    what, definition, path = BROKEN[1]
    result = runner.invoke(app, ["search", "--space", str(write(tmp_path / "bad.json", definition)),
                                 "--device", "pixel3", "--evaluator-cmd", EVAL])
    assert result.exit_code == 1 and f"{path}: must be 1 or 2" in result.output
