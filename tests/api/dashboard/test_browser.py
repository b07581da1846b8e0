"""The dashboard in headless Chromium against a live server with real jobs.

Screenshots go to test-artifacts/dashboard/. Each test also asserts the page
logged no console error, threw nothing and had no failed request.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.api.dashboard.conftest import ConsoleLog, DashboardServer, screenshot, slow_command_spec, wait_for_job

FRONT_COLOUR = "#c5221f"  # --plot-front (light theme): 5.8:1 on white

DRAWN = """id => { const p = document.getElementById(id).hwplot;
    return {drawn: p.drawn, zoomed: p.zoomed, x: p.x, y: p.y, colours: p.spec.series.map(s => s.color),
            lengths: p.spec.series.map(s => s.x.length), keys: p.spec.series.map(s => s.keys || [])}; }"""


def _trials(server: DashboardServer, job_id: str) -> list[dict[str, Any]]:
    return server.client.get(f"/v1/jobs/{job_id}/trials", params={"limit": 1000}).raise_for_status().json()["items"]


def _front_seqs(server: DashboardServer, job_id: str) -> list[int]:
    return sorted(t["seq"] for t in server.client.get(f"/v1/jobs/{job_id}/pareto").json()["trials"])


def _drawn(page: Any, plot: str) -> dict[str, Any]:
    """What plot.js drew on ``plot``: points per series (inside the axes), lines, limits, the axes."""
    return page.evaluate(DRAWN, plot)


def _point(page: Any, plot: str, series: int, i: int) -> tuple[float, float]:
    page.locator(f"#{plot}").scroll_into_view_if_needed()
    at = page.evaluate(f"document.getElementById('{plot}').hwplot.at({series}, {i})")
    return at["x"], at["y"]


def _open_job(page: Any, server: DashboardServer, job_id: str) -> None:
    page.goto(f"{server.url}/jobs/{job_id}")
    page.wait_for_function("() => Number(document.body.dataset.plotsReady) >= 1")
    page.wait_for_selector("#trials-rows tr")


def test_job_page_plots_every_trial_and_highlights_exactly_the_api_front(
        page: Any, console: ConsoleLog, dashboard_server: DashboardServer) -> None:
    job = dashboard_server.jobs["multi"]
    trials = _trials(dashboard_server, job["id"])
    front = _front_seqs(dashboard_server, job["id"])
    assert 0 < len(front) < len(trials) == 120
    _open_job(page, dashboard_server, job["id"])

    for plot in ("plot-pixel3", "plot-raspi4"):
        d = _drawn(page, plot)
        assert d["lengths"][:2] == [len(trials), len(front)], plot
        assert sorted(d["keys"][1]) == front and d["drawn"]["points"][1] == len(front), plot
        assert d["colours"][1] == FRONT_COLOUR
        assert 0 < d["drawn"]["points"][0] <= len(trials)  # zoomed to the front: some faint points lie outside
    # the 12 ms pixel3 constraint is drawn as a line on the pixel3 panel only
    assert _drawn(page, "plot-pixel3")["drawn"]["limits"] == 1 and page.locator("#plot-pixel3 text.hw-limit").count() == 1
    assert _drawn(page, "plot-raspi4")["drawn"]["limits"] == 0
    assert _drawn(page, "hv-plot")["drawn"]["lines"] == 1
    page.get_by_label("Show all trials", exact=False).check()
    page.wait_for_function("() => document.getElementById('plot-pixel3').hwplot.drawn.points[0] === 120")

    # hovering a front point shows its architecture and metrics
    x, y = _point(page, "plot-pixel3", 1, 0)
    page.mouse.move(x, y)
    hover = page.locator("#plot-pixel3 .hw-tip")
    hover.wait_for()
    text = hover.inner_text()
    best = {t["seq"]: t for t in trials}[int(re.search(r"trial (\d+)", text)[1])]
    assert best["seq"] in front and best["arch"] in text and "latency_ms@raspi4" in text

    assert page.locator("#trials-rows tr").count() == 25
    assert page.locator("#job-status").text_content() == "succeeded"
    assert page.locator("#cancel-job").is_disabled()
    screenshot(page, "job-detail")

    # clicking a point opens its trial
    page.mouse.click(x, y)
    page.wait_for_url(f"**/jobs/{job['id']}/trials/{best['seq']}")
    assert console.errors == []


def test_plots_zoom_to_a_box_and_back(page: Any, console: ConsoleLog, dashboard_server: DashboardServer) -> None:
    job = dashboard_server.jobs["multi"]
    _open_job(page, dashboard_server, job["id"])
    page.get_by_label("Show all trials", exact=False).check()
    page.wait_for_function("() => document.getElementById('plot-pixel3').hwplot.drawn.points[0] === 120")
    before = _drawn(page, "plot-pixel3")
    page.locator("#plot-pixel3").scroll_into_view_if_needed()
    box = page.locator("#plot-pixel3 canvas.hw-marks").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.6, steps=5)
    page.mouse.up()
    page.wait_for_function("() => document.getElementById('plot-pixel3').hwplot.zoomed")
    zoomed = _drawn(page, "plot-pixel3")
    width_now, width_before = (r[1] - r[0] for r in (zoomed["x"]["range"], before["x"]["range"]))
    assert width_now < width_before / 2
    assert zoomed["drawn"]["points"][0] < 120
    page.mouse.dblclick(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    page.wait_for_function("() => !document.getElementById('plot-pixel3').hwplot.zoomed")
    assert _drawn(page, "plot-pixel3")["x"]["range"] == before["x"]["range"]
    assert console.errors == []


def test_trials_table_sorts_and_pages_from_the_keyboard(
        page: Any, console: ConsoleLog, dashboard_server: DashboardServer) -> None:
    job_id = dashboard_server.jobs["multi"]["id"]
    accuracies = sorted(t["metrics"]["accuracy"] for t in _trials(dashboard_server, job_id))
    _open_job(page, dashboard_server, job_id)

    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"

    first_accuracy = "#trials-rows tr:first-child td:nth-child(4)"
    sort = page.locator('button[data-sort="metric:accuracy"]')
    sort.focus()
    page.keyboard.press("Enter")
    page.wait_for_function(f"() => document.querySelector('{first_accuracy}').textContent === "
                           f"window.hwnasFormat.metric('accuracy', {accuracies[0]})")
    assert page.locator("th:has(button[data-sort='metric:accuracy'])").get_attribute("aria-sort") == "ascending"
    page.keyboard.press("Enter")  # focus stays on the header button after the reload
    page.wait_for_function(f"() => document.querySelector('{first_accuracy}').textContent === "
                           f"window.hwnasFormat.metric('accuracy', {accuracies[-1]})")
    assert page.locator("th:has(button[data-sort='metric:accuracy'])").get_attribute("aria-sort") == "descending"

    page.locator("#trials-next").focus()
    page.keyboard.press("Space")
    page.wait_for_function("() => document.getElementById('trials-range').textContent.startsWith('trials 26')")
    assert page.locator("#trials-range").text_content() == "trials 26–50 of 120"
    page.get_by_label("Rows").select_option("100")
    page.wait_for_function("() => document.querySelectorAll('#trials-rows tr').length === 100")
    assert console.errors == []


def test_jobs_list_filters_and_sorts_with_labelled_controls(
        page: Any, console: ConsoleLog, dashboard_server: DashboardServer) -> None:
    page.goto(dashboard_server.url + "/")
    unlabelled = page.evaluate("""[...document.querySelectorAll('main input, main select, main button')]
        .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim())
        .map(e => e.outerHTML)""")
    assert unlabelled == []
    assert page.locator("#jobs-rows tr[data-job]").count() >= 2
    page.get_by_label("Status").select_option("succeeded")
    page.get_by_label("Sort by").select_option("hypervolume")
    page.get_by_label("Order").select_option("asc")
    page.get_by_role("button", name="Apply").focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**status=succeeded**")
    rows = page.locator("#jobs-rows tr[data-job]")
    statuses = rows.evaluate_all("rs => rs.map(r => r.dataset.status)")
    assert statuses and set(statuses) == {"succeeded"}
    # sorted by the share of the best front (raw hypervolumes of unlike jobs do not compare);
    # series.json computes each job's best front, which the list then shows
    share = {j["id"]: j["hypervolume"] / dashboard_server.client.get(f"/jobs/{j['id']}/series.json").json()[
        "hv_scale"]["scale"] for j in dashboard_server.jobs.values()}
    page.reload()
    by_hv = sorted(dashboard_server.jobs.values(), key=lambda j: share[j["id"]])
    order = rows.evaluate_all("rs => rs.map(r => r.dataset.job)")
    assert [i for i in order if i in {j["id"] for j in by_hv}] == [j["id"] for j in by_hv]
    screenshot(page, "jobs")
    assert console.errors == []


def test_architecture_devices_and_compare_pages(
        page: Any, console: ConsoleLog, dashboard_server: DashboardServer) -> None:
    multi, single = dashboard_server.jobs["multi"], dashboard_server.jobs["single"]
    devices = dashboard_server.client.get("/v1/devices", params={"space": "nb201"}).json()

    page.goto(f"{dashboard_server.url}/jobs/{multi['id']}/trials/{multi['best']['seq']}")
    assert page.locator("svg.arch-diagram g.edge").count() == 6
    assert page.locator("#predictions tbody tr[data-device]").count() == len(devices)
    assert page.locator("#arch-string").text_content() == multi["best"]["arch"]
    screenshot(page, "architecture")

    page.goto(f"{dashboard_server.url}/devices")
    assert page.locator("#devices-table tbody tr[data-device]").count() == len(
        dashboard_server.client.get("/v1/devices").json())
    screenshot(page, "devices")

    page.goto(f"{dashboard_server.url}/compare?jobs={multi['id']},{single['id']}")
    page.wait_for_function("() => document.body.dataset.plotsReady")
    pixel3, raspi4 = _drawn(page, "compare-pixel3"), _drawn(page, "compare-raspi4")
    # only one job searched on raspi4; the other's front is predicted there through raspi4's table
    assert len(pixel3["lengths"]) == len(raspi4["lengths"]) == 2
    for trace, job in enumerate((multi, single)):
        assert pixel3["drawn"]["points"][trace] == len(_front_seqs(dashboard_server, job["id"]))
    assert page.get_by_label("pixel3 random").is_checked()
    screenshot(page, "compare")
    assert console.errors == []


def test_live_job_updates_then_cancel_from_the_page(
        browser: Any, page: Any, console: ConsoleLog, dashboard_server: DashboardServer) -> None:
    spec = slow_command_spec("slow command job", budget=400, seconds=0.25)
    job_id = dashboard_server.client.post("/v1/jobs", json=spec).raise_for_status().json()["id"]
    jobs_page = browser.new_page()
    try:
        jobs_console = ConsoleLog(jobs_page)
        jobs_page.goto(dashboard_server.url + "/")
        row = jobs_page.locator(f'#jobs-rows tr[data-job="{job_id}"]')
        assert row.get_attribute("data-status") in ("queued", "running")

        _open_job(page, dashboard_server, job_id)
        first = int(page.evaluate("window.hwnasTimings.points"))
        page.wait_for_function(f"() => Number(document.body.dataset.plotsReady) >= 2 && window.hwnasTimings.points > {first}")
        assert page.locator("#job-status").text_content() == "running"
        assert _drawn(page, "plot-pixel3")["lengths"][0] >= first

        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Cancel job").click()
        page.wait_for_function("() => document.getElementById('job-status').textContent === 'cancelled'",
                               timeout=60_000)
        job = dashboard_server.client.get(f"/v1/jobs/{job_id}").json()
        assert job["status"] == "cancelled" and job["progress"]["evaluated"] < 400
        assert page.locator("#cancel-job").is_disabled()
        assert "cancel" in page.locator("#cancel-state").text_content().lower()
        screenshot(page, "job-cancelled")

        # the jobs list refreshes itself while a job runs, so it sees the end without a reload
        jobs_page.wait_for_function(
            f"() => document.querySelector('#jobs-rows tr[data-job=\"{job_id}\"]').dataset.status === 'cancelled'",
            timeout=60_000)
        screenshot(jobs_page, "jobs-after-cancel")
        assert jobs_console.errors == []
    finally:
        jobs_page.close()
    assert console.errors == []


def test_job_page_shows_the_supernet_epoch_of_a_running_darts_job(
        page: Any, console: ConsoleLog, dashboard_server: DashboardServer) -> None:
    spec = {**slow_command_spec("darts job", budget=2, seconds=0.1),
            "strategy": {"name": "darts", "params": {"latency_weights": [0.01, 0.3], "epochs": 40}}}
    job_id = dashboard_server.client.post("/v1/jobs", json=spec).raise_for_status().json()["id"]
    try:
        page.goto(f"{dashboard_server.url}/jobs/{job_id}")
        page.wait_for_function(
            "() => /darts sweep point 1\\/2, epoch \\d+\\/40/.test(document.getElementById('job-progress-text').textContent)",
            timeout=180_000)
        screenshot(page, "job-darts-epoch")
    finally:
        dashboard_server.client.post(f"/v1/jobs/{job_id}/cancel")
        wait_for_job(dashboard_server.client, job_id)
    assert console.errors == []


@pytest.mark.parametrize("path", ["/jobs/not-a-job"])
def test_unknown_job_page_is_a_plain_404(page: Any, dashboard_server: DashboardServer, path: str) -> None:
    response = page.goto(dashboard_server.url + path)
    assert response.status == 404
    assert page.get_by_role("link", name="Back to the jobs").is_visible()
