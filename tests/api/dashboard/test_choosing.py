"""Choosing an architecture in the browser: shortlist, axes, re-projection, compare, phones, plot config.

Shares the session's live server (conftest.dashboard_server); this module adds one latency
table with an error band (a copy of raspi4's under another name, as helper tables fitted
with residual quantiles carry) and one command-evaluator job, whose "accuracy" is not the
benchmark's and so must never share an axis with it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from api.dashboard.formatting import milliseconds
from tests.api.dashboard.conftest import (SCREENSHOTS, ConsoleLog, DashboardServer, benchmark_spec, slow_command_spec,
                                          wait_for_job)

BANDED = "raspi4-banded"
QUANTILES = {"0.025": 0.8, "0.05": 0.85, "0.16": 0.93, "0.5": 1.0, "0.84": 1.07, "0.95": 1.2, "0.975": 1.3}


@dataclass
class Extras:
    command_job: dict[str, Any]
    failed_job: dict[str, Any]


@pytest.fixture(scope="module")
def extras(dashboard_server: DashboardServer) -> Iterator[Extras]:
    c = dashboard_server.client
    table = json.loads((Path(__file__).parents[3] / "latency_tables" / "data" / "nb201__raspi4.json").read_text())
    table["device"]["name"] = BANDED
    table["validation"]["residual_ratio_quantiles"] = QUANTILES
    c.post("/v1/devices", json=table).raise_for_status()
    command = c.post("/v1/jobs", json=slow_command_spec("command accuracy", budget=15, seconds=0)).raise_for_status()
    failing = {**slow_command_spec("always fails", budget=4, seconds=0), "max_failed_trials": 2,
               "evaluator": {"type": "command", "command": "exit 3"}}
    failed = c.post("/v1/jobs", json=failing).raise_for_status()
    yield Extras(wait_for_job(c, command.json()["id"]), wait_for_job(c, failed.json()["id"]))


def _open(page: Any, url: str) -> None:
    page.goto(url)
    page.wait_for_function("() => Number(document.body.dataset.plotsReady) >= 1")


def _front(server: DashboardServer, job_id: str) -> list[dict[str, Any]]:
    return server.client.get(f"/v1/jobs/{job_id}/pareto").raise_for_status().json()["trials"]


def _contrast(a: str, b: str) -> float:
    def lum(colour: str) -> float:
        colour = colour.strip()
        if colour.startswith("rgb"):
            channels = [float(x) / 255 for x in colour[colour.index("(") + 1:-1].split(",")[:3]]
        else:
            channels = [int(colour.lstrip("#")[i:i + 2], 16) / 255 for i in (0, 2, 4)]
        lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


PLOT_AUDIT = """() => [...document.querySelectorAll('.hw-plot')].map(d => ({
    id: d.id, panel: d.hwplot.spec.colors.bg, colours: d.hwplot.spec.series.map(s => s.color),
    buttons: [...d.querySelectorAll('button')].map(b => b.textContent),
    links: [...d.querySelectorAll('a[href], [href], [src]')].map(a => a.getAttribute('href') || a.getAttribute('src')),
    tabStops: [...d.querySelectorAll('*')].filter(e => e.tabIndex >= 0).length}))"""


def _audit(page: Any) -> list[dict[str, Any]]:
    plots = page.evaluate(PLOT_AUDIT)
    assert plots
    for p in plots:
        # nothing leaves the machine: no share or upload button, no link or resource from elsewhere
        assert not [t for t in p["buttons"] if any(w in t.lower() for w in ("cloud", "studio", "share", "edit"))]
        assert not [h for h in p["links"] if h.startswith("http") or h.startswith("//")], p["id"]
        assert p["tabStops"] == 0, p["id"]  # keyboard users get the tables
        for colour in p["colours"]:  # WCAG 1.4.11: plotted points at least 3:1 against the panel
            assert _contrast(colour, p["panel"]) >= 3, (p["id"], colour, p["panel"])
    # the page fetched nothing from another origin
    assert page.evaluate("performance.getEntriesByType('resource').every(r => r.name.startsWith(location.origin))")
    return plots


def test_plots_share_nothing_take_no_tab_stop_and_contrast_in_both_themes(
        browser: Any, page: Any, console: ConsoleLog, dashboard_server: DashboardServer, extras: Extras) -> None:
    multi, single = dashboard_server.jobs["multi"], dashboard_server.jobs["single"]
    _open(page, f"{dashboard_server.url}/jobs/{multi['id']}")
    page.wait_for_function("() => document.getElementById('plot-explore').dataset.ready")
    assert {p["id"] for p in _audit(page)} >= {"plot-pixel3", "plot-raspi4", "plot-explore", "hv-plot"}
    _open(page, f"{dashboard_server.url}/compare?jobs={multi['id']},{single['id']}")
    _audit(page)
    assert console.errors == []

    dark = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="dark")
    try:
        p = dark.new_page()
        _open(p, f"{dashboard_server.url}/jobs/{single['id']}")
        background = p.evaluate("getComputedStyle(document.body).backgroundColor")
        assert _contrast(background, "#000000") < 2  # a dark page
        for plot in _audit(p):
            assert _contrast(plot["panel"], "#000000") < 2, plot["id"]
    finally:
        dark.close()


def test_shortlist_filters_by_budget_and_status_sorts_and_picks_columns(
        page: Any, console: ConsoleLog, dashboard_server: DashboardServer) -> None:
    job = dashboard_server.jobs["multi"]
    front = _front(dashboard_server, job["id"])
    _open(page, f"{dashboard_server.url}/jobs/{job['id']}")
    rows = page.locator("#shortlist-rows tr")
    page.wait_for_function(f"() => document.querySelectorAll('#shortlist-rows tr').length === {len(front)}")
    # sorted by the first objective, best first
    shown = [int(s) for s in rows.evaluate_all("rs => rs.map(r => r.dataset.seq)")]
    assert shown == [t["seq"] for t in sorted(front, key=lambda t: -t["metrics"]["accuracy"])]

    latencies = sorted(t["metrics"]["latency_ms@pixel3"] for t in front)
    budget = latencies[len(latencies) // 2]
    page.get_by_label("Latency budget on").select_option("latency_ms@pixel3")
    page.get_by_label("at most (ms)").fill(str(budget))
    expected = sorted(t["seq"] for t in front if t["metrics"]["latency_ms@pixel3"] <= budget)
    page.wait_for_function(f"() => document.querySelectorAll('#shortlist-rows tr').length === {len(expected)}")
    assert sorted(int(s) for s in rows.evaluate_all("rs => rs.map(r => r.dataset.seq)")) == expected
    cells = page.locator('#shortlist-rows td[data-key="latency_ms@pixel3"]').all_text_contents()
    assert cells and all(c.split(" (")[0] in {milliseconds(t["metrics"]["latency_ms@pixel3"]) for t in front}
                         for c in cells)

    # a memory budget on a metric the job never stored (computed from the architecture)
    page.locator("#shortlist-columns-box summary").click()
    page.get_by_label("peak_memory_kb", exact=False).first.check()
    page.wait_for_selector('#shortlist-head button[data-sort="peak_memory_kb"]')
    memory = sorted({float(x.split()[0]) for x in page.locator(
        '#shortlist-rows td[data-key="peak_memory_kb"]').all_text_contents()})
    page.get_by_label("Peak memory at most (KB)").fill(str(memory[0]))
    page.wait_for_function("() => [...document.querySelectorAll('#shortlist-rows td[data-key=\"peak_memory_kb\"]')]"
                           f".every(td => parseFloat(td.textContent) <= {memory[0]})")
    page.get_by_label("Peak memory at most (KB)").fill("")

    # sorting by a column from the keyboard, both orders
    sort = page.locator('#shortlist-head button[data-sort="latency_ms@pixel3"]')
    sort.focus()
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelector('#shortlist-head th:has(button[data-sort=\"latency_ms@pixel3\"])')"
                           ".getAttribute('aria-sort') === 'ascending'")
    order = [int(s) for s in rows.evaluate_all("rs => rs.map(r => r.dataset.seq)")]
    by_latency = {t["seq"]: t["metrics"]["latency_ms@pixel3"] for t in front}
    assert [by_latency[s] for s in order] == sorted(by_latency[s] for s in order)
    # one formatter: the page's numbers follow api/dashboard/formatting.py's rules exactly
    cases = [("pct", "percent", v) for v in (0.0104, 0.667, 1.0430512870739705, 0.5)] + \
            [("si", "si", v) for v in (51036800, 1500, 999, 2.5e9)] + \
            [("dur", "duration_s", v) for v in (8e-06, 0.0123, 75.0, 3600.0)] + \
            [("ms", "milliseconds", v) for v in (0.004, 3.21, 1234.0)] + [("kb", "kilobytes", v) for v in (48.0, 2048.0)]
    from api.dashboard import formatting
    got = page.evaluate("cases => cases.map(([js, , v]) => window.hwnasFormat[js](v))", cases)
    assert got == [getattr(formatting, py)(v) for _, py, v in cases]
    page.get_by_label("Show", exact=True).select_option("sound")
    page.wait_for_function("() => document.getElementById('shortlist-caption').textContent.includes('front architectures shown')")
    assert console.errors == []


def test_axis_selection_and_reprojection_onto_another_device_with_its_band(
        page: Any, console: ConsoleLog, dashboard_server: DashboardServer, extras: Extras) -> None:
    """A job searched for pixel3 only, its front put on a device it never saw, through that device's table."""
    job = dashboard_server.jobs["single"]
    front = {t["seq"]: t for t in _front(dashboard_server, job["id"])}
    _open(page, f"{dashboard_server.url}/jobs/{job['id']}")
    page.wait_for_function("() => document.getElementById('plot-explore').dataset.ready")
    page.get_by_label("X axis").select_option(f"latency_ms@{BANDED}")
    page.get_by_label("Y axis").select_option("params")
    page.wait_for_function(f"() => document.getElementById('plot-explore').dataset.x === 'latency_ms@{BANDED}' && "
                           "document.getElementById('plot-explore').dataset.y === 'params'")
    data = page.evaluate("(() => { const t = document.getElementById('plot-explore').hwplot.spec.series[1];"
                         " return {seq: t.keys, x: t.x, y: t.y, ex: t.errX}; })()")
    predicted = dashboard_server.client.get(f"/jobs/{job['id']}/columns.json",
                                            params={"keys": f"latency_ms@{BANDED},params"}).json()
    at = {s: i for i, s in enumerate(predicted["seq"])}
    assert sorted(data["seq"]) == sorted(front) != []
    for seq, x, y in zip(data["seq"], data["x"], data["y"], strict=True):
        assert x == pytest.approx(predicted["values"][f"latency_ms@{BANDED}"][at[seq]])
        assert y == predicted["values"]["params"][at[seq]]
        assert f"latency_ms@{BANDED}" not in front[seq]["metrics"]  # not a searched metric: predicted
    # the table's 90 % band as error bars: predicted x (0.95 quantile - 1) above, x (1 - 0.05 quantile) below
    assert data["ex"]["plus"] == pytest.approx([x * (QUANTILES["0.95"] - 1) for x in data["x"]])
    assert data["ex"]["minus"] == pytest.approx([x * (1 - QUANTILES["0.05"]) for x in data["x"]])
    assert BANDED in page.locator("#explore-caption").text_content()

    # the trial page prints the same band beside the predicted latency
    seq = next(iter(front))
    page.goto(f"{dashboard_server.url}/jobs/{job['id']}/trials/{seq}")
    band = page.locator(f'#predictions tr[data-device="{BANDED}"] td.band').text_content()
    value = predicted["values"][f"latency_ms@{BANDED}"][at[seq]]
    assert band.strip() == f"{milliseconds(value * 0.85)} – {milliseconds(value * 1.2)}"
    assert console.errors == []


def test_compare_has_one_colour_per_job_a_legend_everywhere_and_never_mixes_metrics(
        page: Any, console: ConsoleLog, dashboard_server: DashboardServer, extras: Extras) -> None:
    multi, single, command = dashboard_server.jobs["multi"], dashboard_server.jobs["single"], extras.command_job
    _open(page, f"{dashboard_server.url}/compare?jobs={multi['id']},{single['id']},{command['id']}")
    panels = page.evaluate("""[...document.querySelectorAll('#compare-plots .hw-plot')].map(d => ({
        id: d.id, y: d.dataset.y, device: d.dataset.device, legend: d.querySelectorAll('.hw-legend li').length,
        traces: d.hwplot.spec.series.map(t => ({name: t.name, colour: t.color, job: t.keys[0].split('/')[0]}))}))""")
    colour_of: dict[str, str] = {}
    for p in panels:
        assert p["legend"] == len(p["traces"]) >= 1, p  # a legend even with one job
        for t in p["traces"]:
            assert colour_of.setdefault(t["job"], t["colour"]) == t["colour"], (p["id"], t)
    assert len(set(colour_of.values())) == len(colour_of) == 3
    # the command job's "accuracy" is not the benchmark's: separate panels, never one axis
    for p in panels:
        jobs = {t["job"] for t in p["traces"]}
        assert not (command["id"] in jobs and jobs & {multi["id"], single["id"]}), p
    pixel3 = [p for p in panels if p["device"] == "pixel3"]
    assert len(pixel3) == 2 and len({p["y"] for p in pixel3}) == 2
    assert "different metrics" in page.locator("#compare-caption").text_content()
    # raspi4: single and command never searched on it; their fronts are predicted there
    raspi4 = [t for p in panels if p["device"] == "raspi4" for t in p["traces"]]
    assert {t["job"] for t in raspi4} == {multi["id"], single["id"], command["id"]}
    assert sum("predicted on raspi4" in t["name"] for t in raspi4) == 2
    assert page.locator("#compare-hv tr").count() == 3
    assert console.errors == []


PAGES = ["/", "/devices", "/jobs/{multi}", "/jobs/{single}", "/jobs/{failed}", "/jobs/{multi}/trials/{best}",
         "/compare?jobs={multi},{single}", "/architectures/nb201?arch={arch}"]


@pytest.mark.parametrize("width,height", [(390, 844), (1440, 900)])
def test_no_page_scrolls_sideways_and_plots_fit_their_box(
        browser: Any, dashboard_server: DashboardServer, extras: Extras, width: int, height: int) -> None:
    multi = dashboard_server.jobs["multi"]
    ids = {"multi": multi["id"], "single": dashboard_server.jobs["single"]["id"], "failed": extras.failed_job["id"],
           "best": multi["best"]["seq"], "arch": quote(multi["best"]["arch"], safe="")}
    context = browser.new_context(viewport={"width": width, "height": height})
    try:
        page = context.new_page()
        console = ConsoleLog(page)
        for path in PAGES:
            url = dashboard_server.url + path.format(**ids)
            page.goto(url)
            if "/jobs/" in path and "/trials/" not in path or "compare" in path:
                page.wait_for_function("() => Number(document.body.dataset.plotsReady) >= 1")
            widths = page.evaluate("({doc: document.documentElement.scrollWidth, body: document.body.scrollWidth,"
                                   " view: window.innerWidth})")
            assert widths["doc"] <= widths["view"] and widths["body"] <= widths["view"], (path, widths)
            overflow = page.evaluate("""[...document.querySelectorAll('.hw-plot')].map(d =>
                [d.id, Math.max(...[...d.querySelectorAll('canvas.hw-marks, svg.hw-axes')]
                    .map(e => e.getBoundingClientRect().width)), d.clientWidth])
                .filter(([, drawn, box]) => drawn > box + 1)""")
            assert overflow == [], (path, overflow)
            name = path.split("?")[0].strip("/").replace("/", "-").replace("{", "").replace("}", "") or "jobs"
            page.screenshot(path=str(SCREENSHOTS / f"{width}-{name}.png"))
        failed = dashboard_server.url + f"/jobs/{extras.failed_job['id']}"
        page.goto(failed)
        page.wait_for_function("() => Number(document.body.dataset.plotsReady) >= 1")
        assert page.locator("#pareto-plots .plot.empty").count() >= 1  # no empty plot with -1...6 axes
        assert "No completed trial" in page.locator("#pareto-plots").text_content()
        assert console.errors == []
    finally:
        context.close()


def test_hypervolume_is_a_share_of_the_best_front_with_a_log_axis(
        page: Any, console: ConsoleLog, dashboard_server: DashboardServer) -> None:
    job = dashboard_server.jobs["multi"]
    s = dashboard_server.client.get(f"/jobs/{job['id']}/series.json").json()
    assert s["hv_scale"]["kind"] == "best" and "benchmark nb201" in s["hv_scale"]["basis"]
    share = job["hypervolume"] / s["hv_scale"]["scale"]
    assert 0 < share <= 1
    _open(page, f"{dashboard_server.url}/jobs/{job['id']}")
    assert page.locator("#job-hv").text_content().startswith(page.evaluate(f"window.hwnasFormat.pct({share})"))
    last = page.evaluate("(() => { const y = document.getElementById('hv-plot').hwplot.spec.series[0].y; return y[y.length - 1]; })()")
    assert last == pytest.approx(100 * share)
    page.get_by_label("Logarithmic evaluations axis").check()
    page.wait_for_function("() => document.getElementById('hv-plot').hwplot.x.log")
    assert console.errors == []
