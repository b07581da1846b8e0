"""The dashboard over HTTP on a live server: pages, downloads and plot data agree with the JSON API."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from api.dashboard.formatting import percent, sig
from nas.pareto import Objective, ParetoArchive
from tests.api.dashboard.conftest import DashboardServer

STATIC = Path(__file__).parents[3] / "api" / "dashboard" / "static"


def _all_trials(server: DashboardServer, job_id: str) -> list[dict[str, Any]]:
    page = server.client.get(f"/v1/jobs/{job_id}/trials", params={"limit": 1000}).raise_for_status().json()
    assert page["total"] == len(page["items"])
    return page["items"]


def test_every_page_renders(dashboard_server: DashboardServer) -> None:
    c = dashboard_server.client
    multi, single = dashboard_server.jobs["multi"], dashboard_server.jobs["single"]
    for path in ("/", "/?status=succeeded&sort=hypervolume&order=asc", "/fragments/jobs", "/devices",
                 f"/jobs/{multi['id']}", f"/jobs/{multi['id']}/trials/0",
                 f"/architectures/nb201?arch={quote(multi['best']['arch'])}",
                 f"/compare?jobs={multi['id']},{single['id']}"):
        r = c.get(path)
        assert r.status_code == 200, path
        assert r.headers["content-type"].startswith("text/html"), path
    jobs_page = c.get("/", params={"q": "random"}).text
    assert "pixel3 random" in jobs_page and "multi-device evolution" not in jobs_page


def test_missing_things_are_html_404s_and_bad_architectures_422(dashboard_server: DashboardServer) -> None:
    c = dashboard_server.client
    job_id = dashboard_server.jobs["multi"]["id"]
    for path in ("/jobs/no-such-job", f"/jobs/{job_id}/trials/99999", "/architectures/nope?arch=x"):
        r = c.get(path)
        assert r.status_code == 404 and "does not exist" in r.text, path
    r = c.get("/architectures/nb201", params={"arch": "|conv9~0|"})
    assert r.status_code == 422 and "Invalid architecture" in r.text


def test_the_plots_are_our_own_script_and_nothing_comes_from_elsewhere(dashboard_server: DashboardServer) -> None:
    c = dashboard_server.client
    r = c.get("/assets/plot.js")
    assert r.status_code == 200 and r.content == (STATIC / "plot.js").read_bytes()
    assert c.get("/assets/plotly.min.js").status_code == 404  # no charting library any more
    assert c.get("/assets/../pages.py").status_code == 404
    page = c.get(f"/jobs/{dashboard_server.jobs['multi']['id']}")
    assert "cdn" not in page.text.lower() and not re.search(r'(src|href)="(https?:)?//', page.text)
    # nothing evaluated from strings, no inline style or script without the nonce
    csp = page.headers["content-security-policy"]
    assert "unsafe-eval" not in csp and "unsafe-inline" not in csp
    for name in ("plot.js", "dashboard.js", "early.js"):
        assert not re.search(r"\beval\(|new Function", (STATIC / name).read_text()), name


def test_series_match_the_stored_trials_front_and_hypervolume(dashboard_server: DashboardServer) -> None:
    job = dashboard_server.jobs["multi"]
    s = dashboard_server.client.get(f"/jobs/{job['id']}/series.json").raise_for_status().json()
    trials = _all_trials(dashboard_server, job["id"])
    assert s["seq"] == [t["seq"] for t in trials] and len(s["seq"]) == job["progress"]["evaluated"] == 120
    assert s["metrics"]["accuracy"] == [t["metrics"]["accuracy"] for t in trials]
    front = dashboard_server.client.get(f"/v1/jobs/{job['id']}/pareto").json()
    assert s["front"] == sorted(t["seq"] for t in front["trials"])
    assert [p["device"] for p in s["axes"]["panels"]] == ["pixel3", "raspi4"]
    assert s["axes"]["limits"] == {"latency_ms@pixel3": {"max": 12.0}}
    hv = s["hypervolume"]
    assert hv["total"] == 120 and hv["evaluations"] == sorted(hv["evaluations"])
    assert hv["values"][-1] == pytest.approx(job["hypervolume"])
    assert all(b > a for a, b in zip(hv["values"], hv["values"][1:], strict=False))
    # the stored history is the engine's running front replayed over the trials (feasible ones only)
    keys = [o["key"] for o in s["objectives"]]
    archive = ParetoArchive([Objective(o["key"], o["goal"] == "maximize") for o in s["objectives"]],
                            s["reference_point"])
    replayed, current = [], 0.0
    for n, t in enumerate(trials, start=1):
        m = t["metrics"]
        if t["status"] == "completed" and all(k in m for k in keys) and m["latency_ms@pixel3"] <= 12.0:
            archive.add(t["seq"], m)
            if archive.hypervolume() != current:
                current = archive.hypervolume()
                replayed.append((n, current))
    assert hv["evaluations"] == [n for n, _ in replayed]
    assert hv["values"] == pytest.approx([v for _, v in replayed])


def test_downloads_hold_every_trial_and_exactly_the_front(dashboard_server: DashboardServer) -> None:
    c = dashboard_server.client
    job_id = dashboard_server.jobs["multi"]["id"]
    trials = _all_trials(dashboard_server, job_id)
    front = c.get(f"/v1/jobs/{job_id}/pareto").json()["trials"]

    r = c.get(f"/jobs/{job_id}/trials.csv")
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [int(x["seq"]) for x in rows] == [t["seq"] for t in trials]
    assert {"accuracy", "latency_ms@pixel3", "latency_ms@raspi4"} <= set(rows[0])
    assert float(rows[5]["latency_ms@raspi4"]) == pytest.approx(trials[5]["metrics"]["latency_ms@raspi4"])

    assert json.loads(c.get(f"/jobs/{job_id}/trials.json").text) == trials
    assert json.loads(c.get(f"/jobs/{job_id}/front.json").text) == front
    front_rows = list(csv.DictReader(io.StringIO(c.get(f"/jobs/{job_id}/front.csv").text)))
    assert [int(x["seq"]) for x in front_rows] == [t["seq"] for t in front]
    assert c.get("/jobs/nope/front.csv").status_code == 404


def test_devices_page_lists_every_table_with_its_validation(dashboard_server: DashboardServer) -> None:
    devices = dashboard_server.client.get("/v1/devices").json()
    html = dashboard_server.client.get("/devices").text
    assert html.count('<tr id="dev-') == len(devices) > 0
    pixel3 = next(d for d in devices if d["name"] == "pixel3" and d["space"] == "nb201")
    row = html.split('<tr id="dev-pixel3-nb201"', 1)[1].split("</tr>", 1)[0]
    v = pixel3["validation"]
    # one formatter for every percentage: a MAPE stored as a fraction is shown x100, like within ±10 %
    assert f'data-col="mape">{percent(v["mape"])}<' in row and v["mape"] > 0.5 and "104 %" in row
    assert f'data-col="within_10pct">{percent(v["within_10pct"])}<' in row and "66.7 %" in row
    assert sig(v["kendall_tau"]) in row
    # the long fitting method is written once below the table, not in every row
    assert html.count(pixel3["provenance"]["method"]) == 1


def test_assets_are_compressed_and_cached_by_content_hash(dashboard_server: DashboardServer) -> None:
    c = dashboard_server.client
    page = c.get(f"/jobs/{dashboard_server.jobs['multi']['id']}").text
    url = re.search(r'src="(/assets/plot\.[0-9a-f]{12}\.js)"', page)[1]
    raw = (STATIC / "plot.js").read_bytes()
    assert url == f"/assets/plot.{hashlib.sha256(raw).hexdigest()[:12]}.js"
    for encoding in ("gzip", "br"):
        with c.stream("GET", url, headers={"Accept-Encoding": encoding}) as r:
            wire = b"".join(r.iter_raw())
            assert r.headers["content-encoding"] == encoding
            assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
            assert "Accept-Encoding" in r.headers["vary"]
        decoded = gzip.decompress(wire) if encoding == "gzip" else __import__("brotli").decompress(wire)
        assert decoded == raw and len(wire) < len(raw) / 2
    with c.stream("GET", url, headers={"Accept-Encoding": "identity"}) as r:
        assert "content-encoding" not in r.headers and b"".join(r.iter_raw()) == raw
    stale = c.get("/assets/plot.000000000000.js")
    assert stale.status_code == 200 and "immutable" not in stale.headers["cache-control"]
    assert c.get("/assets/nothing.0123456789ab.js").status_code == 404
    for name in ("dashboard.js", "dashboard.css", "early.js"):
        assert re.search(rf'/assets/{name.split(".")[0]}\.[0-9a-f]{{12}}\.{name.split(".")[1]}', page), name
    with c.stream("GET", f"/jobs/{dashboard_server.jobs['multi']['id']}/series.json",
                  headers={"Accept-Encoding": "gzip"}) as r:
        assert r.headers["content-encoding"] == "gzip"


def test_architecture_page_of_another_space_draws_its_layers(dashboard_server: DashboardServer) -> None:
    import numpy as np

    from search_spaces import SPACES

    space = SPACES["fbnet"]
    arch = space.sample(np.random.default_rng(1))
    html = dashboard_server.client.get("/architectures/fbnet", params={"arch": arch}).text
    assert html.count('<g class="layer"') == len(space.choices)
    devices = dashboard_server.client.get("/v1/devices", params={"space": "fbnet"}).json()
    assert len(devices) > 0 and html.count("<tr data-device=") == len(devices)
    assert 'class="warn"' not in html  # every fbnet table priced it


def test_trial_page_links_to_working_exports(dashboard_server: DashboardServer) -> None:
    import re
    import zipfile

    c = dashboard_server.client
    job_id = dashboard_server.jobs["single"]["id"]
    html = c.get(f"/jobs/{job_id}/trials/0").text
    links = re.findall(r'href="(/ui/jobs/[^"]+/export\?format=(\w+))"', html)
    assert {fmt for _, fmt in links} == {"torch", "onnx", "json"}
    json_link = next(link for link, fmt in links if fmt == "json")
    r = c.get(json_link)
    assert r.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(r.content)).namelist()
    assert any(n.endswith("manifest.json") for n in names)


def test_cli_pareto_shows_trial_ids_sorted_by_the_first_objective(dashboard_server: DashboardServer) -> None:
    from tests.conftest import hwnas_cmd

    job = dashboard_server.jobs["multi"]
    front = dashboard_server.client.get(f"/v1/jobs/{job['id']}/pareto").json()["trials"]
    run = subprocess.run(hwnas_cmd("pareto", job["id"], "--url", dashboard_server.url),
                         env={**os.environ, "COLUMNS": "250", "HWNAS_API_KEY": "unused-in-embedded-mode"},
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    rows = [line for line in run.stdout.splitlines() if line.startswith("│")]
    cells = [[c.strip() for c in r.strip("│").split("│")] for r in rows]
    by_id = {t["id"]: t for t in front}
    assert sorted(int(c[1]) for c in cells) == sorted(by_id)  # every trial id, once
    assert [int(c[2]) for c in cells] == [by_id[int(c[1])]["seq"] for c in cells]
    accuracies = [by_id[int(c[1])]["metrics"]["accuracy"] for c in cells]
    assert accuracies == sorted(accuracies, reverse=True)  # best first
    assert "trial id" in run.stdout and "hwnas export" in run.stdout
