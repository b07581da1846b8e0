"""Outside embedded mode the dashboard is behind the API's authentication, scoped to the tenant."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx

from tests.api.dashboard.conftest import ConsoleLog, screenshot
from tests.conftest import Service, create_api_key

SPEC = {"name": "tenant A's job", "space": "nb201", "strategy": {"name": "random", "params": {}},
        "budget": {"evaluations": 3}, "seed": 0,
        "objectives": [{"metric": "accuracy", "goal": "maximize"},
                       {"metric": "latency_ms", "device": "pixel3", "goal": "minimize"}],
        "evaluator": {"type": "command", "command": "echo '{\"accuracy\": 50}'"}}


def _finished_job(stack: Service) -> str:
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    job_id = httpx.post(f"{stack.url}/v1/jobs", json=SPEC, headers=headers).raise_for_status().json()["id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if httpx.get(f"{stack.url}/v1/jobs/{job_id}", headers=headers).json()["status"] == "succeeded":
            return job_id
        time.sleep(0.3)
    raise AssertionError(f"job did not finish:\n{stack.log('worker')}")


def test_pages_need_a_key_and_show_only_the_callers_tenant(celery_stack: Service) -> None:
    job_id = _finished_job(celery_stack)
    other_key = create_api_key(celery_stack.env, "other-tenant")
    with httpx.Client(base_url=celery_stack.url) as anonymous:
        r = anonymous.get(f"/jobs/{job_id}", params={"render": "svg"})
        assert r.status_code == 303
        assert r.headers["location"] == f"/login?next=%2Fjobs%2F{job_id}%3Frender%3Dsvg"
        assert anonymous.get(f"/jobs/{job_id}/series.json").status_code == 303
        assert anonymous.post("/v1/jobs/x/cancel").status_code == 401
        assert anonymous.get("/login").status_code == 200
        assert anonymous.get("/assets/dashboard.js").status_code == 200
        assert anonymous.post("/login", json={"api_key": "hwnas_not_a_key"}).status_code == 401
        assert "hwnas_session" not in anonymous.cookies

    with httpx.Client(base_url=celery_stack.url) as owner:
        r = owner.post("/login", json={"api_key": celery_stack.api_key})
        assert r.status_code == 204
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert "tenant A&#39;s job" in owner.get("/").text
        for path in (f"/jobs/{job_id}", f"/jobs/{job_id}/series.json", f"/jobs/{job_id}/trials.csv",
                     f"/jobs/{job_id}/trials/0", "/devices", f"/ui/jobs/{job_id}", f"/ui/jobs/{job_id}/pareto"):
            assert owner.get(path).status_code == 200, path
        assert owner.get(f"/v1/jobs/{job_id}").status_code == 401  # the JSON API ignores the cookie
        export = re.search(r'href="(/ui/jobs/[^"]+/export\?format=json)"', owner.get(f"/jobs/{job_id}/trials/0").text)
        assert export and owner.get(export.group(1)).status_code == 200  # the trial page's Export links
        assert owner.get("/ui/devices/pixel3", params={"space": "nb201"}).status_code == 200
        assert owner.post("/logout").status_code == 303
        assert owner.get("/").status_code == 303

    with httpx.Client(base_url=celery_stack.url) as other:
        assert other.post("/login", json={"api_key": other_key}).status_code == 204
        assert "tenant A" not in other.get("/").text
        for path in (f"/jobs/{job_id}", f"/jobs/{job_id}/series.json", f"/jobs/{job_id}/front.json",
                     f"/jobs/{job_id}/trials/0", f"/ui/jobs/{job_id}"):
            assert other.get(path).status_code == 404, path
        assert other.get("/compare", params={"jobs": f"{job_id},x"}).text.count("Unknown job") == 1


def test_browser_logs_in_with_a_key_and_lands_where_it_was_going(
        page: Any, console: ConsoleLog, celery_stack: Service) -> None:
    job_id = _finished_job(celery_stack)
    page.goto(f"{celery_stack.url}/jobs/{job_id}")
    assert "/login?next=" in page.url
    page.get_by_label("API key").fill(celery_stack.api_key)
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/jobs/{job_id}")
    page.wait_for_function("() => Number(document.body.dataset.plotsReady) >= 1")
    assert page.evaluate("document.getElementById('plot-pixel3').hwplot.spec.series[0].x.length") == 3
    screenshot(page, "job-after-login")
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/login")
    assert console.errors == []
