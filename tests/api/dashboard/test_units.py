"""The dashboard's pure parts: plot axes, job rows, cell diagrams, predictions, CSV."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from pathlib import Path

import pytest

from api.dashboard.architecture import diagram_svg, predicted_latencies
from api.dashboard.exports import trials_csv
from api.dashboard.jobrows import JobRow, age, arrange
from api.dashboard.series import plot_axes
from latency_tables import LatencyEstimator, shipped_tables
from nas.spec import JobSpec
from search_spaces import get_space
from storage.models import Trial

SPEC = JobSpec.model_validate({
    "space": "nb201", "budget": {"evaluations": 10},
    "objectives": [{"metric": "accuracy", "goal": "maximize"},
                   {"metric": "latency_ms", "device": "pixel3", "goal": "minimize"}],
    "constraints": [{"metric": "latency_ms", "device": "pixel3", "max": 8.0},
                    {"metric": "accuracy", "min": 10.0}],
    "evaluator": {"type": "benchmark", "table": "t", "metric": "m"}})


def test_plot_axes_have_one_panel_per_device_and_the_tightest_limits() -> None:
    spec = SPEC.model_copy(update={"constraints": [*SPEC.constraints, SPEC.constraints[0].model_copy(update={"max": 6.0})]})
    axes = plot_axes(spec)
    assert axes["y"] == "accuracy"
    assert [p["x"] for p in axes["panels"]] == ["latency_ms@pixel3"]
    assert axes["limits"] == {"latency_ms@pixel3": {"max": 6.0}, "accuracy": {"min": 10.0}}


def _row(name: str, status: str, best: float | None, created: dt.datetime) -> JobRow:
    return JobRow(id=name, name=name, status=status, evaluated=1, failed=0, budget=2, fraction=0.5,
                  best_key="accuracy", best_value=best, hypervolume=None, devices=["pixel3"],
                  strategy="random", created_at=created, cancel_requested=False)


def test_arrange_filters_sorts_and_keeps_missing_values_last() -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    rows = [_row("a", "running", 70.0, now), _row("b", "queued", None, now - dt.timedelta(hours=1)),
            _row("c", "succeeded", 90.0, now - dt.timedelta(days=2))]
    assert [r.id for r in arrange(rows, sort="best", descending=True)] == ["c", "a", "b"]
    assert [r.id for r in arrange(rows, sort="best", descending=False)] == ["a", "c", "b"]
    assert [r.id for r in arrange(rows, sort="created", descending=False)] == ["c", "b", "a"]
    assert [r.id for r in arrange(rows, query="C")] == ["c"]
    assert [r.id for r in arrange(rows, query="pixel3")] == ["a", "b", "c"]
    assert age(now - dt.timedelta(days=2, hours=3), now) == "2d"
    assert age((now - dt.timedelta(seconds=95)).replace(tzinfo=None), now) == "1m"


def test_nb201_diagram_draws_six_labelled_edges_and_marks_dead_ones() -> None:
    space = get_space("nb201")
    arch = "|nor_conv_1x1~0|+|none~0|none~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
    svg = diagram_svg(space, arch)
    edges = re.findall(r'data-edge="(\d-\d)" data-op="([a-z_0-9]+)" data-live="(true|false)"', svg)
    assert edges == [("0-1", "nor_conv_1x1", "true"), ("0-2", "none", "false"), ("1-2", "none", "false"),
                     ("0-3", "skip_connect", "true"), ("1-3", "nor_conv_3x3", "true"),
                     ("2-3", "skip_connect", "false")]
    assert svg.count("<circle") == 4


def test_predicted_latencies_are_the_estimators_and_bad_tables_are_reported() -> None:
    space = get_space("nb201")
    arch = space.decode([3, 1, 2, 0, 4, 3])
    tables = [t for t in shipped_tables() if t.space == "nb201"]
    broken = tables[0].to_dict()
    broken["entries"].pop(next(iter(broken["entries"])))
    got = predicted_latencies(space, arch, [t.to_dict() for t in tables] + [broken])
    assert len(got) == len(tables) + 1
    for table, p in zip(tables, got, strict=False):
        assert p.device == table.device_name
        assert p.latency_ms == pytest.approx(float(LatencyEstimator(table, space).predict([arch])[0]))
    assert got[-1].latency_ms is None and "no entry" in (got[-1].error or "")


def test_trials_csv_has_a_column_per_metric_key() -> None:
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    trials = [Trial(seq=0, arch="a", arch_hash="h0", status="completed", metrics={"accuracy": 91.5, "latency_ms@pixel3": 3.0},
                    error=None, started_at=t0, finished_at=t0, duration_s=0.5),
              Trial(seq=1, arch="b", arch_hash="h1", status="failed", metrics={}, error="exit 1",
                    started_at=t0, finished_at=t0, duration_s=0.1)]
    rows = list(csv.DictReader(io.StringIO(trials_csv(trials))))
    assert [r["seq"] for r in rows] == ["0", "1"]
    assert rows[0]["accuracy"] == "91.5" and rows[0]["latency_ms@pixel3"] == "3.0"
    assert rows[1]["accuracy"] == "" and rows[1]["error"] == "exit 1"


def test_numbers_are_formatted_for_people() -> None:
    from api.dashboard.formatting import duration_s, kilobytes, metric, milliseconds, percent, si

    assert percent(0.0104) == "1.04 %" and percent(0.667) == "66.7 %" and percent(1.0430512870739705) == "104 %"
    assert si(51036800) == "51.0 M" and si(1500) == "1.50 k" and si(999) == "999"
    assert duration_s(8e-06) == "8 µs" and duration_s(0.0123) == "12.3 ms" and duration_s(75) == "75.0 s"
    assert milliseconds(3.21) == "3.21 ms" and milliseconds(1234) == "1.23 s"
    assert kilobytes(48) == "48 KB" and kilobytes(2048) == "2.00 MB"
    assert metric("macs", 5.10368e7) == "51.0 M" and metric("latency_ms@pixel3", 0.5) == "500 µs"
    assert metric("accuracy", 93.456) == "93.46" and percent(None) == "–"


def test_proxy_scores_are_named_and_duplicates_listed_once() -> None:
    from api.dashboard.series import duplicates_of, metric_label

    proxy = JobSpec.model_validate({**SPEC.model_dump(exclude_none=True),
                                    "evaluator": {"type": "proxy", "proxy": "naswot"}})
    assert metric_label(proxy, "accuracy") == "naswot score (zero-cost proxy)"
    assert "accuracy" in metric_label(SPEC, "accuracy") and "t" in metric_label(SPEC, "accuracy")

    def trial(seq: int, acc: float, lat: float) -> Trial:
        return Trial(seq=seq, arch="a", status="completed", metrics={"accuracy": acc, "latency_ms@pixel3": lat})

    trials = [trial(0, 50.0, 2.0), trial(1, 50.0, 2.0), trial(2, 60.0, 3.0), trial(3, 50.0, 2.0)]
    # a front stored before the rule held both 0 and 1: 1 and 3 are listed as duplicates of 0
    assert duplicates_of(SPEC, [0, 1, 2], trials) == {0: [1, 3]}


def test_series_trials_are_read_once_then_only_those_added_since(tmp_path: Path) -> None:
    import gzip
    import json

    from api.dashboard import trialcache
    from storage.db import make_engine, make_session_factory, session_scope
    from storage.migrate import upgrade
    from storage.models import Job

    url = f"sqlite:///{tmp_path}/t.db"
    upgrade(url)
    factory = make_session_factory(make_engine(url))
    space = get_space("nb201")
    dead = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    live = "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|avg_pool_3x3~1|none~2|"
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

    def add(seqs: range, arch: str) -> None:
        with session_scope(factory) as s:
            s.execute(Trial.__table__.insert(), [
                {"job_id": "j", "seq": q, "arch": arch, "arch_hash": str(q), "status": "completed",
                 "metrics": {"accuracy": float(q)} | ({"params": 1.0} if q > 1 else {}), "error": None,
                 "started_at": now, "finished_at": now, "duration_s": 0.0} for q in seqs])

    with session_scope(factory) as s:
        s.add(Job(id="j", spec={}, budget=4))
    add(range(2), live)
    first = trialcache.job_trials(factory, "j", space)
    assert [r.seq for r in first.rows] == [0, 1] and first.keys == ["accuracy"] and first.degenerate == []
    assert trialcache.job_trials(factory, "j", space) is first  # nothing new: the same object, no re-read
    add(range(2, 4), dead)
    later = trialcache.job_trials(factory, "j", space)
    assert [r.seq for r in later.rows] == [0, 1, 2, 3] and later.degenerate == [2, 3]
    assert later.keys == ["accuracy", "params"]
    body = json.loads(gzip.decompress(later.body({"front": [3]}, compressed=True)))
    assert body["seq"] == [0, 1, 2, 3] and body["metrics"]["params"] == [None, None, 1.0, 1.0]
    assert body["front"] == [3] and body["degenerate"] == [2, 3]
    raw = later.body({"front": [3]}, compressed=False)
    assert later.body({"front": [3]}, compressed=False) is raw  # reused while the rest is the same
    assert json.loads(later.body({"front": [2]}, compressed=False))["front"] == [2]
