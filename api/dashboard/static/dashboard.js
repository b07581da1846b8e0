// hwnas dashboard: a little JavaScript over server-rendered pages. No build step.
// Data comes from the JSON API's job routes under the dashboard session (/ui/jobs/...) and /jobs/{id}/series.json; plots use plotly.js
// served from the installed plotly package. window.hwnasTimings holds render timings.
"use strict";
(function () {
  const timings = (window.hwnasTimings = {});
  const TERMINAL = ["succeeded", "failed", "cancelled"];
  const PLOT_CONFIG = { responsive: true, displaylogo: false };
  // Above this many trials the faint points are drawn with WebGL (scattergl): one canvas
  // instead of one SVG node per point. ?render=svg or ?render=webgl forces either.
  const WEBGL_ABOVE = 3000;
  const RENDER = new URLSearchParams(window.location.search).get("render");

  function webglAvailable() {
    try { return !!document.createElement("canvas").getContext("webgl"); } catch (e) { return false; }
  }

  function fmt(v, digits = 4) {
    if (v === null || v === undefined || Number.isNaN(v)) return "–";
    return String(Number(Number(v).toPrecision(digits)));
  }

  function text(tag, content, attrs = {}) {
    const node = document.createElement(tag);
    if (content !== undefined && content !== null) node.textContent = content;
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    return node;
  }

  // The session's CSRF token (base.html), sent with every change the page asks for.
  const CSRF = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  async function getJSON(url, init = {}) {
    const method = (init.method || "GET").toUpperCase();
    if (method !== "GET") init = { ...init, headers: { ...(init.headers || {}), "X-CSRF-Token": CSRF } };
    const r = await fetch(url, init);
    if (!r.ok) {
      const body = await r.json().catch(() => ({}));
      throw new Error(body.detail || `${url}: HTTP ${r.status}`);
    }
    return r.json();
  }

  const nextFrame = () => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));

  /* ---------------------------------------------------------------- jobs list */
  function initJobs() {
    const body = document.getElementById("jobs-rows");
    const state = document.getElementById("refresh-state");
    async function refresh() {
      const active = body.querySelector("tr[data-active]") !== null;
      try {
        const r = await fetch(body.dataset.fragment);
        if (r.ok) swapKeepingFocus(body, await r.text());
        const still = body.querySelector("tr[data-active]") !== null;
        state.textContent = still ? "Refreshing every 3 s while jobs run." : "";
      } catch (e) {
        state.textContent = "Refresh failed; retrying.";
      }
      setTimeout(refresh, active ? 3000 : 15000);
    }
    if (body.querySelector("tr[data-active]")) state.textContent = "Refreshing every 3 s while jobs run.";
    setTimeout(refresh, body.querySelector("tr[data-active]") ? 3000 : 15000);
  }

  // Replace a table body without losing the keyboard focus on a link inside it.
  function swapKeepingFocus(container, html) {
    const focused = container.contains(document.activeElement) ? document.activeElement.getAttribute("href") : null;
    container.innerHTML = html;
    if (focused) {
      const again = container.querySelector(`a[href="${CSS.escape(focused)}"]`);
      if (again) again.focus();
    }
  }

  /* ---------------------------------------------------------------- job detail */
  function initJob() {
    const root = document.getElementById("job");
    const jobId = root.dataset.job;
    let status = root.dataset.status;
    let series = null;
    let clickBound = new Set();
    const table = trialsTable(jobId);

    async function loadSeries() {
      // the first load uses the request the page's head started before plotly.js loaded
      const early = window.hwnasSeries;
      window.hwnasSeries = null;
      const t0 = early ? window.hwnasSeriesStart : performance.now();
      const s = await (early || getJSON(`/jobs/${jobId}/series.json`));
      const t1 = performance.now();
      await drawPareto(s);
      await drawHypervolume(s);
      await nextFrame();
      const t2 = performance.now();
      series = s;
      timings.seriesFetchMs = t1 - t0;
      timings.plotRenderMs = t2 - t1;
      timings.readyAt = t2;
      timings.points = s.seq.length;
      document.body.dataset.plotsReady = String((Number(document.body.dataset.plotsReady) || 0) + 1);
      return t2 - t0;
    }

    function panelsOf(s) {
      return s.axes.panels.length ? s.axes.panels : [{ device: null, x: "seq", title: `${s.axes.y} by evaluation` }];
    }

    function hoverTexts(s) {
      const keys = Object.keys(s.metrics).sort();
      return s.seq.map((seq, i) =>
        `trial ${seq}${s.front.includes(seq) ? " (front)" : ""}<br>${s.arch[i]}<br>` +
        keys.filter((k) => s.metrics[k][i] !== null).map((k) => `${k}: ${fmt(s.metrics[k][i], 5)}`).join("<br>"));
    }

    function limitShapes(limits, key, axis) {
      const shapes = [], notes = [];
      for (const [bound, value] of Object.entries(limits[key] || {})) {
        const line = { type: "line", line: { color: "#b3261e", width: 1.5, dash: "dash" } };
        if (axis === "x") Object.assign(line, { xref: "x", yref: "paper", x0: value, x1: value, y0: 0, y1: 1 });
        else Object.assign(line, { xref: "paper", yref: "y", x0: 0, x1: 1, y0: value, y1: value });
        shapes.push(line);
        notes.push(axis === "x"
          ? { x: value, xref: "x", y: 1, yref: "paper", yanchor: "bottom", text: `${bound} ${fmt(value)}`, showarrow: false, font: { color: "#b3261e" } }
          : { x: 1, xref: "paper", xanchor: "right", y: value, yref: "y", yanchor: "bottom", text: `${bound} ${fmt(value)}`, showarrow: false, font: { color: "#b3261e" } });
      }
      return [shapes, notes];
    }

    async function drawPareto(s) {
      const container = document.getElementById("pareto-plots");
      const frontSet = new Set(s.front);
      const h0 = performance.now();
      const hover = hoverTexts(s);
      timings.hoverTextMs = performance.now() - h0;
      timings.panelMs = [];
      const ykey = s.axes.y;
      const ys = ykey ? s.metrics[ykey] || [] : s.seq;
      const failed = s.trial_status.filter((x) => x !== "completed").length;
      // all panels exist before the first is drawn, so each is drawn at its final width
      for (const p of panelsOf(s)) {
        const id = `plot-${p.device || "seq"}`;
        if (!document.getElementById(id)) {
          container.appendChild(text("div", null, { id, class: "plot", role: "img",
            "aria-label": `${p.title}: every trial faint, the Pareto front highlighted; click a point to open its trial` }));
        }
      }
      for (const p of panelsOf(s)) {
        const id = `plot-${p.device || "seq"}`;
        const div = document.getElementById(id);
        const xs = p.x === "seq" ? s.seq : s.metrics[p.x] || [];
        const all = [], front = [];
        for (let i = 0; i < s.seq.length; i++) {
          if (s.trial_status[i] !== "completed" || xs[i] == null || ys[i] == null) continue;
          all.push(i);
          if (frontSet.has(s.seq[i])) front.push(i);
        }
        const pick = (arr, idx) => idx.map((i) => arr[i]);
        const gl = RENDER === "webgl" || (RENDER !== "svg" && all.length > WEBGL_ABOVE && webglAvailable());
        const traces = [
          { type: gl ? "scattergl" : "scatter", mode: "markers", name: `all trials (${all.length})`, x: pick(xs, all), y: pick(ys, all),
            customdata: pick(s.seq, all), text: pick(hover, all), hovertemplate: "%{text}<extra></extra>",
            marker: { size: 5, color: "#4a6fa5", opacity: 0.3 } },
          { type: "scatter", mode: "markers", name: `Pareto front (${front.length})`, x: pick(xs, front), y: pick(ys, front),
            customdata: pick(s.seq, front), text: pick(hover, front), hovertemplate: "%{text}<extra></extra>",
            marker: { size: 10, color: "#d62728", line: { width: 1, color: "#fff" } } },
        ];
        const [xs1, xn] = limitShapes(s.axes.limits, p.x, "x");
        const [ys1, yn] = ykey ? limitShapes(s.axes.limits, ykey, "y") : [[], []];
        const layout = {
          title: { text: p.title, font: { size: 14 } }, hovermode: "closest", height: 420,
          margin: { l: 60, r: 20, t: 50, b: 50 }, legend: { orientation: "h", y: -0.18 },
          xaxis: { title: { text: p.x === "seq" ? "evaluation" : `${p.x} (ms)` } },
          yaxis: { title: { text: ykey || "evaluation" } },
          shapes: [...xs1, ...ys1], annotations: [...xn, ...yn], uirevision: id,
        };
        const p0 = performance.now();
        await Plotly.react(div, traces, layout, PLOT_CONFIG);
        timings.panelMs.push(performance.now() - p0);
        div.dataset.render = gl ? "webgl" : "svg";
        div.dataset.points = String(all.length);
        div.dataset.front = String(front.length);
        if (!clickBound.has(id)) {
          clickBound.add(id);
          div.on("plotly_click", (ev) => {
            if (ev.points.length) window.location.href = `/jobs/${jobId}/trials/${ev.points[0].customdata}`;
          });
        }
      }
      document.getElementById("plot-caption").textContent =
        `${s.seq.length} trials evaluated` + (failed ? `, ${failed} failed (not plotted)` : "") +
        `; ${s.front.length} on the Pareto front` +
        (Object.keys(s.axes.limits).length ? "; dashed lines are constraints" : "") + ".";
    }

    async function drawHypervolume(s) {
      const h = s.hypervolume;
      const x = [...h.evaluations], y = [...h.values];
      if (x.length && h.total > x[x.length - 1]) { x.push(h.total); y.push(y[y.length - 1]); }
      const ref = Object.entries(s.reference_point).map(([k, v]) => `${k}=${fmt(v)}`).join(", ");
      const layout = {
        height: 320, margin: { l: 60, r: 20, t: 30, b: 50 },
        xaxis: { title: { text: "evaluations" }, rangemode: "tozero" },
        yaxis: { title: { text: "hypervolume" }, rangemode: "tozero" },
        title: { text: `reference point ${ref}`, font: { size: 12 } },
        annotations: x.length ? [] : [{ text: "no feasible trial yet", showarrow: false, xref: "paper", yref: "paper", x: 0.5, y: 0.5 }],
      };
      await Plotly.react("hv-plot", [{ type: "scatter", mode: "lines", line: { shape: "hv", color: "#1a5fb4" },
        x, y, name: "hypervolume", hovertemplate: "after %{x} evaluations: %{y:.6g}<extra></extra>" }], layout, PLOT_CONFIG);
    }

    function showJob(j) {
      status = j.status;
      root.dataset.status = j.status;
      const badge = document.getElementById("job-status");
      badge.textContent = j.status;
      badge.className = `status status-${j.status}`;
      document.getElementById("job-error").textContent = j.error || "";
      const bar = document.getElementById("job-progress");
      bar.max = j.progress.budget;
      bar.value = j.progress.evaluated;
      const phase = j.progress.phase;  // a supernet search inside one step: sweep point and epoch
      document.getElementById("job-progress-text").textContent =
        `${j.progress.evaluated}/${j.progress.budget} evaluated, ${j.progress.failed} failed` +
        (phase && phase.epoch !== undefined && !TERMINAL.includes(j.status)
          ? ` · ${phase.strategy} sweep point ${phase.sweep_point}/${phase.sweep_points}, epoch ${phase.epoch}/${phase.epochs}`
          : "");
      document.getElementById("job-hv").textContent = j.hypervolume === null ? "–" : fmt(j.hypervolume, 6);
      if (TERMINAL.includes(j.status)) {
        document.getElementById("cancel-job").disabled = true;
        const state = document.getElementById("cancel-state");
        if (j.status === "cancelled") state.textContent = "Job cancelled.";
        else if (state.textContent) state.textContent = `Job ${j.status}.`;
      }
    }

    async function poll() {
      let took = 1000;
      try {
        const wasRunning = !TERMINAL.includes(status);
        showJob(await getJSON(`/ui/jobs/${jobId}`));
        if (wasRunning) { took = await loadSeries(); table.reload(); }
      } catch (e) {
        document.getElementById("plot-caption").textContent = `Update failed: ${e.message}; retrying.`;
      }
      if (!TERMINAL.includes(status)) setTimeout(poll, Math.max(2000, 4 * took));
    }

    document.getElementById("cancel-job").addEventListener("click", async (ev) => {
      const btn = ev.currentTarget;
      const state = document.getElementById("cancel-state");
      if (!window.confirm("Cancel this job? Trials evaluated so far are kept.")) return;
      btn.disabled = true;
      state.textContent = "Cancelling…";
      try {
        const j = await getJSON(`/ui/jobs/${jobId}/cancel`, { method: "POST" });
        state.textContent = j.status === "cancelled" ? "Job cancelled."
          : "Cancel requested: the job stops before its next evaluation.";
        showJob(j);
      } catch (e) {
        state.textContent = `Cancel failed: ${e.message}`;
        btn.disabled = TERMINAL.includes(status);
      }
    });

    loadSeries().then(() => {
      table.start(series);
      if (!TERMINAL.includes(status)) setTimeout(poll, 2000);
    }).catch((e) => { document.getElementById("plot-caption").textContent = `Could not load trials: ${e.message}`; });
  }

  // The paged, sortable trials table over GET /v1/jobs/{id}/trials.
  function trialsTable(jobId) {
    const head = document.getElementById("trials-head");
    const rows = document.getElementById("trials-rows");
    const range = document.getElementById("trials-range");
    const prev = document.getElementById("trials-prev");
    const next = document.getElementById("trials-next");
    const size = document.getElementById("trials-size");
    let columns = [], sort = "seq", offset = 0, total = 0, started = false;

    function header() {
      head.replaceChildren(...columns.map((c) => {
        const th = text("th", null, { scope: "col" });
        if (!c.sort) { th.textContent = c.label; return th; }
        const key = sort.replace(/^-/, "");
        th.setAttribute("aria-sort", key === c.sort ? (sort.startsWith("-") ? "descending" : "ascending") : "none");
        const b = text("button", c.label, { type: "button", class: "sort", "data-sort": c.sort });
        b.addEventListener("click", () => {
          sort = key === c.sort && !sort.startsWith("-") ? `-${c.sort}` : c.sort;
          offset = 0;
          header();
          load().then(() => head.querySelector(`button[data-sort="${CSS.escape(c.sort)}"]`).focus());
        });
        th.appendChild(b);
        return th;
      }));
    }

    async function load() {
      const n = Number(size.value);
      const page = await getJSON(`/ui/jobs/${jobId}/trials?sort=${encodeURIComponent(sort)}&limit=${n}&offset=${offset}`);
      total = page.total;
      rows.replaceChildren(...page.items.map((t) => {
        const tr = text("tr", null, { "data-seq": String(t.seq) });
        for (const c of columns) {
          const td = text("td", null, c.num ? { class: "num" } : {});
          if (c.key === "seq") td.appendChild(text("a", String(t.seq), { href: `/jobs/${jobId}/trials/${t.seq}` }));
          else if (c.key === "arch") td.appendChild(text("code", t.arch));
          else if (c.key === "status") td.textContent = t.status + (t.error ? ` — ${t.error}` : "");
          else if (c.key === "duration_s") td.textContent = fmt(t.duration_s, 3);
          else td.textContent = fmt(t.metrics[c.key], 5);
          tr.appendChild(td);
        }
        return tr;
      }));
      range.textContent = total ? `trials ${offset + 1}–${Math.min(offset + n, total)} of ${total}` : "no trials yet";
      prev.disabled = offset === 0;
      next.disabled = offset + n >= total;
    }

    prev.addEventListener("click", () => { offset = Math.max(0, offset - Number(size.value)); load(); });
    next.addEventListener("click", () => { offset += Number(size.value); load(); });
    size.addEventListener("change", () => { offset = 0; load(); });

    return {
      start(s) {
        const keys = Object.keys(s.metrics).sort();
        columns = [{ key: "seq", label: "Trial", sort: "seq", num: true }, { key: "status", label: "Status", sort: "status" },
          ...keys.map((k) => ({ key: k, label: k, sort: `metric:${k}`, num: true })),
          { key: "duration_s", label: "Duration (s)", sort: "duration_s", num: true }, { key: "arch", label: "Architecture" }];
        started = true;
        header();
        return load();
      },
      reload() { if (started) load(); },
    };
  }

  /* ---------------------------------------------------------------- compare */
  async function initCompare() {
    const root = document.getElementById("compare");
    const ids = (root.dataset.jobs || "").split(",").filter(Boolean);
    if (ids.length < 2) return;
    const caption = document.getElementById("compare-caption");
    try {
      const [fronts, jobs] = await Promise.all([
        Promise.all(ids.map((id) => getJSON(`/ui/jobs/${id}/pareto`))),
        Promise.all(ids.map((id) => getJSON(`/ui/jobs/${id}`)))]);
      const keysOf = (f) => f.objectives.map((o) => o.key);
      const devices = [...new Set(fronts.flatMap((f) => f.objectives.filter((o) => o.device).map((o) => o.device)))].sort();
      const plain = fronts.flatMap((f) => f.objectives.filter((o) => !o.device).map((o) => o.key));
      const ykey = plain.includes("accuracy") ? "accuracy" : plain[0];
      const container = document.getElementById("compare-plots");
      const notes = [];
      const divs = devices.map((device) => container.appendChild(text("div", null, { id: `compare-${device}`, class: "plot", role: "img" })));
      for (const [d, device] of devices.entries()) {
        const xkey = `latency_ms@${device}`;
        const traces = [];
        fronts.forEach((f, j) => {
          const pts = f.trials.filter((t) => t.metrics[xkey] !== undefined && t.metrics[ykey] !== undefined)
            .sort((a, b) => a.metrics[xkey] - b.metrics[xkey]);
          if (!pts.length) { notes.push(`${jobs[j].name || jobs[j].id} has no front on ${device}`); return; }
          const twoObjectives = keysOf(f).length === 2 && keysOf(f).includes(xkey);
          traces.push({ type: "scatter", mode: twoObjectives ? "lines+markers" : "markers", line: { shape: "hv", dash: "dot" },
            name: `${jobs[j].name || jobs[j].id.slice(0, 8)} (${pts.length})`, x: pts.map((t) => t.metrics[xkey]),
            y: pts.map((t) => t.metrics[ykey]), customdata: pts.map((t) => `${ids[j]}/trials/${t.seq}`),
            text: pts.map((t) => `${jobs[j].name}: trial ${t.seq}<br>${t.arch}`),
            hovertemplate: `%{text}<br>${xkey}: %{x:.4g}<br>${ykey}: %{y:.4g}<extra></extra>`, marker: { size: 8 } });
        });
        const div = divs[d];
        div.setAttribute("aria-label", `Pareto fronts of ${traces.length} jobs: ${ykey} vs latency on ${device}`);
        await Plotly.newPlot(div, traces, {
          title: { text: `${ykey} vs latency on ${device}`, font: { size: 14 } }, height: 440, hovermode: "closest",
          margin: { l: 60, r: 20, t: 50, b: 50 }, legend: { orientation: "h", y: -0.18 },
          xaxis: { title: { text: `${xkey} (ms)` } }, yaxis: { title: { text: ykey } } }, PLOT_CONFIG);
        div.on("plotly_click", (ev) => { if (ev.points.length) window.location.href = `/jobs/${ev.points[0].customdata}`; });
      }
      caption.textContent = `Fronts of ${ids.length} jobs on ${devices.length} device${devices.length === 1 ? "" : "s"}.` +
        (notes.length ? ` ${notes.join("; ")}.` : "");
      document.body.dataset.plotsReady = "1";
    } catch (e) {
      caption.textContent = `Could not load the fronts: ${e.message}`;
    }
  }

  /* ---------------------------------------------------------------- login */
  // Only a path on this site (the server checks too): "/\\evil", "//evil" or a scheme go home instead.
  function sameOriginPath(next) {
    if (!next || !/^\/(?![\/\\])/.test(next) || /[\s\\]/.test(next)) return "/";
    const url = new URL(next, window.location.origin);
    return url.origin === window.location.origin ? url.pathname + url.search + url.hash : "/";
  }

  function initLogin() {
    const form = document.getElementById("login-form");
    if (!form) return;
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const state = document.getElementById("login-state");
      const r = await fetch("/login", { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ api_key: document.getElementById("api-key").value }) });
      if (r.ok) window.location.href = sameOriginPath(form.dataset.next);
      else state.textContent = r.status === 401 ? "That key is unknown or revoked." : `Login failed (HTTP ${r.status}).`;
    });
  }

  const init = { jobs: initJobs, job: initJob, compare: initCompare, login: initLogin }[document.body.dataset.page];
  if (init) init();
})();
