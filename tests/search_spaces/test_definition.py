"""The hwnas.space/1 format: errors name their JSON path; files, YAML, the registry; fbnet as a file."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from latency_tables import LatencyEstimator, shipped_tables
from latency_tables.fit import validation_report
from latency_tables.measurements import SHARED_DATA, read_shared
from search_spaces import (SPACES, SpaceDefinitionError, get_space, load_space_file, parse_space_definition,
                           register_space, resolve_space)

EXAMPLE = json.loads((Path(__file__).parent / "data" / "mbv2-160.json").read_text())


def errors_of(change: dict[str, Any] | None = None, edit=None) -> list[tuple[str, str]]:
    d = copy.deepcopy(EXAMPLE)
    d.update(change or {})
    if edit is not None:
        edit(d)
    with pytest.raises(SpaceDefinitionError) as caught:
        parse_space_definition(d)
    return caught.value.errors


def test_the_issue_example_parses_as_written() -> None:
    space = parse_space_definition(EXAMPLE)
    assert space.dims == [3, 3, 4, 4, 4] and space.size == 576
    assert space.input_shape(1) == (1, 3, 160, 160) and space.num_classes == 100
    arch = "k5_e6_se-skip-k3_e1_g2-k3_e3-skip"
    assert space.decode(space.encode(arch)) == arch
    assert sorted(space.op_signatures(arch)) == sorted([
        "stem:3x160x160->16/s2", "head:40x20x20->640", "k5_e6_se:16x80x80->24/s2", "k3_e1_g2:24x40x40->40/s2",
        "k3_e3:40x20x20->40/s1"])
    # a skip that keeps the shape runs nothing; one that changes it is a 1x1 conv
    assert sorted(space.op_signatures("skip-skip-skip-skip-skip")) == sorted([
        "stem:3x160x160->16/s2", "head:40x20x20->640", "skip:16x80x80->24/s2", "skip:24x40x40->40/s2"])


@pytest.mark.parametrize(("edit", "path", "words"), [
    (lambda d: d["blocks"].update(k7={"op": "fancy"}), "$.blocks.k7.op", "unknown op 'fancy'"),
    (lambda d: d["stages"][1].update(stride=3), "$.stages[1].stride", "must be 1 or 2"),
    (lambda d: d["stages"][0]["choices"].append("k9_e9"), "$.stages[0].choices[3]", "'k9_e9' is not in blocks"),
    (lambda d: d["input"].update(resolution=160.5), "$.input.resolution", "must be an integer"),
    (lambda d: d["input"].update(resolution="160"), "$.input.resolution", "must be an integer"),
    (lambda d: d.update(format="hwnas.space/2"), "$.format", "hwnas.space/1"),
    (lambda d: d.update(type="cells"), "$.type", "must be one of"),
    (lambda d: d.update(name="Bad Name"), "$.name", "lowercase"),
    (lambda d: d["blocks"]["k3_e3"].update(kernel=4), "$.blocks.k3_e3.kernel", "must be odd"),
    (lambda d: d["blocks"]["k3_e3"].update(act="gelu"), "$.blocks.k3_e3.act", "relu, relu6, hswish, swish"),
    (lambda d: d["blocks"]["k3_e3"].update(exapnd=3), "$.blocks.k3_e3.exapnd", "unknown field"),
    (lambda d: d["blocks"].update({"a-b": {"op": "skip"}}), "$.blocks['a-b']", "no '-'"),
    (lambda d: d["stages"][0].update(layers=0), "$.stages[0].layers", "between 1 and"),
    (lambda d: d.pop("num_classes"), "$.num_classes", "is required"),
    (lambda d: d.update(stages=[]), "$.stages", "non-empty list"),
    (lambda d: d["blocks"]["k3_e1_g2"].update(groups=3), "$.stages[1].choices[2]", "does not divide"),
    (lambda d: d["stem"].update(channels=10**6), "$.stem.channels", "between 1 and 4096"),
])
def test_each_error_names_its_json_path(edit, path: str, words: str) -> None:
    errors = errors_of(edit=edit)
    assert any(p == path and words in m for p, m in errors), errors


def test_every_error_is_reported_at_once() -> None:
    def many(d: dict[str, Any]) -> None:
        d["stages"][1]["stride"] = 0
        d["input"]["resolution"] = 1.5
        d["blocks"]["skip"]["op"] = "identity"

    paths = [p for p, _ in errors_of(edit=many)]
    assert {"$.stages[1].stride", "$.input.resolution", "$.blocks.skip.op"} <= set(paths)


def test_work_is_bounded() -> None:
    def huge(d: dict[str, Any]) -> None:
        d["input"]["resolution"] = 1024
        d["stages"] = [{"channels": 4096, "stride": 1, "layers": 8, "choices": ["k5_e6_se"]}]
        d["blocks"]["k5_e6_se"]["expand"] = 16

    assert any("at most" in m for _, m in errors_of(edit=huge))
    flood = errors_of(edit=lambda d: d["stages"][0].update(choices=[f"x{i}" for i in range(10_000)]))
    assert len(flood) <= 51 and any("at most 64 choices" in m for _, m in flood)
    stages = errors_of(edit=lambda d: d.update(stages=[{"stride": 5}] * 1000))
    assert len(stages) == 51 and stages[-1][1].startswith("... and")
    with pytest.raises(SpaceDefinitionError):
        parse_space_definition([1, 2, 3])


def test_files_json_and_yaml_and_resolve(tmp_path: Path) -> None:
    yaml = pytest.importorskip("yaml")
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(EXAMPLE))
    assert load_space_file(tmp_path / "s.yaml").content_hash == parse_space_definition(EXAMPLE).content_hash
    (tmp_path / "bad.json").write_text('{"format": ')
    with pytest.raises(SpaceDefinitionError) as caught:
        load_space_file(tmp_path / "bad.json")
    assert caught.value.errors[0][0] == "$" and "not valid JSON" in caught.value.errors[0][1]
    assert caught.value.source == str(tmp_path / "bad.json")
    good = tmp_path / "mine.json"
    good.write_text(json.dumps(EXAMPLE))
    assert resolve_space(str(good)).name == "mbv2-160"
    assert resolve_space("nb201") is get_space("nb201")
    with pytest.raises(KeyError, match="valid: "):
        resolve_space("nope")
    with pytest.raises(SpaceDefinitionError):
        resolve_space(str(tmp_path / "missing.json"))


def test_register_refuses_another_definition_under_a_taken_name() -> None:
    space = parse_space_definition(EXAMPLE)
    other = parse_space_definition({**EXAMPLE, "num_classes": 10})
    register_space(space)
    try:
        register_space(space)  # the same again: fine
        with pytest.raises(ValueError, match="already registered"):
            register_space(other)
        assert register_space(other, replace=True) is SPACES["mbv2-160"] is other
    finally:
        SPACES.pop("mbv2-160")


def test_fbnet_is_a_definition_file_keying_the_shipped_tables_unchanged() -> None:
    """The 14 fbnet tables were fitted with the former code space: their keys are exactly the
    file space's vocabulary, and its predictions on the shared measurements reproduce each
    table's stored held-out validation (computed by the former code)."""
    space = get_space("fbnet")
    assert space.definition()["type"] == "blocks"
    tables = shipped_tables("fbnet")
    assert len(tables) == 14
    vocabulary = space.all_op_signatures()
    assert len(vocabulary) == 104
    path = SHARED_DATA / "fbnet_hw.csv"
    if not path.is_file():
        pytest.fail(f"{path} is missing: the measured tables live in ../shared/data beside the checkout")
    archs, columns = read_shared(space, path)
    order = np.random.default_rng(0).permutation(len(archs))  # latency_tables.ship: seed 0, 1000 fit rows
    held_out = order[1000:]
    codes = np.stack([space.encode(archs[i]) for i in held_out])
    for table in tables:
        table.check_space()
        assert set(table.entries) == set(vocabulary), table.device_name
        predicted = LatencyEstimator(table, space).predict_codes(codes)
        report = validation_report(predicted, columns[table.device_name][held_out])
        for key in ("n", "within_5pct", "within_10pct", "mape", "kendall_tau"):
            assert report[key] == pytest.approx(table.validation[key], rel=1e-9, abs=1e-12), (table.device_name, key)
