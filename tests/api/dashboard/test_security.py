"""The dashboard's session, CSRF, redirect and framing defences, against real processes:
uvicorn on PostgreSQL + Redis (no worker, so jobs stay queued), an attacker's page served by
a second process on another port (same site) and on 127.0.0.2 (another site), and Chromium."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text, update

from storage.db import make_engine, make_session_factory, session_scope
from storage.models import DashboardSession
from tests.api.dashboard.conftest import ConsoleLog
from tests.conftest import Stack, free_port

SPEC = {"name": "victim's job", "space": "nb201", "strategy": {"name": "random", "params": {}},
        "budget": {"evaluations": 3}, "seed": 0,
        "objectives": [{"metric": "accuracy", "goal": "maximize"},
                       {"metric": "latency_ms", "device": "pixel3", "goal": "minimize"}],
        "evaluator": {"type": "command", "command": "echo '{\"accuracy\": 50}'"}}


@dataclass
class Victim:
    stack: Stack
    database_url: str

    @property
    def url(self) -> str:
        return self.stack.url

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.stack.api_key}"}

    def queued_job(self) -> str:
        return httpx.post(f"{self.url}/v1/jobs", json=SPEC, headers=self.headers).raise_for_status().json()["id"]

    def status(self, job_id: str) -> str:
        return httpx.get(f"{self.url}/v1/jobs/{job_id}", headers=self.headers).json()["status"]


@pytest.fixture
def victim(make_stack: Callable[..., Stack], migrated_pg_url: str, redis_url: str) -> Victim:
    return Victim(make_stack(migrated_pg_url, redis_url, HWNAS_LOGIN_ATTEMPTS_PER_MINUTE="100"), migrated_pg_url)


def _login(client: httpx.Client, key: str) -> str:
    r = client.post("/login", json={"api_key": key})
    assert r.status_code == 204, r.text
    return r.cookies["hwnas_session"]


def test_the_cookie_is_a_hashed_expiring_session_that_only_the_dashboard_accepts(victim: Victim) -> None:
    job_id = victim.queued_job()
    with httpx.Client(base_url=victim.url) as browser:
        session_id = _login(browser, victim.stack.api_key)
        assert session_id != victim.stack.api_key and victim.stack.api_key not in browser.cookies.get("hwnas_session")
        cookie = browser.get("/").request.headers["cookie"]
        assert "hwnas_session=" in cookie
        factory = make_session_factory(make_engine(victim.database_url))
        with session_scope(factory) as s:
            dump = str(s.execute(text("SELECT * FROM dashboard_sessions")).all())
        assert hashlib.sha256(session_id.encode()).hexdigest() in dump and session_id not in dump
        assert browser.get(f"/ui/jobs/{job_id}").status_code == 200
        # the JSON API ignores the cookie: without a key it is unauthenticated
        for method, path in [("GET", f"/v1/jobs/{job_id}"), ("POST", f"/v1/jobs/{job_id}/cancel"), ("GET", "/v1/jobs")]:
            assert browser.request(method, path).status_code == 401, path
        # expired sessions count for nothing
        with session_scope(factory) as s:
            s.execute(update(DashboardSession).values(expires_at=DashboardSession.created_at))
        assert browser.get(f"/jobs/{job_id}").status_code == 303
        assert browser.get(f"/ui/jobs/{job_id}").status_code == 303
    assert victim.status(job_id) == "queued"


def test_unsafe_requests_with_the_cookie_need_same_origin_or_the_csrf_token(victim: Victim) -> None:
    job_id = victim.queued_job()
    host = victim.url.removeprefix("http://")
    with httpx.Client(base_url=victim.url) as browser:
        _login(browser, victim.stack.api_key)
        page = browser.get(f"/jobs/{job_id}").text
        token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)
        cancel = f"/ui/jobs/{job_id}/cancel"
        refused = [{}, {"Origin": "http://evil.example"}, {"Origin": f"http://127.0.0.1:{free_port()}"},
                   {"Sec-Fetch-Site": "same-site"}, {"Sec-Fetch-Site": "cross-site", "Origin": f"http://{host}"},
                   {"X-CSRF-Token": "not-the-token"}]
        for headers in refused:
            r = browser.post(cancel, headers=headers)
            assert r.status_code == 403, (headers, r.text)
            assert victim.status(job_id) == "queued"
        assert browser.post("/logout", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
        assert browser.post(cancel, headers={"X-CSRF-Token": token}).status_code == 202
        assert victim.status(job_id) == "cancelled"
        other = victim.queued_job()
        assert browser.post(f"/ui/jobs/{other}/cancel", headers={"Origin": f"http://{host}"}).status_code == 202


ATTACK = """<!doctype html><html><head><title>win a prize</title></head><body>
<form id="dashboard" method="post" action="{victim}/ui/jobs/{job}/cancel"></form>
<form id="api" method="post" action="{victim}/v1/jobs/{job}/cancel" target="sink"></form>
<iframe name="sink"></iframe>
<iframe id="framed" src="{victim}/jobs/{job}"></iframe>
<script>
  Promise.allSettled([
    fetch("{victim}/ui/jobs/{job}/cancel", {{method: "POST", mode: "no-cors", credentials: "include"}}),
    fetch("{victim}/v1/jobs/{job}/cancel", {{method: "POST", mode: "no-cors", credentials: "include"}}),
  ]).then(() => {{ document.getElementById("api").submit(); document.title = "fetched"; }});
</script></body></html>"""


@pytest.fixture
def attacker_site(tmp_path: Path) -> Iterator[Callable[[str, str], str]]:
    """A plain static web server (another process) on 127.0.0.1:PORT and 127.0.0.2:PORT."""
    root = tmp_path / "attacker"
    root.mkdir()
    port = free_port()
    procs = [subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", host, "-d", str(root)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for host in ("127.0.0.1", "127.0.0.2")]

    def page(name: str, html: str) -> str:
        (root / name).write_text(html)
        return name

    deadline = time.monotonic() + 20
    for host in ("127.0.0.1", "127.0.0.2"):
        while True:
            try:
                httpx.get(f"http://{host}:{port}/", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "attacker server did not start"
                time.sleep(0.1)
    page.port = port  # type: ignore[attr-defined]
    yield page
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_page_on_another_origin_cannot_cancel_a_logged_in_victims_job(
        browser: Any, victim: Victim, attacker_site: Any) -> None:
    job_id = victim.queued_job()
    context = browser.new_context()
    try:
        page = context.new_page()
        console = ConsoleLog(page)
        page.goto(f"{victim.url}/login")
        page.get_by_label("API key").fill(victim.stack.api_key)
        page.keyboard.press("Enter")
        page.wait_for_url(f"{victim.url}/")
        assert console.errors == []
        name = attacker_site("attack.html", ATTACK.format(victim=victim.url, job=job_id))
        # same site (another port of 127.0.0.1: the SameSite=Strict cookie IS sent), then another site
        for host in ("127.0.0.1", "127.0.0.2"):
            attack = context.new_page()
            attack.goto(f"http://{host}:{attacker_site.port}/{name}")
            attack.wait_for_function("() => document.title === 'fetched'")
            with attack.expect_navigation() as navigation:
                attack.evaluate("document.getElementById('dashboard').submit()")
            assert navigation.value is not None and navigation.value.status in (401, 403), host
            # the framed dashboard page is refused (frame-ancestors 'none'): no document of the victim loads
            framed = next((f for f in attack.frames if f.url.startswith(victim.url) and f.name != "sink"), None)
            assert framed is None or "victim" not in framed.content(), host
            attack.close()
            assert victim.status(job_id) == "queued", host
        # the same browser, on the dashboard itself, can cancel: the session worked all along
        page.goto(f"{victim.url}/jobs/{job_id}")
        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Cancel job").click()
        page.wait_for_function("() => document.getElementById('job-status').textContent === 'cancelled'")
        assert victim.status(job_id) == "cancelled"
    finally:
        context.close()


EVIL_NEXT = ["/\\evil.example/x", "/%5Cevil.example/x", "/%09/evil.example/x", "//evil.example/x",
             "https://evil.example/x", "javascript:alert(1)", "/%20/evil.example", "%20/x", "/x%0d%0aSet-Cookie:a=b"]


def test_login_next_only_goes_to_a_path_on_this_site(browser: Any, victim: Victim) -> None:
    with httpx.Client(base_url=victim.url) as c:
        for target in EVIL_NEXT:  # as written in the link (the server decodes %5C and %09)
            page = c.get(f"/login?next={target}").text
            assert 'data-next="/"' in page, target
        assert 'data-next="/jobs/abc?x=1"' in c.get("/login", params={"next": "/jobs/abc?x=1"}).text
    context = browser.new_context()
    try:
        page = context.new_page()
        for target in ["/%5Cevil.example/x", "/%09/evil.example/x", "//evil.example/x"]:
            page.goto(f"{victim.url}/login?next={target}")
            page.get_by_label("API key").fill(victim.stack.api_key)
            page.keyboard.press("Enter")
            page.wait_for_url(f"{victim.url}/", timeout=20_000)
            context.clear_cookies()
    finally:
        context.close()


def test_pages_carry_a_csp_and_unknown_keys_and_logins_are_throttled_per_address(
        make_stack: Callable[..., Stack], migrated_pg_url: str, redis_url: str) -> None:
    stack = make_stack(migrated_pg_url, redis_url, HWNAS_FAILED_AUTH_PER_MINUTE="5",
                       HWNAS_LOGIN_ATTEMPTS_PER_MINUTE="4")
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    with httpx.Client(base_url=stack.url) as c:
        r = c.get("/", headers=headers)
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and r.headers["x-frame-options"] == "DENY"
        assert "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
        assert "frame-ancestors 'none'" in c.get("/login").headers["content-security-policy"]
        # /compare takes at most 8 jobs
        many = ",".join(f"{i:08x}-0000-0000-0000-000000000000" for i in range(9))
        assert c.get("/compare", params={"jobs": many}, headers=headers).status_code == 422
        assert c.get("/compare", params={"jobs": many.rsplit(",", 1)[0]}, headers=headers).status_code == 200

        # unknown keys: refused as 401 until the address has sent 5 in a window, then 429 (a minute
        # boundary may reset the count once, hence up to 2 x 5 before the first 429)
        codes = [c.get("/v1/jobs", headers={"Authorization": f"Bearer hwnas_guess{i}"}).status_code
                 for i in range(11)]
        assert set(codes) == {401, 429} and codes.index(429) <= 10, codes
        codes = [c.post("/login", json={"api_key": f"hwnas_guess{i}"}).status_code for i in range(9)]
        assert set(codes) == {401, 429} and codes.index(429) <= 8, codes
