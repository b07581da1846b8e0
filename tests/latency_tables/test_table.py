"""The table file format: round trip, and every way a table is refused names the entry at fault."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from latency_tables.table import FORMAT, LatencyTable, MissingEntry, TableError, load_table, save_table, shipped_tables
from search_spaces import SPACES


def small_table() -> dict:
    return {"format": FORMAT, "device": {"name": "dev", "kind": "cpu"}, "space": "fbnet",
            "entries": {"a": {"mean": 1.5, "std": 0.1, "count": 3}, "b": {"mean": 0.0}},
            "corrections": {"intercept_ms": 0.25}, "provenance": {"method": "test"},
            "validation": {"n": 3, "kendall_tau": 1.0}}


def test_round_trip(tmp_path: Path) -> None:
    table = LatencyTable.from_dict(small_table())
    save_table(table, tmp_path / "t.json")
    again = load_table(tmp_path / "t.json")
    assert again.to_dict() == table.to_dict()
    assert again.entries["a"].mean == 1.5 and again.entries["b"].count == 1 and again.intercept == 0.25


@pytest.mark.parametrize(("mutate", "entry"), [
    (lambda d: d.update(format="hwnas.latency_table/1"), "format"),
    (lambda d: d.update(format="other"), "format"),
    (lambda d: d["device"].pop("name"), "device.name"),
    (lambda d: d.update(entries={}), "entries"),
    (lambda d: d["entries"]["a"].update(mean=-1.0), "entries.a"),
    (lambda d: d["entries"]["a"].update(mean=math.nan), "entries.a.mean"),
    (lambda d: d["entries"]["a"].update(std=math.inf), "entries.a.std"),
    (lambda d: d["entries"]["a"].update(mean="fast"), "entries.a.mean"),
    (lambda d: d["entries"]["a"].update(count=0), "entries.a.count"),
    (lambda d: d["corrections"].update(intercept_ms=math.nan), "corrections.intercept_ms"),
])
def test_bad_tables_are_refused_naming_the_entry(mutate, entry: str) -> None:
    data = small_table()
    mutate(data)
    with pytest.raises(TableError) as info:
        LatencyTable.from_dict(json.loads(json.dumps(data, allow_nan=True)))
    assert info.value.entry == entry


def test_check_space_names_the_first_missing_signature() -> None:
    table = LatencyTable.from_dict(small_table())
    with pytest.raises(MissingEntry) as info:
        table.check_space()
    assert info.value.entry == f"entries.{SPACES['fbnet'].all_op_signatures()[0]}"
    table.space = "nope"
    with pytest.raises(TableError) as info:
        table.check_space()
    assert info.value.entry == "space"


def test_not_json(tmp_path: Path) -> None:
    (tmp_path / "t.json").write_text("{")
    with pytest.raises(TableError, match="not JSON"):
        load_table(tmp_path / "t.json")


def test_shipped_tables_cover_14_devices_per_space_with_validation() -> None:
    tables = shipped_tables()
    for space in ("nb201", "fbnet"):
        mine = [t for t in tables if t.space == space]
        assert len(mine) == 14
        for t in mine:
            t.check_space()
            assert t.provenance["source"] and t.provenance["date"] and t.provenance["method"]
            assert t.validation["n"] >= 1000 and t.validation["held_out"]
            assert 0.5 < t.validation["kendall_tau"] <= 1.0
