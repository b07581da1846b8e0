// hwnas dashboard: a little JavaScript over server-rendered pages. No build step, no inline
// script (the pages run under a strict Content-Security-Policy). Data comes from the JSON API's
// job routes under the dashboard session (/ui/jobs/...; /v1 takes API keys only), /jobs/{id}/series.json, /jobs/{id}/columns.json and /compare.json; plots use
// plot.js (hwplot). window.hwnasTimings holds render timings.
"use strict";
(function () {
  const timings = (window.hwnasTimings = {});
  const TERMINAL = ["succeeded", "failed", "cancelled"];

  /* ---------------------------------------------------------------- numbers for people
     The same rules as api/dashboard/formatting.py (tests check both agree). */
  const DASH = "–";
  const missing = (v) => v === null || v === undefined || Number.isNaN(Number(v));
  function sig(v, digits = 3) {
    if (missing(v)) return DASH;
    v = Number(v);
    if (v === 0) return "0";
    if (Math.abs(v) >= 10 ** digits) return v.toFixed(0);
    const decimals = Math.max(0, digits - 1 - Math.floor(Math.log10(Math.abs(v))));
    const t = v.toFixed(decimals);
    return t.includes(".") ? t.replace(/0+$/, "").replace(/\.$/, "") : t;
  }
  function fixed(v, digits) {
    if (v === 0) return "0";
    return v.toFixed(Math.max(0, digits - 1 - Math.floor(Math.log10(Math.abs(v)))));
  }
  const SI = [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]];
  const fmt = {
    sig,
    pct: (f, digits = 3) => missing(f) ? DASH : `${sig(100 * Number(f), digits)} %`,
    si(v, digits = 3) {
      if (missing(v)) return DASH;
      v = Number(v);
      for (const [scale, prefix] of SI) if (Math.abs(v) >= scale) return `${fixed(v / scale, digits)} ${prefix}`;
      return sig(v, digits);
    },
    dur(s) {
      if (missing(s)) return DASH;
      s = Number(s);
      if (s < 1e-3) return `${sig(s * 1e6)} µs`;
      if (s < 1) return `${sig(s * 1e3)} ms`;
      if (s < 600) return `${fixed(s, 3)} s`;
      return `${sig(s / 60)} min`;
    },
    ms: (ms) => missing(ms) ? DASH : fmt.dur(Number(ms) / 1e3),
    kb(v) {
      if (missing(v)) return DASH;
      v = Number(v);
      return Math.abs(v) >= 1024 ? `${fixed(v / 1024, 3)} MB` : `${sig(v)} KB`;
    },
    metric(key, v) {
      const name = String(key).split("@")[0];
      if (name === "latency_ms") return fmt.ms(v);
      if (name === "energy_mj") return missing(v) ? DASH : `${sig(v)} mJ`;
      if (name.endsWith("_kb")) return fmt.kb(v);
      if (["params", "macs", "flops", "memory_access_cost"].includes(name)) return fmt.si(v);
      return sig(v, 4);
    },
  };
  window.hwnasFormat = fmt;

  function unitOf(key) {
    const name = String(key).split("@")[0];
    return name === "latency_ms" ? " (ms)" : name === "energy_mj" ? " (mJ)" : name.endsWith("_kb") ? " (KB)" : "";
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

  /* ---------------------------------------------------------------- theme and plots */
  function cssVar(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }
  // Read once (each read is a style recalculation), again when the colour scheme changes.
  let themeNow = null;
  if (window.matchMedia) window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => { themeNow = null; });
  function theme() {
    return themeNow || (themeNow = readTheme());
  }
  function readTheme() {
    return { fg: cssVar("--fg"), panel: cssVar("--panel"), line: cssVar("--line"), all: cssVar("--plot-all"),
      front: cssVar("--plot-front"), degenerate: cssVar("--plot-degenerate"), bad: cssVar("--bad"),
      jobs: cssVar("--job-colours").split(",").map((c) => c.trim()).filter(Boolean) };
  }
  function plotColours() {
    const t = theme();
    return { bg: t.panel, grid: t.line, bad: t.bad };
  }
  function plot(div, spec) {
    div.classList.remove("empty");
    window.hwplot.draw(div, Object.assign({ colors: plotColours() }, spec));
  }
  function emptyPlot(div, message) {
    window.hwplot.clear(div);
    div.replaceChildren(text("p", message, { class: "hint" }));
    div.classList.add("empty");
  }

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
    const extra = {};  // key -> values aligned with series.seq (columns.json: other devices, static metrics)
    const table = trialsTable(jobId);
    const shortlist = shortlistTable(jobId);
    const showAll = document.getElementById("show-all");
    const axisX = document.getElementById("axis-x"), axisY = document.getElementById("axis-y");
    const hvLog = document.getElementById("hv-logx");

    const label = (s, key) => key === "seq" ? "evaluation" : ((s.labels && s.labels[key]) || key) + unitOf(key);
    function column(s, key) {
      if (key === "seq") return s.seq;
      return s.metrics[key] || extra[key] || null;
    }
    async function ensure(s, keys) {
      const want = keys.filter((k) => k !== "seq" && !s.metrics[k] && !extra[k]);
      if (!want.length) return;
      const r = await getJSON(`/jobs/${jobId}/columns.json?keys=${encodeURIComponent(want.join(","))}`);
      const at = new Map(r.seq.map((q, i) => [q, i]));
      for (const [k, vals] of Object.entries(r.values)) extra[k] = s.seq.map((q) => at.has(q) ? vals[at.get(q)] : null);
    }

    async function loadSeries() {
      // the first load uses the request early.js started while the page loaded
      const early = window.hwnasSeries;
      window.hwnasSeries = null;
      const t0 = early ? window.hwnasSeriesStart : performance.now();
      const s = await (early || getJSON(`/jobs/${jobId}/series.json`));
      const t1 = performance.now();
      for (const k of Object.keys(extra)) delete extra[k];
      series = s;
      showHv(s.hypervolume_stored);
      fillAxisChoices(s);
      await drawPareto(s);
      await drawHypervolume(s);
      await nextFrame();
      const t2 = performance.now();
      timings.seriesFetchMs = t1 - t0;
      timings.plotRenderMs = t2 - t1;
      timings.readyAt = t2;
      timings.points = s.seq.length;
      document.body.dataset.plotsReady = String((Number(document.body.dataset.plotsReady) || 0) + 1);
      drawExplore(s).catch((e) => { document.getElementById("explore-caption").textContent = `Could not draw: ${e.message}`; });
      shortlist.show(s, ensure, column);
      return t2 - t0;
    }

    function roles(s) {
      const frontSet = new Set(s.front);
      const dupOf = new Map();
      for (const [m, ds] of Object.entries(s.duplicates || {})) for (const d of ds) dupOf.set(d, Number(m));
      return { frontSet, dupOf, degenerate: new Set(s.degenerate || []) };
    }

    function panelsOf(s) {
      return s.axes.panels.length ? s.axes.panels : [{ device: null, x: "seq", title: `${s.axes.y} by evaluation` }];
    }

    // One hover text per trial, built once per series (the panels and the explore plot share it).
    // Values repeat a lot (a space has few distinct parameter counts), so each key's are formatted once.
    const hoverOf = new WeakMap();
    function hoverTexts(s, r) {
      if (hoverOf.has(s)) return hoverOf.get(s);
      const lines = Object.keys(s.metrics).sort().map((k) => {
        const seen = new Map();
        return s.metrics[k].map((v) => {
          if (v === null) return null;
          let line = seen.get(v);
          if (line === undefined) seen.set(v, (line = `\n${k}: ${fmt.metric(k, v)}`));
          return line;
        });
      });
      const out = s.seq.map((seq, i) => {
        let t = `trial ${seq}${r.frontSet.has(seq) && !r.dupOf.has(seq) ? " (front)" : ""}` +
          `${r.dupOf.has(seq) ? ` (duplicate of ${r.dupOf.get(seq)})` : ""}${r.degenerate.has(seq) ? " (degenerate)" : ""}\n${s.arch[i]}`;
        for (const col of lines) if (col[i] !== null) t += col[i];
        return t;
      });
      hoverOf.set(s, out);
      return out;
    }

    // The job's constraints on these axes, drawn as dashed lines.
    function limitLines(limits, xkey, ykey) {
      const out = [];
      for (const [key, axis] of [[xkey, "x"], [ykey, "y"]]) {
        for (const [bound, value] of Object.entries(limits[key] || {})) out.push({ axis, value, label: `${bound} ${sig(value)}` });
      }
      return out;
    }

    // Error bars from a table's band (measured / predicted quantiles) on a latency axis.
    function bandBars(s, key, values) {
      const b = s.bands && s.bands[key];
      if (!b) return undefined;
      return { plus: values.map((v) => v * (b.hi - 1)), minus: values.map((v) => v * (1 - b.lo)) };
    }

    // The plot of xkey against ykey: every completed trial, the front highlighted, degenerate ones marked.
    function scatter(s, r, hover, xkey, ykey, id) {
      const t = theme();
      const xs = column(s, xkey) || [], ys = column(s, ykey) || [];
      const all = [], front = [], degen = [];
      for (let i = 0; i < s.seq.length; i++) {
        if (s.trial_status[i] !== "completed" || xs[i] == null || ys[i] == null) continue;
        all.push(i);
        if (r.frontSet.has(s.seq[i]) && !r.dupOf.has(s.seq[i])) front.push(i);
        if (r.degenerate.has(s.seq[i])) degen.push(i);
      }
      const pick = (arr, idx) => idx.map((i) => arr[i]);
      const fx = pick(xs, front), fy = pick(ys, front);
      const series = [
        { name: `all trials (${all.length})`, x: pick(xs, all), y: pick(ys, all), keys: pick(s.seq, all),
          hover: pick(hover, all), color: t.all, size: 5 },
        { name: `Pareto front (${front.length})`, x: fx, y: fy, keys: pick(s.seq, front), hover: pick(hover, front),
          color: t.front, size: 10, outline: t.panel, errX: bandBars(s, xkey, fx), errY: bandBars(s, ykey, fy) },
      ];
      if (degen.length) {
        series.push({ name: `degenerate (${degen.length})`, x: pick(xs, degen), y: pick(ys, degen), keys: pick(s.seq, degen),
          hover: pick(hover, degen), color: t.degenerate, size: 9, symbol: "cross" });
      }
      const zoom = !showAll.checked && front.length > 0;
      const limits = limitLines(s.axes.limits, xkey, ykey);
      const near = (axis) => limits.filter((l) => l.axis === axis).map((l) => l.value);  // zoomed, a limit stays in view
      const spec = {
        height: window.innerWidth < 600 ? 300 : 380, view: `${id}:${xkey}:${ykey}:${zoom}`,
        x: { title: label(s, xkey), fit: zoom ? [...fx, ...near("x")] : null },
        y: { title: label(s, ykey), fit: zoom ? [...fy, ...near("y")] : null },
        series, limits,
        onClick: (seq) => { window.location.href = `/jobs/${jobId}/trials/${seq}`; },
      };
      return { spec, all, front, degen };
    }

    async function drawPareto(s) {
      const container = document.getElementById("pareto-plots");
      const r = roles(s);
      const h0 = performance.now();
      const hover = hoverTexts(s, r);
      timings.hoverTextMs = performance.now() - h0;
      timings.panelMs = [];
      const ykey = s.axes.y || "seq";
      const failed = s.trial_status.filter((x) => x !== "completed").length;
      // all panels exist before the first is drawn, so each is drawn at its final width
      for (const p of panelsOf(s)) {
        const id = `plot-${p.device || "seq"}`;
        if (!document.getElementById(id)) {
          container.appendChild(text("div", null, { id, class: "plot", role: "img",
            "aria-label": `${p.title}: every trial, the Pareto front highlighted; the shortlist table above lists the front` }));
        }
      }
      let front = 0;
      for (const p of panelsOf(s)) {
        const id = `plot-${p.device || "seq"}`;
        const div = document.getElementById(id);
        const sc = scatter(s, r, hover, p.x, ykey, id);
        if (!sc.all.length) {
          emptyPlot(div, s.seq.length ? `No completed trial to plot (${failed} failed).` : "No trial evaluated yet.");
          continue;
        }
        sc.spec.title = p.device ? `${label(s, ykey)} vs latency on ${p.device}` : `${label(s, ykey)} by evaluation`;
        const p0 = performance.now();
        plot(div, sc.spec);
        timings.panelMs.push(performance.now() - p0);
        div.dataset.points = String(sc.all.length);
        div.dataset.front = String(sc.front.length);
        front = sc.front.length;
      }
      const dups = Object.values(s.duplicates || {}).reduce((n, d) => n + d.length, 0);
      document.getElementById("plot-caption").textContent =
        `${s.seq.length} trials evaluated` + (failed ? `, ${failed} failed (not plotted)` : "") +
        `; ${s.front.length - countDupsInFront(s, r)} on the Pareto front` + (dups ? ` (${dups} more with equal metrics listed as duplicates)` : "") +
        ((s.degenerate || []).length ? `; ${s.degenerate.length} degenerate (marked ×)` : "") +
        (Object.keys(s.axes.limits).length ? "; dashed lines are constraints" : "") +
        (front && !showAll.checked ? "; axes zoomed to the front" : "") + ".";
    }
    const countDupsInFront = (s, r) => s.front.filter((q) => r.dupOf.has(q)).length;

    function fillAxisChoices(s) {
      const choices = [{ key: "seq", label: "evaluation" }, ...(s.available || [])];
      for (const [select, def] of [[axisX, s.axes.panels.length ? s.axes.panels[0].x : "seq"], [axisY, s.axes.y || "seq"]]) {
        const current = select.value || def;
        select.replaceChildren(...choices.map((c) => text("option", c.label, { value: c.key })));
        select.value = choices.some((c) => c.key === current) ? current : def;
      }
    }

    async function drawExplore(s) {
      const div = document.getElementById("plot-explore");
      const xkey = axisX.value, ykey = axisY.value;
      await ensure(s, [xkey, ykey]);
      const r = roles(s);
      const sc = scatter(s, r, hoverTexts(s, r), xkey, ykey, "plot-explore");
      const caption = document.getElementById("explore-caption");
      if (!sc.all.length) { emptyPlot(div, "No completed trial has both values."); caption.textContent = ""; div.dataset.ready = "1"; return; }
      sc.spec.title = `${label(s, ykey)} vs ${label(s, xkey)}`;
      plot(div, sc.spec);
      const src = (k) => (s.available || []).find((a) => a.key === k);
      const notes = [xkey, ykey].map(src).filter((a) => a && a.source !== "trial")
        .map((a) => a.source === "table" ? `${a.key} is predicted by its latency table for every trial (the job did not search on it)`
          : `${a.key} is computed from the architecture`);
      caption.textContent = `The job's front (highlighted) on these axes` + (notes.length ? `: ${notes.join("; ")}.` : ".");
      div.dataset.x = xkey;
      div.dataset.y = ykey;
      div.dataset.ready = String((Number(div.dataset.ready) || 0) + 1);
    }

    async function drawHypervolume(s) {
      const div = document.getElementById("hv-plot");
      const h = s.hypervolume;
      const scale = s.hv_scale;
      const x = [...h.evaluations];
      const y = h.values.map((v) => scale ? 100 * v / scale.scale : v);
      if (x.length && h.total > x[x.length - 1]) { x.push(h.total); y.push(y[y.length - 1]); }
      if (!x.length) { emptyPlot(div, "No feasible trial yet: no hypervolume."); return; }
      const ref = Object.entries(s.reference_point).map(([k, v]) => `${k}=${sig(v, 4)}`).join(", ");
      const ytitle = !scale ? "hypervolume (raw units)" : scale.kind === "best" ? "hypervolume (% of the best front)" : "hypervolume (% of own box)";
      plot(div, {
        title: scale ? `100 % = ${scale.basis}` : `reference point ${ref}`, height: 280, legend: false,
        x: { title: "evaluations", log: hvLog.checked, zero: !hvLog.checked }, y: { title: ytitle, zero: true },
        series: [{ name: "hypervolume", x, y, color: theme().jobs[0], markers: false, line: { step: true },
          hover: x.map((e, i) => `after ${e} evaluations: ${sig(y[i], 4)}${scale ? " %" : ""}`) }],
      });
      div.dataset.scale = scale ? scale.kind : "raw";
    }

    function showHv(hv) {
      const scale = series && series.hv_scale;
      document.getElementById("job-hv").textContent = hv === null || hv === undefined ? DASH
        : scale ? `${fmt.pct(hv / scale.scale)} of ${scale.kind === "best" ? "the best front" : "the job's own box"}`
          : sig(hv, 4);
      const raw = document.getElementById("job-hv-raw");
      if (raw && hv !== null && hv !== undefined) raw.textContent = `raw ${sig(hv, 4)}` + (scale ? `; 100 % = ${scale.basis}` : "");
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
      showHv(j.hypervolume);
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
        if (wasRunning) { took = await loadSeries(); table.reload(series); }
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
    showAll.addEventListener("change", () => { if (series) { drawPareto(series); drawExplore(series); } });
    for (const sel of [axisX, axisY]) sel.addEventListener("change", () => {
      if (series) drawExplore(series).catch((e) => { document.getElementById("explore-caption").textContent = `Could not draw: ${e.message}`; });
    });
    hvLog.addEventListener("change", () => { if (series) drawHypervolume(series); });

    loadSeries().then(() => {
      table.start(series);
      if (!TERMINAL.includes(status)) setTimeout(poll, 2000);
    }).catch((e) => { document.getElementById("plot-caption").textContent = `Could not load trials: ${e.message}`; });
  }

  // The shortlist: the front as a table to choose from (sortable, budget filters, chosen columns).
  function shortlistTable(jobId) {
    const head = document.getElementById("shortlist-head");
    const rows = document.getElementById("shortlist-rows");
    const caption = document.getElementById("shortlist-caption");
    const budgetKey = document.getElementById("budget-key");
    const budgetMax = document.getElementById("budget-max");
    const memoryMax = document.getElementById("memory-max");
    const statusSel = document.getElementById("shortlist-status");
    const picker = document.getElementById("shortlist-columns");
    let s = null, ensure = null, column = null, chosen = null, sort = null, bound = false;

    function cell(key, i) {
      const v = (column(s, key) || [])[i];
      const td = text("td", fmt.metric(key, v), { class: "num", "data-key": key });
      const b = s.bands && s.bands[key];
      if (b && v != null) td.appendChild(text("small", ` (${fmt.ms(v * b.lo)}–${fmt.ms(v * b.hi)})`, { class: "band",
        title: `${Math.round(100 * b.level)} % range from the table's held-out validation` }));
      return td;
    }

    async function render() {
      const keys = [...chosen];
      const mem = memoryMax.value !== "" ? Number(memoryMax.value) : null;
      const lat = budgetMax.value !== "" ? Number(budgetMax.value) : null;
      const need = [...keys, ...(lat !== null ? [budgetKey.value] : []), ...(mem !== null ? ["peak_memory_kb"] : [])];
      await ensure(s, need);
      const dupOf = new Map();
      for (const [m, ds] of Object.entries(s.duplicates || {})) for (const d of ds) dupOf.set(d, Number(m));
      const degenerate = new Set(s.degenerate || []);
      const index = new Map(s.seq.map((q, i) => [q, i]));
      let members = s.front.filter((q) => !dupOf.has(q));
      if (statusSel.value === "all") members = [...members, ...dupOf.keys()];
      if (statusSel.value === "sound") members = members.filter((q) => !degenerate.has(q));
      const total = members.length;
      members = members.filter((q) => {
        const i = index.get(q);
        if (i === undefined) return false;
        if (lat !== null && !((column(s, budgetKey.value) || [])[i] <= lat)) return false;
        if (mem !== null && !((column(s, "peak_memory_kb") || [])[i] <= mem)) return false;
        return true;
      });
      const [sk, desc] = sort;
      const val = (q) => sk === "seq" ? q : (column(s, sk) || [])[index.get(q)];
      members.sort((a, b) => {
        const va = val(a), vb = val(b);
        if (va == null) return 1;
        if (vb == null) return -1;
        return desc ? vb - va : va - vb;
      });
      head.replaceChildren(...[["seq", "Trial"], ...keys.map((k) => [k, (s.labels && s.labels[k]) || k]), ["arch", "Architecture"]].map(([k, name]) => {
        const th = text("th", null, { scope: "col" });
        if (k === "arch") { th.textContent = name; return th; }
        th.setAttribute("aria-sort", sk === k ? (desc ? "descending" : "ascending") : "none");
        const b = text("button", name, { type: "button", class: "sort", "data-sort": k });
        b.addEventListener("click", () => {
          sort = [k, sk === k ? !desc : false];
          render().then(() => head.querySelector(`button[data-sort="${CSS.escape(k)}"]`).focus());
        });
        th.appendChild(b);
        return th;
      }));
      rows.replaceChildren(...members.map((q) => {
        const i = index.get(q);
        const tr = text("tr", null, { "data-seq": String(q) });
        const first = text("td", null, { class: "num" });
        first.appendChild(text("a", String(q), { href: `/jobs/${jobId}/trials/${q}` }));
        if (dupOf.has(q)) first.appendChild(text("small", ` duplicate of ${dupOf.get(q)}`, { class: "tag" }));
        if (degenerate.has(q)) first.appendChild(text("small", " degenerate", { class: "tag tag-bad" }));
        tr.appendChild(first);
        for (const k of keys) tr.appendChild(cell(k, i));
        const arch = text("td");
        arch.appendChild(text("code", s.arch[i]));
        tr.appendChild(arch);
        return tr;
      }));
      caption.textContent = `${members.length} of ${total} front architectures shown` +
        (lat !== null ? `; ${budgetKey.value} ≤ ${sig(lat)} ms` : "") + (mem !== null ? `; peak memory ≤ ${sig(mem)} KB` : "") + ".";
      rows.dataset.ready = String((Number(rows.dataset.ready) || 0) + 1);
    }

    return {
      show(series, ensureFn, columnFn) {
        s = series; ensure = ensureFn; column = columnFn;
        const available = s.available || [];
        if (chosen === null) {
          chosen = new Set([...s.objectives.map((o) => o.key), ...(s.constraint_keys || [])]);
          sort = [s.objectives[0].key, s.objectives[0].goal === "maximize"];
          picker.replaceChildren(picker.querySelector("legend") || text("legend", "Columns to show"), ...available.map((a) => {
            const id = `col-${a.key.replace(/[^A-Za-z0-9_-]/g, "_")}`;
            const box = text("input", null, { type: "checkbox", id, value: a.key });
            box.checked = chosen.has(a.key);
            box.addEventListener("change", () => { if (box.checked) chosen.add(a.key); else chosen.delete(a.key); render(); });
            const wrap = text("div");
            wrap.append(box, text("label", a.label, { for: id }));
            return wrap;
          }));
          const lat = available.filter((a) => a.key.startsWith("latency_ms@"));
          budgetKey.replaceChildren(...lat.map((a) => text("option", a.key, { value: a.key })));
          if (!lat.length) budgetKey.disabled = budgetMax.disabled = true;
          if (!available.some((a) => a.key === "peak_memory_kb")) memoryMax.disabled = true;
        }
        if (!bound) {
          bound = true;
          for (const el of [budgetKey, statusSel]) el.addEventListener("change", render);
          for (const el of [budgetMax, memoryMax]) el.addEventListener("input", render);
          document.getElementById("shortlist-filters").addEventListener("submit", (e) => { e.preventDefault(); render(); });
        }
        return render();
      },
    };
  }

  // The paged, sortable trials table over GET /v1/jobs/{id}/trials ("on the front" pages the series locally).
  function trialsTable(jobId) {
    const head = document.getElementById("trials-head");
    const rows = document.getElementById("trials-rows");
    const range = document.getElementById("trials-range");
    const prev = document.getElementById("trials-prev");
    const next = document.getElementById("trials-next");
    const size = document.getElementById("trials-size");
    const statusSel = document.getElementById("trials-status");
    let columns = [], sort = "seq", offset = 0, total = 0, started = false, series = null;

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

    // The front from the series, sorted and paged like the API would.
    function frontPage(n) {
      const s = series, index = new Map(s.seq.map((q, i) => [q, i]));
      const key = sort.replace(/^-/, ""), desc = sort.startsWith("-");
      const val = (q) => key === "seq" ? q : key.startsWith("metric:") ? (s.metrics[key.slice(7)] || [])[index.get(q)] : key === "status" ? "completed" : null;
      const seqs = [...s.front].sort((a, b) => { const va = val(a), vb = val(b); if (va == null) return 1; if (vb == null) return -1; return desc ? (vb > va ? 1 : vb < va ? -1 : 0) : (va > vb ? 1 : va < vb ? -1 : 0); });
      const items = seqs.slice(offset, offset + n).map((q) => {
        const i = index.get(q);
        const metrics = {};
        for (const [k, v] of Object.entries(s.metrics)) if (v[i] !== null) metrics[k] = v[i];
        return { seq: q, arch: s.arch[i], status: s.trial_status[i], metrics, duration_s: null, error: null };
      });
      return { total: seqs.length, items };
    }

    async function load() {
      const n = Number(size.value);
      const filter = statusSel.value;
      const page = filter === "front" ? frontPage(n)
        : await getJSON(`/ui/jobs/${jobId}/trials?sort=${encodeURIComponent(sort)}&limit=${n}&offset=${offset}` + (filter ? `&status=${filter}` : ""));
      total = page.total;
      const frontSet = new Set(series ? series.front : []);
      const dupOf = new Map();
      for (const [m, ds] of Object.entries((series && series.duplicates) || {})) for (const d of ds) dupOf.set(d, Number(m));
      const degenerate = new Set((series && series.degenerate) || []);
      rows.replaceChildren(...page.items.map((t) => {
        const tr = text("tr", null, { "data-seq": String(t.seq) });
        for (const c of columns) {
          const td = text("td", null, c.num ? { class: "num" } : {});
          if (c.key === "seq") td.appendChild(text("a", String(t.seq), { href: `/jobs/${jobId}/trials/${t.seq}` }));
          else if (c.key === "arch") td.appendChild(text("code", t.arch));
          else if (c.key === "status") {
            td.textContent = t.status + (t.error ? ` — ${t.error}` : "");
            if (degenerate.has(t.seq)) td.appendChild(text("small", " degenerate", { class: "tag tag-bad" }));
          } else if (c.key === "front") td.textContent = dupOf.has(t.seq) ? `duplicate of ${dupOf.get(t.seq)}` : frontSet.has(t.seq) ? "front" : "";
          else if (c.key === "duration_s") td.textContent = fmt.dur(t.duration_s);
          else {
            td.textContent = fmt.metric(c.key, t.metrics[c.key]);
            const b = series && series.bands && series.bands[c.key], v = t.metrics[c.key];
            if (b && v != null) td.title = `${Math.round(100 * b.level)} % range ${fmt.ms(v * b.lo)}–${fmt.ms(v * b.hi)} (the table's held-out validation)`;
          }
          tr.appendChild(td);
        }
        return tr;
      }));
      range.textContent = total ? `trials ${offset + 1}–${Math.min(offset + n, total)} of ${total}` : "no trials match";
      prev.disabled = offset === 0;
      next.disabled = offset + n >= total;
    }

    prev.addEventListener("click", () => { offset = Math.max(0, offset - Number(size.value)); load(); });
    next.addEventListener("click", () => { offset += Number(size.value); load(); });
    size.addEventListener("change", () => { offset = 0; load(); });
    statusSel.addEventListener("change", () => { offset = 0; load(); });

    return {
      start(s) {
        series = s;
        const keys = Object.keys(s.metrics).sort();
        columns = [{ key: "seq", label: "Trial", sort: "seq", num: true }, { key: "status", label: "Status", sort: "status" },
          { key: "front", label: "Front" },
          ...keys.map((k) => ({ key: k, label: k, sort: `metric:${k}`, num: true })),
          { key: "duration_s", label: "Duration", sort: "duration_s", num: true }, { key: "arch", label: "Architecture" }];
        started = true;
        header();
        return load();
      },
      reload(s) { if (s) series = s; if (started) load(); },
    };
  }

  /* ---------------------------------------------------------------- compare */
  async function initCompare() {
    const root = document.getElementById("compare");
    const ids = (root.dataset.jobs || "").split(",").filter(Boolean);
    if (ids.length < 2) return;
    const caption = document.getElementById("compare-caption");
    try {
      const data = await getJSON(`/compare.json?jobs=${encodeURIComponent(ids.join(","))}`);
      const t = theme();
      // one colour per job, the same in every panel
      const colour = new Map(data.jobs.map((j, i) => [j.id, t.jobs[i % t.jobs.length]]));
      const container = document.getElementById("compare-plots");
      const notes = [];
      const panels = [];
      for (const device of data.devices) {
        const xkey = `latency_ms@${device}`;
        const on = data.jobs.filter((j) => j.devices.includes(device) && j.y);
        // jobs whose y metrics differ never share an axis: one panel per metric
        const groups = [...new Set(on.map((j) => j.y_label))];
        if (groups.length > 1) notes.push(`on ${device}, ${groups.join(" and ")} are different metrics, so they get separate panels`);
        groups.forEach((ylabel, g) => panels.push({ device, xkey, ylabel, jobs: on.filter((j) => j.y_label === ylabel),
          id: g ? `compare-${device}-${g}` : `compare-${device}` }));
      }
      const divs = panels.map((p) => container.appendChild(text("div", null, { id: p.id, class: "plot", role: "img",
        "data-y": p.ylabel, "data-device": p.device })));
      for (const [n, p] of panels.entries()) {
        const series = [];
        for (const j of p.jobs) {
          const pts = j.front.map((f) => ({ f, x: f.metrics[p.xkey] ?? f.projected[p.xkey], y: f.metrics[j.y] }))
            .filter((q) => q.x !== undefined && q.x !== null && q.y !== undefined).sort((a, b) => a.x - b.x);
          const projected = !j.searched_devices.includes(p.device);
          if (!pts.length) { notes.push(`${j.name} has no front point on ${p.device}`); continue; }
          series.push({ name: `${j.name} (${pts.length})${projected ? ` predicted on ${p.device}` : ""}`,
            color: colour.get(j.id), size: 8, symbol: projected ? "diamond" : "circle",
            line: j.objective_keys.length === 2 && !projected ? { step: true, dash: true } : null,
            x: pts.map((q) => q.x), y: pts.map((q) => q.y), keys: pts.map((q) => `${j.id}/trials/${q.f.seq}`),
            hover: pts.map((q) => `${j.name}: trial ${q.f.seq}\n${q.f.arch}\n${p.xkey}: ${fmt.ms(q.x)}\n${p.ylabel}: ${sig(q.y, 4)}`) });
          if (projected) notes.push(`${j.name} did not search on ${p.device}: its front is predicted there by the device's table`);
        }
        const div = divs[n];
        div.setAttribute("aria-label", `Pareto fronts of ${series.length} jobs: ${p.ylabel} vs latency on ${p.device}`);
        plot(div, { title: `${p.ylabel} vs latency on ${p.device}`, height: window.innerWidth < 600 ? 320 : 400,
          x: { title: `${p.xkey} (ms)` }, y: { title: p.ylabel }, series,
          onClick: (key) => { window.location.href = `/jobs/${key}`; } });
        div.dataset.colours = JSON.stringify(series.map((x) => x.color));
      }
      const hvRows = document.getElementById("compare-hv");
      if (hvRows) hvRows.replaceChildren(...data.jobs.map((j) => {
        const tr = text("tr", null, { "data-job": j.id });
        const name = text("th", null, { scope: "row" });
        name.append(text("span", "●", { class: "swatch", "aria-hidden": "true", "data-colour": colour.get(j.id) }), ` ${j.name}`);
        tr.append(name, text("td", j.y_label || DASH),
          text("td", j.hv ? `${fmt.pct(j.hv.fraction)} of ${j.hv.kind === "best" ? "the best front" : "own box"}` : DASH, { class: "num" }),
          text("td", sig(j.hypervolume, 4), { class: "num" }));
        return tr;
      }));
      for (const sw of document.querySelectorAll("#compare-hv .swatch")) sw.style.color = sw.dataset.colour;
      caption.textContent = `Fronts of ${data.jobs.length} jobs on ${data.devices.length} device${data.devices.length === 1 ? "" : "s"}; one colour per job in every panel.` +
        (notes.length ? ` ${[...new Set(notes)].join("; ")}.` : "");
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
